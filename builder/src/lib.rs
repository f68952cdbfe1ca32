//! harmony: recipe in, bootable artifacts out.
//!
//! Data flows one way: recipe → base image + steps (layers) → root tree → artifacts.

pub mod artifact_table;
pub mod base;
pub mod binaries;
pub mod build;
pub mod cache;
pub mod cli;
pub mod components;
pub mod emit;
pub mod footprint;
pub mod harden;
pub mod inventory;
pub mod kernel;
pub mod kubernetes;
pub mod manifest;
pub mod oci;
pub mod progress;
pub mod recipe;
pub mod run;
pub mod sbom;
pub mod selinux;
pub mod steps;
pub mod tree;
pub mod vaquero;
pub mod verify;
