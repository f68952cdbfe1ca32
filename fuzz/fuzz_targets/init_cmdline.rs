//! Any text as the kernel command line harmony-init reads: its split, the PXE
//! arguments and the disk boot's, an error naming the parameter, never a panic.
#![no_main]

use harmony_init::cmdline::{split_params, BootArgs};
use harmony_init::disk_args::DiskArgs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let _ = split_params(&line);
    let _ = BootArgs::from_cmdline(&line);
    let _ = DiskArgs::from_cmdline(&line);
});
