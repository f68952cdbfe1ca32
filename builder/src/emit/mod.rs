//! Emitters: turn the final root tree into bootable artifacts.
