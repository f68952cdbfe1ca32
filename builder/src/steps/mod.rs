//! Build steps: each turns recipe input into the changes of one image layer.
//!
//! A step is pure: from its inputs (and the tree below it, read-only) to `LayerChanges`.
//! Its cache key is the digest of those inputs, so a warm rebuild reuses its layer.

pub mod agent;
pub mod bootc_kernel;
pub mod components;
#[cfg(test)]
mod components_tests;
pub mod file_caps;
pub mod files;
pub mod hardening;
pub mod inittab;
pub mod kubernetes;
pub mod packages;
pub mod run_in_root;

#[cfg(test)]
mod rootless_tests;

use crate::tree::layer::LayerChanges;

/// What one step contributes: the layer's changes plus what identifies its inputs.
pub struct StepOutput {
    /// Short name: `files`, `agent`.
    pub name: &'static str,
    /// Recorded in the image history (`created_by`).
    pub description: String,
    /// sha256 over everything the changes were derived from (not the tree below:
    /// the build chains the parent layer's digest into the cache key).
    pub inputs_digest: String,
    pub changes: LayerChanges,
}
