//! The contracts between Harmony's binaries (the builder and `harmony run`, harmony-init,
//! harmony-agent), each written once here so that the side that writes it and the side
//! that reads it cannot drift. `no_std` and without dependencies, so the initramfs's
//! `/init` and the EFI stub can depend on it too.
//!
//! Moved here so far: the console markers ([`console`]).

#![no_std]

pub mod console;
