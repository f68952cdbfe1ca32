//! harmony: recipe in, bootable artifacts out.
//!
//! Data flows one way: recipe → base image + steps (layers) → root tree → artifacts.

pub mod base;
pub mod emit;
pub mod kernel;
pub mod manifest;
pub mod oci;
pub mod run;
pub mod tree;
