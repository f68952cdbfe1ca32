//! Any bytes as a NoCloud vfat volume: open, label, the seed's files in the root directory.
#![no_main]

use std::io::Cursor;

use harmony_agent::sources::nocloud::{fat, SEED_FILES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(mut volume)) = fat::open(Cursor::new(data)) {
        let _ = volume.label();
        let _ = volume.root_files(&SEED_FILES);
    }
});
