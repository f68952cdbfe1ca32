//! Step layers by cache key (the digest of a step's inputs chained to the layer below).
//! A hit skips encoding; the blob is verified against its digest before it is reused.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::tree::layer::EncodedLayer;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedLayer {
    /// `sha256:…` of the gzip blob.
    pub digest: String,
    /// `sha256:…` of the uncompressed tar.
    pub diff_id: String,
    pub size: u64,
    #[serde(skip)]
    pub path: PathBuf,
}

pub struct LayerCache {
    index: PathBuf,
    blobs: PathBuf,
    /// Records this build read or wrote: eviction never removes them.
    used: std::cell::RefCell<std::collections::BTreeSet<PathBuf>>,
}

impl LayerCache {
    pub fn new(cache: &Path) -> Self {
        LayerCache {
            index: cache.join("layers"),
            blobs: cache.join("blobs").join("sha256"),
            used: Default::default(),
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.blobs.join(digest.trim_start_matches("sha256:"))
    }

    /// A cached layer whose blob is still there and still has its digest; anything else is a miss.
    pub fn used(&self) -> std::collections::BTreeSet<PathBuf> {
        self.used.borrow().clone()
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.index.join(format!("{key}.json"))
    }

    pub fn get(&self, key: &str) -> Option<CachedLayer> {
        let record_path = self.record_path(key);
        let record = std::fs::read(&record_path).ok()?;
        let mut layer: CachedLayer = serde_json::from_slice(&record).ok()?;
        layer.path = self.blob_path(&layer.digest);
        let bytes = std::fs::read(&layer.path).ok()?;
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if actual != layer.digest {
            tracing::warn!(
                "cached layer {} is corrupt (digest {actual}); rebuilding it",
                layer.path.display()
            );
            return None;
        }
        super::artifact_cache::touch(&record_path);
        self.used.borrow_mut().insert(record_path);
        Some(layer)
    }

    pub fn put(&self, key: &str, encoded: &EncodedLayer) -> anyhow::Result<CachedLayer> {
        let layer = CachedLayer {
            digest: encoded.digest.clone(),
            diff_id: encoded.diff_id.clone(),
            size: encoded.size,
            path: self.blob_path(&encoded.digest),
        };
        write_atomic(&layer.path, &encoded.gzip)?;
        let record_path = self.record_path(key);
        write_atomic(&record_path, &serde_json::to_vec_pretty(&layer)?)?;
        self.used.borrow_mut().insert(record_path);
        Ok(layer)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("cache path without parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing into {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
