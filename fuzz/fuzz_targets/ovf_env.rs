//! Any text as a VMware OVF environment (guestinfo.ovfEnv): its properties or an error.
#![no_main]

use harmony_agent::sources::vmware::ovf_env;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(xml) = std::str::from_utf8(data) {
        let _ = ovf_env::properties(xml);
    }
});
