//! Any bytes as a NoCloud vfat volume: open, label, the root directory's files.
#![no_main]

use std::io::Cursor;

use harmony_agent::sources::nocloud::fat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(fs)) = fat::open(Cursor::new(data)) {
        let _ = fat::label(&fs);
        let _ = fat::root_files(&fs);
    }
});
