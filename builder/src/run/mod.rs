//! `harmony run`: boot built artifacts in QEMU and watch the console.
