//! Any built-in line and two extra sources (load options, SMBIOS) through the EFI stub's
//! filter: never a panic, and the final line as the kernel splits it has no protected
//! parameter after the built-in part (the smuggling the filter exists to stop).
#![no_main]

use harmony_efi_stub::cmdline::{args, protected, Cmdline};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (builtin, first, second) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let Ok(mut line) = Cmdline::new(builtin) else {
        return;
    };
    let builtin_args = args(line.as_bytes()).count();
    let appended = line.append(first, |_| {}).is_ok() | line.append(second, |_| {}).is_ok();
    if !appended {
        return;
    }
    let mut after_builtin = args(line.as_bytes()).skip(builtin_args);
    for (_, arg) in after_builtin.by_ref() {
        if arg.name == b"--" && !arg.has_value {
            panic!("-- reached the final line");
        }
        assert!(
            !protected(arg.name),
            "protected {:?} in {:?}",
            String::from_utf8_lossy(arg.text),
            String::from_utf8_lossy(line.as_bytes())
        );
    }
});
