//! Any bytes as a NoCloud iso9660 volume (from its volume descriptors at sector 16 on):
//! the label probe and the root directory's files, never a panic or a runaway allocation.
#![no_main]

use std::io::Cursor;

use harmony_agent::sources::nocloud::iso9660;
use libfuzzer_sys::fuzz_target;

/// The system area before the volume descriptors: zeros, so the input starts at sector 16.
const SYSTEM_AREA: usize = 16 * 2048;

fuzz_target!(|data: &[u8]| {
    let mut volume = vec![0u8; SYSTEM_AREA];
    volume.extend_from_slice(data);
    let _ = iso9660::probe(&mut Cursor::new(&volume));
    let _ = iso9660::root_files(&mut Cursor::new(&volume));
});
