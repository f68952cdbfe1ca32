//! Artifacts by the digest of their inputs, so an unchanged image is not compressed
//! again: a rebuild with nothing changed copies verified bytes out of the cache.
//!
//! `CACHE/artifacts/index/KEY.json` lists what one emitter made (as manifest artifacts);
//! `CACHE/artifacts/blobs/HEX` holds each file's bytes by sha256. A key is the sha256 of
//! everything the emitter reads plus the digest of the running `harmony` itself, so a
//! changed emitter never reuses an old result. Every blob is hashed again as it is read
//! back: a missing or changed blob is a miss, never a wrong artifact. The cache only
//! saves time: failing to store into it is a warning, not a failed build.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::manifest::Artifact;

/// Builds a cache key: a label, then named fields, each length-prefixed so that no two
/// different field lists hash alike.
pub struct InputKey(Sha256);

impl InputKey {
    /// `None` when `harmony`'s own binary cannot be read: then nothing is cached.
    pub fn new(what: &str) -> Option<Self> {
        let mut hash = Sha256::new();
        hash.update(b"harmony-artifact-v1\0");
        hash.update(self_digest()?);
        Some(InputKey(hash).with("artifact", what))
    }

    pub fn with(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        for part in [name.as_bytes(), value.as_ref()] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
        self
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// sha256 of the running executable, read once.
fn self_digest() -> Option<&'static [u8; 32]> {
    static DIGEST: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    DIGEST
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            let mut file = File::open(exe).ok()?;
            let mut hash = Sha256::new();
            std::io::copy(&mut file, &mut hash).ok()?;
            Some(hash.finalize().into())
        })
        .as_ref()
}

pub struct ArtifactCache {
    index: PathBuf,
    blobs: PathBuf,
    /// Index records this build read or wrote: eviction never removes them.
    used: Mutex<BTreeSet<PathBuf>>,
}

/// Where a cached result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Made,
}

pub const DIR: &str = "artifacts";

impl ArtifactCache {
    pub fn new(cache: &Path) -> Self {
        let dir = cache.join(DIR);
        ArtifactCache {
            index: dir.join("index"),
            blobs: dir.join("blobs"),
            used: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn used(&self) -> BTreeSet<PathBuf> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }

    fn record_path(&self, key: &str) -> PathBuf {
        self.index.join(format!("{key}.json"))
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs.join(sha256)
    }

    fn mark_used(&self, record: PathBuf) {
        if let Ok(mut used) = self.used.lock() {
            used.insert(record);
        }
    }

    /// The files an emitter writes under `out`: copied from the cache when `key` was
    /// made before, else made by `make` (which writes them and describes them) and stored.
    pub fn files(
        &self,
        key: Option<String>,
        out: &Path,
        make: impl FnOnce() -> anyhow::Result<Vec<Artifact>>,
    ) -> anyhow::Result<(Vec<Artifact>, Source)> {
        let Some(key) = key else {
            return Ok((make()?, Source::Made));
        };
        if let Some(artifacts) = self.restore_files(&key, out) {
            return Ok((artifacts, Source::Cache));
        }
        let artifacts = make()?;
        let stored = artifacts
            .iter()
            .try_for_each(|a| self.store_blob(&out.join(&a.path), &a.sha256))
            .and_then(|()| self.write_record(&key, &artifacts));
        if let Err(e) = stored {
            tracing::warn!("not cached ({e:#}); the next build makes it again");
        }
        Ok((artifacts, Source::Made))
    }

    /// In-memory results (the boot files), in the order `make` returns them.
    pub fn bytes(
        &self,
        key: Option<String>,
        make: impl FnOnce() -> anyhow::Result<Vec<Vec<u8>>>,
    ) -> anyhow::Result<(Vec<Vec<u8>>, Source)> {
        let Some(key) = key else {
            return Ok((make()?, Source::Made));
        };
        if let Some(parts) = self.restore_bytes(&key) {
            return Ok((parts, Source::Cache));
        }
        let parts = make()?;
        let records: Vec<Artifact> = parts
            .iter()
            .enumerate()
            .map(|(i, bytes)| Artifact::of_bytes(&i.to_string(), "bytes", bytes))
            .collect();
        let stored = parts
            .iter()
            .zip(&records)
            .try_for_each(|(bytes, r)| self.store_bytes(bytes, &r.sha256))
            .and_then(|()| self.write_record(&key, &records));
        if let Err(e) = stored {
            tracing::warn!("not cached ({e:#}); the next build makes it again");
        }
        Ok((parts, Source::Made))
    }

    /// Remember `key` as the latest entry made for `label` (by this `harmony`), so that
    /// the next build of it can take parts from it (see [`Self::recall`]).
    pub fn remember(&self, label: &str, key: &str) {
        let Some(path) = self.latest_path(label) else {
            return;
        };
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, key));
        if let Err(e) = written {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }

    /// The parts of the latest entry remembered for `label`, digests checked.
    pub fn recall(&self, label: &str) -> Option<Vec<Vec<u8>>> {
        let key = std::fs::read_to_string(self.latest_path(label)?).ok()?;
        self.restore_bytes(key.trim())
    }

    /// `artifacts/latest/EXE-LABEL`: per `harmony` binary, so that no build takes
    /// compressed blocks another Harmony (another zstd) made.
    fn latest_path(&self, label: &str) -> Option<PathBuf> {
        let exe = hex::encode(self_digest()?);
        let safe: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let dir = self.index.parent()?.join("latest");
        Some(dir.join(format!("{}-{safe}", &exe[..16])))
    }

    fn read_record(&self, key: &str) -> Option<Vec<Artifact>> {
        let path = self.record_path(key);
        let record = std::fs::read(&path).ok()?;
        let artifacts = serde_json::from_slice(&record).ok()?;
        touch(&path);
        self.mark_used(path);
        Some(artifacts)
    }

    fn restore_files(&self, key: &str, out: &Path) -> Option<Vec<Artifact>> {
        let artifacts = self.read_record(key)?;
        for a in &artifacts {
            let dest = out.join(&a.path);
            if let Err(e) = self.restore_file(a, &dest) {
                tracing::warn!("cached {} not reused: {e:#}", a.path);
                return None;
            }
        }
        Some(artifacts)
    }

    /// Copy a blob to `dest` (temp name, then rename), checking its digest on the way.
    fn restore_file(&self, a: &Artifact, dest: &Path) -> anyhow::Result<()> {
        let dir = dest.parent().context("artifact path without parent")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut from = File::open(self.blob_path(&a.sha256))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        let (size, sha256) = sparse_copy(&mut from, tmp.as_file_mut())?;
        if size != a.size || sha256 != a.sha256 {
            // Gone, so that making it again stores good bytes in its place.
            let _ = std::fs::remove_file(self.blob_path(&a.sha256));
            anyhow::bail!("the cached blob changed (sha256 {sha256})");
        }
        tmp.persist(dest)?;
        Ok(())
    }

    fn restore_bytes(&self, key: &str) -> Option<Vec<Vec<u8>>> {
        let records = self.read_record(key)?;
        let mut parts = Vec::with_capacity(records.len());
        for r in &records {
            let bytes = std::fs::read(self.blob_path(&r.sha256)).ok()?;
            if hex::encode(Sha256::digest(&bytes)) != r.sha256 {
                tracing::warn!("cached blob {} changed; making it again", r.sha256);
                let _ = std::fs::remove_file(self.blob_path(&r.sha256));
                return None;
            }
            parts.push(bytes);
        }
        Some(parts)
    }

    fn store_blob(&self, file: &Path, sha256: &str) -> anyhow::Result<()> {
        self.store(sha256, |to| {
            let mut from =
                File::open(file).with_context(|| format!("reading {}", file.display()))?;
            let (_, actual) = sparse_copy(&mut from, to)?;
            anyhow::ensure!(
                actual == sha256,
                "{} changed while it was stored",
                file.display()
            );
            Ok(())
        })
    }

    fn store_bytes(&self, bytes: &[u8], sha256: &str) -> anyhow::Result<()> {
        self.store(sha256, |to| Ok(to.write_all(bytes)?))
    }

    /// Write the blob named `sha256` through `write` (temp name, then rename), unless it
    /// is there already: then it only counts as used.
    fn store(
        &self,
        sha256: &str,
        write: impl FnOnce(&mut File) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let dest = self.blob_path(sha256);
        if dest.exists() {
            touch(&dest);
            return Ok(());
        }
        std::fs::create_dir_all(&self.blobs)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.blobs)?;
        write(tmp.as_file_mut())?;
        tmp.persist(&dest)?;
        Ok(())
    }

    fn write_record(&self, key: &str, artifacts: &[Artifact]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.index)?;
        let path = self.record_path(key);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.index)?;
        tmp.write_all(&serde_json::to_vec_pretty(artifacts)?)?;
        tmp.persist(&path)?;
        self.mark_used(path);
        Ok(())
    }
}

/// Mark a cache entry as just used (its mtime is what least-recently-used eviction reads).
pub fn touch(path: &Path) {
    if let Ok(file) = File::options().write(true).open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Copy `from` into the empty file `to`, leaving holes where `from` has zero blocks (a
/// raw disk's unformatted /var stays sparse); returns the size and sha256 of the bytes.
fn sparse_copy(from: &mut File, to: &mut File) -> std::io::Result<(u64, String)> {
    const CHUNK: usize = 64 << 10;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let mut filled = 0;
        while filled < CHUNK {
            match from.read(&mut buf[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        hash.update(chunk);
        if chunk.iter().all(|&b| b == 0) {
            to.seek(SeekFrom::Current(filled as i64))?;
        } else {
            to.write_all(chunk)?;
        }
        size += filled as u64;
        if filled < CHUNK {
            break;
        }
    }
    to.set_len(size)?;
    Ok((size, hex::encode(hash.finalize())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(n: &str) -> Option<String> {
        Some(InputKey::new("test").unwrap().with("n", n).finish())
    }

    fn write(out: &Path, name: &str, bytes: &[u8]) -> Artifact {
        std::fs::write(out.join(name), bytes).unwrap();
        Artifact::of_bytes(name, "test", bytes)
    }

    #[test]
    fn the_second_call_copies_what_the_first_made() {
        let cache = tempfile::tempdir().unwrap();
        let out1 = tempfile::tempdir().unwrap();
        let out2 = tempfile::tempdir().unwrap();
        let c = ArtifactCache::new(cache.path());
        let (made, source) = c
            .files(key("a"), out1.path(), || {
                Ok(vec![write(out1.path(), "x.img", b"made once")])
            })
            .unwrap();
        assert_eq!(source, Source::Made);
        let (again, source) = c
            .files(key("a"), out2.path(), || panic!("made twice"))
            .unwrap();
        assert_eq!(source, Source::Cache);
        assert_eq!(again, made);
        assert_eq!(
            std::fs::read(out2.path().join("x.img")).unwrap(),
            b"made once"
        );
    }

    #[test]
    fn a_changed_blob_is_a_miss_and_is_made_again() {
        let cache = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let c = ArtifactCache::new(cache.path());
        let a = c
            .files(key("b"), out.path(), || {
                Ok(vec![write(out.path(), "y.img", b"good bytes")])
            })
            .unwrap()
            .0;
        std::fs::write(c.blob_path(&a[0].sha256), b"evil bytes").unwrap();
        let (again, source) = c
            .files(key("b"), out.path(), || {
                Ok(vec![write(out.path(), "y.img", b"good bytes")])
            })
            .unwrap();
        assert_eq!(source, Source::Made);
        assert_eq!(again, a);
        assert_eq!(
            std::fs::read(out.path().join("y.img")).unwrap(),
            b"good bytes"
        );
        // And stored again, so the next build hits.
        let (_, source) = c.bytes(key("b-bytes"), || Ok(vec![b"z".to_vec()])).unwrap();
        assert_eq!(source, Source::Made);
        let (parts, source) = c.bytes(key("b-bytes"), || panic!("made twice")).unwrap();
        assert_eq!((parts, source), (vec![b"z".to_vec()], Source::Cache));
    }

    #[test]
    fn different_inputs_are_different_entries() {
        let cache = tempfile::tempdir().unwrap();
        let c = ArtifactCache::new(cache.path());
        c.bytes(key("one"), || Ok(vec![b"1".to_vec()])).unwrap();
        let (parts, source) = c.bytes(key("two"), || Ok(vec![b"2".to_vec()])).unwrap();
        assert_eq!((parts, source), (vec![b"2".to_vec()], Source::Made));
        assert_ne!(
            InputKey::new("t").unwrap().with("ab", "c").finish(),
            InputKey::new("t").unwrap().with("a", "bc").finish()
        );
    }

    #[test]
    fn holes_stay_holes() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("sparse.raw");
        let mut f = File::create(&src).unwrap();
        f.write_all(b"head").unwrap();
        f.set_len(64 << 20).unwrap();
        f.seek(SeekFrom::End(-4)).unwrap();
        f.write_all(b"tail").unwrap();
        drop(f);
        let mut to = File::create(dir.path().join("copy.raw")).unwrap();
        let (size, sha) = sparse_copy(&mut File::open(&src).unwrap(), &mut to).unwrap();
        assert_eq!(size, 64 << 20);
        assert_eq!(
            sha,
            hex::encode(Sha256::digest(std::fs::read(&src).unwrap()))
        );
        let copy = dir.path().join("copy.raw");
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&src).unwrap());
        // Two 64 KiB chunks hold data; the rest is holes.
        assert!(std::fs::metadata(&copy).unwrap().blocks() * 512 <= 256 << 10);
    }
}
