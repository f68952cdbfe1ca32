//! Any bytes as one message from the D-Bus socket: a reply's signature, body and first
//! string, or an error.
#![no_main]

use harmony_agent::join::dbus::read_any_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = read_any_message(data) {
        let _ = reply.first_string();
    }
});
