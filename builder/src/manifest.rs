//! `OUT/manifest.json`: every artifact a build wrote (path, kind, size, sha256), the
//! kernel command line the image boots with, and the resolved inputs.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Relative to the output directory, `/`-separated.
    pub path: String,
    /// `kernel`, `initramfs`, `rootfs`, `ipxe-script`, `oci-layout`, ...
    pub kind: String,
    pub size: u64,
    pub sha256: String,
}

impl Artifact {
    /// Describe bytes that were (or are about to be) written at `path` under the output.
    pub fn of_bytes(path: &str, kind: &str, bytes: &[u8]) -> Self {
        Artifact {
            path: path.to_string(),
            kind: kind.to_string(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(bytes)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// Kernel command line the image needs; `harmony run` and boot.ipxe use it as is.
    pub cmdline: String,
    pub artifacts: Vec<Artifact>,
    /// The resolved inputs, as in the lock file.
    pub inputs: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a Harmony manifest: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: no artifact of kind `{kind}` (is this the output of `harmony build`?)")]
    Missing { path: String, kind: String },
}

impl Manifest {
    pub fn load(out_dir: &Path) -> Result<Self, ManifestError> {
        let path = out_dir.join(MANIFEST_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read(&path).map_err(|source| ManifestError::Read {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| ManifestError::Parse {
            path: shown,
            source,
        })
    }

    /// The first artifact of a kind.
    pub fn artifact(&self, out_dir: &Path, kind: &str) -> Result<&Artifact, ManifestError> {
        self.artifacts
            .iter()
            .find(|a| a.kind == kind)
            .ok_or_else(|| ManifestError::Missing {
                path: out_dir.join(MANIFEST_FILE).display().to_string(),
                kind: kind.to_string(),
            })
    }
}
