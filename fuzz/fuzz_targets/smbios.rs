//! Any bytes as an SMBIOS entry point and structure table: the EFI stub finds the
//! `io.systemd.stub.kernel-cmdline-extra=` OEM string or says why not, never a panic.
#![no_main]

use harmony_efi_stub::smbios::{
    entry_point_len, find_oem_string, parse_entry_point, EntryPoint, CMDLINE_EXTRA_PREFIX,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = find_oem_string(data, CMDLINE_EXTRA_PREFIX);
    for kind in [EntryPoint::Smbios3, EntryPoint::Smbios2] {
        if let Ok(len) = entry_point_len(kind, data.get(..7).unwrap_or(data)) {
            if let Some(ep) = data.get(..len) {
                let _ = parse_entry_point(kind, ep);
            }
        }
    }
});
