//! Shared harness for the QEMU end-to-end tests.
