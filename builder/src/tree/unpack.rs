//! Apply an OCI layer (a tar stream) onto a Tree: whiteouts, opaque directories, hard links.
//!
//! Ordering follows containers/storage: a `.wh..wh..opq` marker hides what the *lower*
//! layers put in its directory, never what this same layer adds, wherever the marker
//! sits in the tar stream.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::sync::Arc;

use tar::EntryType;

use super::{normalize, Entry, Kind, Meta, Tree, TreeError};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

/// What one layer did to the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries written (files, dirs, links, devices), whiteouts not included.
    pub entries: u64,
    /// Bytes of regular file contents read from the layer.
    pub file_bytes: u64,
    /// `.wh.NAME` and opaque markers applied.
    pub whiteouts: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the layer tar: {0}")]
    Read(#[source] io::Error),
    #[error("layer entry {path}: {source}")]
    Entry {
        path: String,
        #[source]
        source: TreeError,
    },
    #[error("layer entry {path}: reading its data: {source}")]
    Data {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path}: hard link target {target} does not exist")]
    LinkTargetMissing { path: String, target: String },
    #[error("layer entry {path}: {problem}")]
    Unsupported { path: String, problem: String },
}

/// A file's buffer is reserved up to this size from its tar header, then grows with
/// the data actually read.
const PREALLOCATE_AT_MOST: u64 = 1 << 20;

/// Apply one uncompressed layer tar onto `tree`.
pub fn apply_layer(tree: &mut Tree, tar: impl Read) -> Result<LayerStats, UnpackError> {
    let mut archive = tar::Archive::new(tar);
    let mut stats = LayerStats::default();
    // Keys this layer wrote, with their ancestors: an opaque marker must spare them.
    let mut written: HashSet<String> = HashSet::new();
    let entries = archive.entries().map_err(UnpackError::Read)?;
    for entry in entries {
        let mut entry = entry.map_err(UnpackError::Read)?;
        let raw_path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = normalize(&raw_path).map_err(|source| UnpackError::Entry {
            path: raw_path.clone(),
            source,
        })?;
        let entry_type = entry.header().entry_type();
        if matches!(entry_type, EntryType::XGlobalHeader) {
            continue;
        }
        let (parent, name) = match path.rfind('/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => ("", path.as_str()),
        };
        if name == OPAQUE_MARKER {
            let dir = ensure_parent(tree, &path, &raw_path, &mut written)?;
            make_opaque(tree, &dir, &written);
            stats.whiteouts += 1;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let victim = if parent.is_empty() {
                hidden.to_string()
            } else {
                format!("{parent}/{hidden}")
            };
            // A whiteout for something that never existed is harmless.
            match tree.remove(&victim) {
                Ok(_) | Err(TreeError::ParentNotDir { .. }) => {}
                Err(source) => {
                    return Err(UnpackError::Entry {
                        path: raw_path,
                        source,
                    })
                }
            }
            stats.whiteouts += 1;
            continue;
        }
        let meta = meta_of(&mut entry, &raw_path)?;
        let kind = match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // The header's size is the layer's claim, not a fact: grow as bytes come.
                let mut data = Vec::with_capacity(entry.size().min(PREALLOCATE_AT_MOST) as usize);
                entry
                    .read_to_end(&mut data)
                    .map_err(|source| UnpackError::Data {
                        path: raw_path.clone(),
                        source,
                    })?;
                stats.file_bytes += data.len() as u64;
                Kind::File(Arc::new(data))
            }
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => Kind::Symlink(link_name(&entry, &raw_path)?),
            EntryType::Link => {
                let target = link_name(&entry, &raw_path)?;
                let found = tree
                    .resolve_parent(&target)
                    .ok()
                    .and_then(|key| tree.get(&key))
                    .cloned()
                    .ok_or_else(|| UnpackError::LinkTargetMissing {
                        path: raw_path.clone(),
                        target,
                    })?;
                // A hard link shares the inode: same contents and metadata as its target.
                let key = insert(tree, &path, &raw_path, found, &mut written)?;
                written.insert(key);
                stats.entries += 1;
                continue;
            }
            EntryType::Char | EntryType::Block => {
                let major = device_number(entry.header().device_major(), &raw_path)?;
                let minor = device_number(entry.header().device_minor(), &raw_path)?;
                if entry_type == EntryType::Char {
                    Kind::CharDevice { major, minor }
                } else {
                    Kind::BlockDevice { major, minor }
                }
            }
            EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(UnpackError::Unsupported {
                    path: raw_path,
                    problem: format!("unsupported tar entry type {:?}", other.as_byte() as char),
                })
            }
        };
        insert(tree, &path, &raw_path, Entry { kind, meta }, &mut written)?;
        stats.entries += 1;
    }
    // Read to the real end so a verifying reader underneath sees every byte.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(stats)
}

/// Insert an entry, creating missing parents 0755, and remember it and its ancestors.
fn insert(
    tree: &mut Tree,
    path: &str,
    raw_path: &str,
    entry: Entry,
    written: &mut HashSet<String>,
) -> Result<String, UnpackError> {
    if path.is_empty() && !matches!(entry.kind, Kind::Dir) {
        return Err(UnpackError::Entry {
            path: raw_path.to_string(),
            source: TreeError::BadPath { path: path.into() },
        });
    }
    ensure_parent(tree, path, raw_path, written)?;
    let key = tree
        .insert(path, entry)
        .map_err(|source| UnpackError::Entry {
            path: raw_path.to_string(),
            source,
        })?;
    written.insert(key.clone());
    Ok(key)
}

/// Create the parent directory of `path` if the tar did not; returns the parent's key.
fn ensure_parent(
    tree: &mut Tree,
    path: &str,
    raw_path: &str,
    written: &mut HashSet<String>,
) -> Result<String, UnpackError> {
    let parent = path.rfind('/').map_or("", |i| &path[..i]);
    let err = |source| UnpackError::Entry {
        path: raw_path.to_string(),
        source,
    };
    let key = match tree.resolve_all(parent).map_err(err)? {
        key if matches!(tree.get(&key).map(|e| &e.kind), Some(Kind::Dir)) => key,
        _ => tree.mkdir_all(parent, &Meta::new(0o755)).map_err(err)?,
    };
    let mut ancestor = key.as_str();
    loop {
        if !written.insert(ancestor.to_string()) {
            break;
        }
        match ancestor.rfind('/') {
            Some(i) => ancestor = &ancestor[..i],
            None if !ancestor.is_empty() => ancestor = "",
            None => break,
        }
    }
    Ok(key)
}

/// Drop what lower layers put below `dir`, keeping what this layer wrote.
fn make_opaque(tree: &mut Tree, dir: &str, written: &HashSet<String>) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = tree
        .iter()
        .filter(|(p, _)| !p.is_empty() && p.starts_with(&prefix) && !written.contains(*p))
        .map(|(p, _)| p.to_string())
        .collect();
    for path in doomed {
        // Keys are already resolved; a child of an earlier victim is gone already.
        let _ = tree.remove(&path);
    }
}

fn meta_of<R: Read>(entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta, UnpackError> {
    let header = entry.header();
    let bad = |what: &str, e: io::Error| UnpackError::Unsupported {
        path: path.to_string(),
        problem: format!("{what}: {e}"),
    };
    let mode = header.mode().map_err(|e| bad("mode", e))?;
    let uid = header.uid().map_err(|e| bad("uid", e))?;
    let gid = header.gid().map_err(|e| bad("gid", e))?;
    let mtime = header.mtime().map_err(|e| bad("mtime", e))?;
    let mut xattrs = BTreeMap::new();
    if let Some(pax) = entry.pax_extensions().map_err(|e| bad("PAX header", e))? {
        for ext in pax {
            let ext = ext.map_err(|e| bad("PAX record", e))?;
            if let Ok(key) = ext.key() {
                if let Some(name) = key.strip_prefix(XATTR_PAX_PREFIX) {
                    xattrs.insert(name.to_string(), ext.value_bytes().to_vec());
                }
            }
        }
    }
    let to_u32 = |what: &str, v: u64| {
        u32::try_from(v).map_err(|_| UnpackError::Unsupported {
            path: path.to_string(),
            problem: format!("{what} {v} out of range"),
        })
    };
    Ok(Meta {
        mode: (mode & 0o7777),
        uid: to_u32("uid", uid)?,
        gid: to_u32("gid", gid)?,
        mtime: i64::try_from(mtime).unwrap_or(i64::MAX),
        xattrs,
    })
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, path: &str) -> Result<String, UnpackError> {
    match entry.link_name_bytes() {
        Some(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        None => Err(UnpackError::Unsupported {
            path: path.to_string(),
            problem: "link without a target".into(),
        }),
    }
}

fn device_number(value: io::Result<Option<u32>>, path: &str) -> Result<u32, UnpackError> {
    match value {
        Ok(n) => Ok(n.unwrap_or(0)),
        Err(e) => Err(UnpackError::Unsupported {
            path: path.to_string(),
            problem: format!("device number: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Build a tar in memory; `kind` is the entry type byte.
    struct TarBuilder(tar::Builder<Vec<u8>>);

    impl TarBuilder {
        fn new() -> Self {
            TarBuilder(tar::Builder::new(Vec::new()))
        }
        fn add(
            &mut self,
            path: &str,
            ty: EntryType,
            mode: u32,
            data: &[u8],
            link: Option<&str>,
        ) -> &mut Self {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(ty);
            h.set_mode(mode);
            h.set_uid(1000);
            h.set_gid(100);
            h.set_mtime(1_700_000_000);
            h.set_size(data.len() as u64);
            if matches!(ty, EntryType::Char | EntryType::Block) {
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
            }
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            self.0.append_data(&mut h, path, data).unwrap();
            self
        }
        fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            self.add(path, EntryType::Regular, 0o644, data, None)
        }
        fn dir(&mut self, path: &str) -> &mut Self {
            self.add(path, EntryType::Directory, 0o755, b"", None)
        }
        fn bytes(&mut self) -> Vec<u8> {
            let b = std::mem::replace(&mut self.0, tar::Builder::new(Vec::new()));
            b.into_inner().unwrap()
        }
    }

    fn contents(t: &Tree, p: &str) -> Vec<u8> {
        match &t.get(p).unwrap().kind {
            Kind::File(c) => c.to_vec(),
            k => panic!("{p} is {k:?}"),
        }
    }

    #[test]
    fn files_dirs_links_devices_and_metadata() {
        let tar = TarBuilder::new()
            .dir("usr/")
            .add("usr/bin/su", EntryType::Regular, 0o4755, b"su", None)
            .add(
                "usr/bin/sh",
                EntryType::Symlink,
                0o777,
                b"",
                Some("busybox"),
            )
            .add(
                "usr/bin/su2",
                EntryType::Link,
                0o644,
                b"",
                Some("usr/bin/su"),
            )
            .add("dev/null", EntryType::Char, 0o666, b"", None)
            .add("run/fifo", EntryType::Fifo, 0o600, b"", None)
            .bytes();
        let mut t = Tree::new();
        let stats = apply_layer(&mut t, &tar[..]).unwrap();
        assert_eq!(stats.entries, 6);
        assert_eq!(stats.file_bytes, 2);
        let su = t.get("usr/bin/su").unwrap();
        assert_eq!(su.meta.mode, 0o4755);
        assert_eq!(
            (su.meta.uid, su.meta.gid, su.meta.mtime),
            (1000, 100, 1_700_000_000)
        );
        // The hard link shares the contents Arc and the inode's metadata.
        match (&su.kind, &t.get("usr/bin/su2").unwrap().kind) {
            (Kind::File(a), Kind::File(b)) => assert!(Arc::ptr_eq(a, b)),
            other => panic!("{other:?}"),
        }
        assert_eq!(t.get("usr/bin/su2").unwrap().meta.mode, 0o4755);
        assert_eq!(
            t.get("usr/bin/sh").unwrap().kind,
            Kind::Symlink("busybox".into())
        );
        assert_eq!(
            t.get("dev/null").unwrap().kind,
            Kind::CharDevice { major: 1, minor: 3 }
        );
        assert_eq!(t.get("run/fifo").unwrap().kind, Kind::Fifo);
        // Parents the tar left out are made 0755.
        assert_eq!(t.get("dev").unwrap().meta.mode, 0o755);
        assert_eq!(t.get("usr/bin").unwrap().kind, Kind::Dir);
    }

    #[test]
    fn whiteouts_delete_lower_entries() {
        let mut t = Tree::new();
        apply_layer(
            &mut t,
            &TarBuilder::new()
                .file("etc/a", b"a")
                .file("etc/b", b"b")
                .dir("var/cache/x")
                .bytes()[..],
        )
        .unwrap();
        let upper = TarBuilder::new()
            .file("etc/.wh.a", b"")
            .file("var/.wh.cache", b"")
            .file("etc/.wh.never", b"")
            .bytes();
        let stats = apply_layer(&mut t, &upper[..]).unwrap();
        assert_eq!(stats.whiteouts, 3);
        assert!(t.get("etc/a").is_none());
        assert_eq!(contents(&t, "etc/b"), b"b");
        assert!(t.get("var/cache").is_none() && t.get("var/cache/x").is_none());
        assert!(t.get("etc/.wh.a").is_none());
    }

    #[test]
    fn opaque_hides_lower_layers_only_wherever_the_marker_sits() {
        for marker_first in [true, false] {
            let mut t = Tree::new();
            apply_layer(
                &mut t,
                &TarBuilder::new()
                    .file("d/old", b"o")
                    .file("d/sub/deep", b"x")
                    .file("d/keep", b"1")
                    .bytes()[..],
            )
            .unwrap();
            let mut upper = TarBuilder::new();
            if marker_first {
                upper.file("d/.wh..wh..opq", b"");
            }
            upper.file("d/new", b"n").file("d/keep", b"2");
            if !marker_first {
                upper.file("d/.wh..wh..opq", b"");
            }
            apply_layer(&mut t, &upper.bytes()[..]).unwrap();
            let names: Vec<&str> = t.children("d").map(|(n, _)| n).collect();
            assert_eq!(names, vec!["keep", "new"], "marker first: {marker_first}");
            assert_eq!(contents(&t, "d/keep"), b"2");
            assert!(t.get("d/sub/deep").is_none());
        }
    }

    #[test]
    fn opaque_spares_lower_dirs_this_layer_writes_into() {
        let mut t = Tree::new();
        apply_layer(
            &mut t,
            &TarBuilder::new().file("d/sub/old", b"o").bytes()[..],
        )
        .unwrap();
        apply_layer(
            &mut t,
            &TarBuilder::new()
                .file("d/.wh..wh..opq", b"")
                .file("d/sub/new", b"n")
                .bytes()[..],
        )
        .unwrap();
        assert!(t.get("d/sub/new").is_some());
        assert!(t.get("d/sub/old").is_none());
    }

    #[test]
    fn pax_xattrs_and_long_names() {
        let long = format!("usr/lib/{}/file", "x".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        // A PAX header carrying an xattr, then the entry it describes.
        let record = |k: &str, v: &[u8]| {
            let body_len = k.len() + v.len() + 3;
            let mut len = body_len + 1;
            while format!("{len}").len() + body_len != len {
                len += 1;
            }
            let mut r = format!("{len} {k}=").into_bytes();
            r.extend_from_slice(v);
            r.push(b'\n');
            r
        };
        let pax = record("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02");
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(EntryType::XHeader);
        h.set_size(pax.len() as u64);
        b.append_data(&mut h, "PaxHeader", &pax[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_mode(0o755);
        h.set_size(1);
        b.append_data(&mut h, "usr/bin/ping", &b"p"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(1);
        b.append_data(&mut h, &long, &b"l"[..]).unwrap();
        let mut t = Tree::new();
        apply_layer(&mut t, &b.into_inner().unwrap()[..]).unwrap();
        let ping = t.get("usr/bin/ping").unwrap();
        assert_eq!(
            ping.meta
                .xattrs
                .get("security.capability")
                .map(Vec::as_slice),
            Some(&b"\x01\x00\x00\x02"[..])
        );
        assert_eq!(contents(&t, &long), b"l");
    }

    #[test]
    fn escaping_paths_are_rejected_with_the_entry_name() {
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        // tar::Builder refuses `..`; write the name into the raw header.
        let name = b"a/../../etc/passwd";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(b"x");
        bytes.resize(bytes.len() + 511 + 1024, 0);
        let err = apply_layer(&mut Tree::new(), &bytes[..]).unwrap_err();
        assert!(err.to_string().contains("a/../../etc/passwd"), "{err}");
    }

    #[test]
    fn missing_hard_link_target_is_an_error() {
        let tar = TarBuilder::new()
            .add("a", EntryType::Link, 0o644, b"", Some("nope"))
            .bytes();
        let err = apply_layer(&mut Tree::new(), &tar[..]).unwrap_err();
        assert!(
            matches!(err, UnpackError::LinkTargetMissing { ref path, .. } if path == "a"),
            "{err}"
        );
    }

    #[test]
    fn symlinked_parent_dirs_are_followed_inside_the_root() {
        let mut t = Tree::new();
        let tar = TarBuilder::new()
            .dir("usr/lib/")
            .add("lib", EntryType::Symlink, 0o777, b"", Some("usr/lib"))
            .file("lib/x.so", b"so")
            .bytes();
        apply_layer(&mut t, &tar[..]).unwrap();
        assert_eq!(contents(&t, "usr/lib/x.so"), b"so");
    }

    /// A header claiming 64 TiB with four bytes behind it: an error for a short
    /// archive, not an allocation of what the header says.
    #[test]
    fn a_header_size_is_not_trusted_for_an_allocation() {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_path("huge").unwrap();
        h.set_mode(0o644);
        h.set_size(1 << 46);
        h.set_cksum();
        let mut tar = h.as_bytes().to_vec();
        tar.extend_from_slice(b"tiny");
        let err = apply_layer(&mut Tree::new(), &tar[..]).unwrap_err();
        // The short data, or the skip past it: either way an error, never an abort.
        assert!(
            matches!(err, UnpackError::Data { .. } | UnpackError::Read(_)),
            "{err}"
        );
    }
}
