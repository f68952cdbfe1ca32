//! `harmony.lock.json`: every input of a build, pinned by digest. Two builds with equal
//! lock files produce equal artifacts.

use serde::{Deserialize, Serialize};

pub const LOCK_FILE: &str = "harmony.lock.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub recipe: RecipeLock,
    pub base: ImageLock,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_image: Option<ImageLock>,
    pub steps: Vec<StepLock>,
    pub kernel: KernelLock,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<BinaryLock>,
    pub init: BinaryLock,
    /// harmony-efi-stub, when the build writes a disk image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efi_stub: Option<BinaryLock>,
    /// The certificate of the recipe's `secure_boot` key (the key itself is never written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_boot: Option<SecureBootLock>,
    pub source_date_epoch: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureBootLock {
    pub cert_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipeLock {
    pub name: String,
    pub version: String,
    pub source: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageLock {
    /// As written in the recipe.
    pub reference: String,
    /// The same image pinned: `…@sha256:…`.
    pub pinned: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLock {
    pub name: String,
    /// Digest of the step's inputs chained to the layer below: the cache key.
    pub cache_key: String,
    pub layer_digest: String,
    pub diff_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLock {
    pub version: String,
    pub vmlinuz_sha256: String,
    pub boot_modules: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryLock {
    pub sha256: String,
    pub size: u64,
}
