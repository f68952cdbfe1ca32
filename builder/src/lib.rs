//! harmony: recipe in, bootable artifacts out.

pub mod tree;
