//! `HARMONY_CACHE_MAX`: a size limit for what builds make and keep in the cache (artifacts
//! and step layers), enforced after each build by removing the least recently used
//! entries. Downloads (packages, pulled images) and made bases are not counted: they are
//! what a build needs before it can make anything, and are shared by every recipe.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::manifest::Artifact;

pub const ENV: &str = "HARMONY_CACHE_MAX";
/// Without `HARMONY_CACHE_MAX`: 20 GiB, about fifty debian-node builds.
pub const DEFAULT_MAX: u64 = 20 << 30;

/// `HARMONY_CACHE_MAX` as bytes: a number with an optional K, M, G or T (powers of 1024,
/// an `iB` or `B` after it allowed).
pub fn max_from_env() -> anyhow::Result<u64> {
    match std::env::var(ENV) {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_MAX),
        Err(e) => anyhow::bail!("{ENV}: {e}"),
        Ok(text) => {
            parse_size(&text).map_err(|problem| anyhow::anyhow!("{ENV}={text:?}: {problem}"))
        }
    }
}

pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| "expected a size such as 20G, 512M or 1048576".to_string())?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        other => return Err(format!("unknown unit `{other}` (use K, M, G or T)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| "too large".to_string())
}

/// One removable cache entry: its index record and the blobs it names.
struct Entry {
    record: PathBuf,
    used: SystemTime,
    blobs: Vec<PathBuf>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Eviction {
    /// Bytes the entries took before and after.
    pub before: u64,
    pub after: u64,
    pub removed: usize,
    /// Another build was evicting at the same time: this one left it to that.
    pub skipped: bool,
}

/// Remove least recently used entries until the counted cache is at most `max` bytes;
/// never an entry in `keep` (what this build used).
pub fn evict(cache: &Path, max: u64, keep: &BTreeSet<PathBuf>) -> anyhow::Result<Eviction> {
    std::fs::create_dir_all(cache)?;
    let lock_path = cache.join("evict.lock");
    let lock_file = std::fs::File::create(&lock_path)?;
    let Ok(_held) = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return Ok(Eviction {
            skipped: true,
            ..Eviction::default()
        });
    };
    let mut entries = entries(cache);
    let mut refs: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for e in &entries {
        for b in &e.blobs {
            *refs.entry(b.clone()).or_default() += 1;
        }
    }
    let size_of = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.blocks() * 512);
    let before = refs.keys().map(|b| size_of(b)).sum::<u64>()
        + entries.iter().map(|e| size_of(&e.record)).sum::<u64>();
    let mut total = before;
    let mut removed = 0;
    entries.sort_by_key(|e| e.used);
    for e in entries {
        if total <= max {
            break;
        }
        if keep.contains(&e.record) {
            continue;
        }
        total -= size_of(&e.record);
        if std::fs::remove_file(&e.record).is_err() {
            continue;
        }
        removed += 1;
        for b in e.blobs {
            let Some(n) = refs.get_mut(&b) else { continue };
            *n -= 1;
            if *n == 0 {
                total -= size_of(&b);
                let _ = std::fs::remove_file(&b);
            }
        }
    }
    Ok(Eviction {
        before,
        after: total,
        removed,
        skipped: false,
    })
}

/// Every artifact record (`artifacts/index/KEY.json`) and step-layer record
/// (`layers/KEY.json`) with the blobs it names. Unreadable records are left alone.
fn entries(cache: &Path) -> Vec<Entry> {
    let artifacts = super::artifact_cache::DIR;
    let mut out = Vec::new();
    for record in json_files(&cache.join(artifacts).join("index")) {
        let Ok(list) = read_json::<Vec<Artifact>>(&record) else {
            continue;
        };
        let blobs = list
            .iter()
            .map(|a| cache.join(artifacts).join("blobs").join(&a.sha256))
            .collect();
        out.push(entry(record, blobs));
    }
    for record in json_files(&cache.join("layers")) {
        let Ok(layer) = read_json::<super::layer_cache::CachedLayer>(&record) else {
            continue;
        };
        let hex = layer.digest.trim_start_matches("sha256:");
        out.push(entry(
            record,
            vec![cache.join("blobs").join("sha256").join(hex)],
        ));
    }
    out
}

fn entry(record: PathBuf, blobs: Vec<PathBuf>) -> Entry {
    let used = std::fs::metadata(&record)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    Entry {
        record,
        used,
        blobs,
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    listing
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    Ok(serde_json::from_slice(&std::fs::read(path)?)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::super::artifact_cache::{ArtifactCache, InputKey};
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("20G"), Ok(20 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert!(parse_size("lots").unwrap_err().contains("20G"));
        assert!(parse_size("3X").unwrap_err().contains("unknown unit `X`"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .contains("too large"));
    }

    /// Three entries of 1 MiB used in turn; a limit of 2.5 MiB removes the oldest only,
    /// and an entry this build used stays even when it is the oldest.
    #[test]
    fn the_least_recently_used_go_first() {
        let cache = tempfile::tempdir().unwrap();
        let c = ArtifactCache::new(cache.path());
        let mut records = Vec::new();
        for (age, n) in [(300u64, 1u8), (200, 2), (100, 3)] {
            let key = InputKey::new("t").unwrap().with("n", [n]).finish();
            c.bytes(Some(key.clone()), || Ok(vec![vec![n; 1 << 20]]))
                .unwrap();
            let record = cache.path().join(format!("artifacts/index/{key}.json"));
            let file = std::fs::File::options().write(true).open(&record).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(age))
                .unwrap();
            records.push(record);
        }
        let none = BTreeSet::new();
        let e = evict(cache.path(), (5 << 20) / 2, &none).unwrap();
        assert_eq!(e.removed, 1);
        assert!(e.after <= (5 << 20) / 2, "{e:?}");
        assert!(!records[0].exists() && records[1].exists() && records[2].exists());

        let keep: BTreeSet<PathBuf> = [records[1].clone()].into();
        let e = evict(cache.path(), 1 << 20, &keep).unwrap();
        assert_eq!(e.removed, 1);
        assert!(records[1].exists() && !records[2].exists());
        let blobs = std::fs::read_dir(cache.path().join("artifacts/blobs")).unwrap();
        assert_eq!(blobs.count(), 1, "a removed entry's blob goes with it");
    }

    #[test]
    fn a_blob_two_entries_share_stays_until_both_are_gone() {
        let cache = tempfile::tempdir().unwrap();
        let c = ArtifactCache::new(cache.path());
        for n in [1u8, 2] {
            let key = InputKey::new("t").unwrap().with("n", [n]).finish();
            c.bytes(Some(key), || Ok(vec![vec![7; 1 << 20]])).unwrap();
        }
        let e = evict(cache.path(), 1 << 20, &BTreeSet::new()).unwrap();
        assert_eq!(e.removed, 2, "{e:?}");
        assert_eq!(
            std::fs::read_dir(cache.path().join("artifacts/blobs"))
                .unwrap()
                .count(),
            0
        );
    }
}
