//! Layers as tar streams: the changes one step makes, encoded reproducibly.
//!
//! Same changes and epoch → same bytes: paths sorted, PAX records only where ustar cannot
//! hold a value, mtimes clamped, no user or group names, gzip with mtime 0 and no name.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::{Entry, Kind, Meta, Tree};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Add or replace the entry at this path.
    Put(Entry),
    /// Remove the path (a `.wh.` whiteout in the layer).
    Delete,
}

/// Changes keyed by normalised path (`usr/bin/sh`; the root is `""`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerChanges(pub BTreeMap<String, Change>);

impl LayerChanges {
    /// `path` may be written as in the image (`/etc/motd`); it is keyed normalised.
    pub fn put(&mut self, path: &str, entry: Entry) {
        self.0.insert(key(path), Change::Put(entry));
    }

    pub fn delete(&mut self, path: &str) {
        self.0.insert(key(path), Change::Delete);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Callers pass validated image paths; a path that would escape the root keys as-is
/// and is refused by the encoder, which names it.
fn key(path: &str) -> String {
    super::normalize(path).unwrap_or_else(|_| path.to_string())
}

/// A gzip-compressed layer blob and its identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedLayer {
    pub gzip: Vec<u8>,
    /// `sha256:HEX` of the gzip bytes (the blob digest).
    pub digest: String,
    /// `sha256:HEX` of the uncompressed tar (the config's rootfs.diff_ids entry).
    pub diff_id: String,
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("layer entry {path}: {problem}")]
    Entry { path: String, problem: String },
    #[error("writing the layer: {0}")]
    Write(#[from] io::Error),
}

/// Encode changes as a deterministic gzip'd tar.
pub fn encode_layer(
    changes: &LayerChanges,
    source_date_epoch: i64,
) -> Result<EncodedLayer, EncodeError> {
    let gz = GzEncoder::new(HashingWriter::new(Vec::new()), Compression::default());
    let mut tar = HashingWriter::new(gz);
    // First path of each shared contents buffer with the same metadata: later ones are hard links.
    let mut first_of: HashMap<*const Vec<u8>, (&str, &Meta)> = HashMap::new();
    for (path, change) in &changes.0 {
        match change {
            Change::Delete => {
                let (parent, name) = split(path);
                if name.is_empty() {
                    return Err(EncodeError::Entry {
                        path: path.clone(),
                        problem: "the root cannot be deleted".into(),
                    });
                }
                let wh = if parent.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{parent}/.wh.{name}")
                };
                let meta = Meta::new(0o644);
                write_entry(
                    &mut tar,
                    &wh,
                    EntryType::Regular,
                    &meta,
                    source_date_epoch,
                    None,
                    &[],
                    (0, 0),
                )?;
            }
            Change::Put(entry) => {
                let m = &entry.meta;
                match &entry.kind {
                    Kind::File(data) => {
                        let ptr = std::sync::Arc::as_ptr(data);
                        match first_of.get(&ptr) {
                            Some((target, meta)) if *meta == m => {
                                let target = target.to_string();
                                write_entry(
                                    &mut tar,
                                    path,
                                    EntryType::Link,
                                    m,
                                    source_date_epoch,
                                    Some(&target),
                                    &[],
                                    (0, 0),
                                )?
                            }
                            _ => {
                                first_of.insert(ptr, (path.as_str(), m));
                                write_entry(
                                    &mut tar,
                                    path,
                                    EntryType::Regular,
                                    m,
                                    source_date_epoch,
                                    None,
                                    data,
                                    (0, 0),
                                )?
                            }
                        }
                    }
                    Kind::Dir => {
                        let p = if path.is_empty() {
                            "./".to_string()
                        } else {
                            format!("{path}/")
                        };
                        write_entry(
                            &mut tar,
                            &p,
                            EntryType::Directory,
                            m,
                            source_date_epoch,
                            None,
                            &[],
                            (0, 0),
                        )?
                    }
                    Kind::Symlink(target) => write_entry(
                        &mut tar,
                        path,
                        EntryType::Symlink,
                        m,
                        source_date_epoch,
                        Some(target),
                        &[],
                        (0, 0),
                    )?,
                    Kind::CharDevice { major, minor } => write_entry(
                        &mut tar,
                        path,
                        EntryType::Char,
                        m,
                        source_date_epoch,
                        None,
                        &[],
                        (*major, *minor),
                    )?,
                    Kind::BlockDevice { major, minor } => write_entry(
                        &mut tar,
                        path,
                        EntryType::Block,
                        m,
                        source_date_epoch,
                        None,
                        &[],
                        (*major, *minor),
                    )?,
                    Kind::Fifo => write_entry(
                        &mut tar,
                        path,
                        EntryType::Fifo,
                        m,
                        source_date_epoch,
                        None,
                        &[],
                        (0, 0),
                    )?,
                    Kind::Socket => {
                        return Err(EncodeError::Entry {
                            path: path.clone(),
                            problem: "sockets cannot be stored in a tar".into(),
                        })
                    }
                }
            }
        }
    }
    // End of archive: two zero blocks.
    tar.write_all(&[0u8; 1024])?;
    let (gz, diff_id) = tar.finish();
    let (gzip, digest) = gz.finish()?.finish();
    let size = gzip.len() as u64;
    Ok(EncodedLayer {
        gzip,
        digest,
        diff_id,
        size,
    })
}

/// What changed from `lower` to `upper`: new or different entries as Put, removed ones as
/// Delete (only where the parent is still a directory in `upper`; a removed or replaced
/// parent already hides them).
pub fn diff_trees(lower: &Tree, upper: &Tree) -> LayerChanges {
    let mut changes = LayerChanges::default();
    let mut lo = lower.iter().peekable();
    let mut up = upper.iter().peekable();
    loop {
        let order = match (lo.peek(), up.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((lo_path, _)), Some((up_path, _))) => lo_path.cmp(up_path),
        };
        match order {
            Ordering::Less => {
                let (path, _) = lo.next().expect("peeked");
                removed(upper, path, &mut changes);
            }
            Ordering::Greater => {
                let (path, entry) = up.next().expect("peeked");
                changes.put(path, entry.clone());
            }
            Ordering::Equal => {
                let (_, lo_entry) = lo.next().expect("peeked");
                let (path, up_entry) = up.next().expect("peeked");
                if lo_entry != up_entry {
                    changes.put(path, up_entry.clone());
                }
            }
        }
    }
    changes
}

fn removed(upper: &Tree, path: &str, changes: &mut LayerChanges) {
    let (parent, _) = split(path);
    if matches!(upper.get(parent).map(|e| &e.kind), Some(Kind::Dir)) {
        changes.delete(path);
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

#[allow(clippy::too_many_arguments)]
fn write_entry<W: Write>(
    out: &mut W,
    path: &str,
    ty: EntryType,
    meta: &Meta,
    epoch: i64,
    link: Option<&str>,
    data: &[u8],
    (major, minor): (u32, u32),
) -> Result<(), EncodeError> {
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    let mut header = Header::new_ustar();
    header.set_entry_type(ty);
    if header.set_path(path).is_err() || path.len() > 255 {
        pax.push(("path".into(), path.as_bytes().to_vec()));
        header
            .set_path(truncated(path))
            .map_err(|e| EncodeError::Entry {
                path: path.into(),
                problem: e.to_string(),
            })?;
    }
    if let Some(target) = link {
        if target.len() > 100 || header.set_link_name(target).is_err() {
            pax.push(("linkpath".into(), target.as_bytes().to_vec()));
            header
                .set_link_name(truncated(target))
                .map_err(|e| EncodeError::Entry {
                    path: path.into(),
                    problem: e.to_string(),
                })?;
        }
    }
    for (name, value) in &meta.xattrs {
        pax.push((format!("SCHILY.xattr.{name}"), value.clone()));
    }
    header.set_mode(meta.mode & 0o7777);
    header.set_uid(meta.uid as u64);
    header.set_gid(meta.gid as u64);
    header.set_mtime(meta.mtime.clamp(0, epoch.max(0)) as u64);
    header.set_size(data.len() as u64);
    if matches!(ty, EntryType::Char | EntryType::Block) {
        header.set_device_major(major)?;
        header.set_device_minor(minor)?;
    }
    header.set_cksum();
    if !pax.is_empty() {
        let body = pax_body(&pax);
        let mut ph = Header::new_ustar();
        ph.set_entry_type(EntryType::XHeader);
        ph.set_path(format!(
            "PaxHeaders/{}",
            truncated(path)
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("x")
        ))
        .or_else(|_| ph.set_path("PaxHeaders/entry"))?;
        ph.set_mode(0o644);
        ph.set_mtime(0);
        ph.set_size(body.len() as u64);
        ph.set_cksum();
        out.write_all(ph.as_bytes())?;
        write_padded(out, &body)?;
    }
    out.write_all(header.as_bytes())?;
    write_padded(out, data)?;
    Ok(())
}

fn write_padded<W: Write>(out: &mut W, data: &[u8]) -> io::Result<()> {
    out.write_all(data)?;
    let pad = (512 - data.len() % 512) % 512;
    out.write_all(&[0u8; 512][..pad])
}

/// A PAX extended header body: records `LEN key=value\n`, LEN counting the whole record.
fn pax_body(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // space, '=', newline
        let mut len = rest + 1;
        while len.to_string().len() + rest != len {
            len += 1;
        }
        body.extend_from_slice(format!("{len} {key}=").as_bytes());
        body.extend_from_slice(value);
        body.push(b'\n');
    }
    body
}

/// The last 100 bytes of a name (on a char boundary), for readers that ignore PAX.
fn truncated(name: &str) -> &str {
    let mut start = name.len().saturating_sub(100);
    while !name.is_char_boundary(start) {
        start += 1;
    }
    &name[start..]
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(self) -> (W, String) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flate2::read::GzDecoder;

    use super::*;
    use crate::tree::unpack::apply_layer;

    fn meta(mode: u32, mtime: i64) -> Meta {
        Meta {
            mode,
            uid: 1000,
            gid: 100,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }

    fn sample() -> Tree {
        let mut t = Tree::new();
        t.mkdir_all("usr/bin", &meta(0o755, 10)).unwrap();
        let busybox = Arc::new(b"\x7fELF busybox".to_vec());
        let mut su = meta(0o4755, 20);
        su.xattrs
            .insert("security.capability".into(), vec![1, 0, 0, 2, 0xff]);
        t.insert(
            "usr/bin/busybox",
            Entry {
                kind: Kind::File(busybox.clone()),
                meta: su.clone(),
            },
        )
        .unwrap();
        t.insert(
            "usr/bin/su",
            Entry {
                kind: Kind::File(busybox),
                meta: su,
            },
        )
        .unwrap();
        t.insert(
            "usr/bin/sh",
            Entry {
                kind: Kind::Symlink("busybox".into()),
                meta: meta(0o777, 5),
            },
        )
        .unwrap();
        t.mkdir_all("dev", &meta(0o755, 0)).unwrap();
        t.insert(
            "dev/console",
            Entry {
                kind: Kind::CharDevice { major: 5, minor: 1 },
                meta: meta(0o600, 0),
            },
        )
        .unwrap();
        t.insert(
            "dev/sda",
            Entry {
                kind: Kind::BlockDevice { major: 8, minor: 0 },
                meta: meta(0o660, 0),
            },
        )
        .unwrap();
        t.insert(
            "dev/initctl",
            Entry {
                kind: Kind::Fifo,
                meta: meta(0o600, 0),
            },
        )
        .unwrap();
        let deep = format!("usr/lib/{}", ["segment-of-a-long-path"; 12].join("/"));
        t.mkdir_all(&deep, &meta(0o755, 1)).unwrap();
        t.insert(
            &format!("{deep}/file"),
            Entry {
                kind: Kind::File(Arc::new(vec![7; 70_000])),
                meta: meta(0o644, 3),
            },
        )
        .unwrap();
        t.insert(
            "usr/bin/far",
            Entry {
                kind: Kind::Symlink(format!("/{deep}/file")),
                meta: meta(0o777, 5),
            },
        )
        .unwrap();
        t
    }

    fn untar(layer: &EncodedLayer, onto: &mut Tree) {
        apply_layer(onto, GzDecoder::new(&layer.gzip[..])).unwrap();
    }

    #[test]
    fn encode_then_apply_gives_the_same_tree() {
        let upper = sample();
        let layer = encode_layer(&diff_trees(&Tree::new(), &upper), 1_000).unwrap();
        let mut back = Tree::new();
        untar(&layer, &mut back);
        assert_eq!(back, upper);
        // The shared buffer went in as a hard link and came back shared.
        match (
            &back.get("usr/bin/su").unwrap().kind,
            &back.get("usr/bin/busybox").unwrap().kind,
        ) {
            (Kind::File(a), Kind::File(b)) => assert!(Arc::ptr_eq(a, b)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn identities_match_the_bytes_and_are_reproducible() {
        let changes = diff_trees(&Tree::new(), &sample());
        let a = encode_layer(&changes, 1_000).unwrap();
        let b = encode_layer(&changes, 1_000).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&a.gzip)))
        );
        let mut tar = Vec::new();
        io::Read::read_to_end(&mut GzDecoder::new(&a.gzip[..]), &mut tar).unwrap();
        assert_eq!(
            a.diff_id,
            format!("sha256:{}", hex::encode(Sha256::digest(&tar)))
        );
        assert_eq!(a.size, a.gzip.len() as u64);
        assert_ne!(
            a.digest,
            encode_layer(&changes, 2).unwrap().digest,
            "the epoch clamps mtimes"
        );
    }

    #[test]
    fn mtimes_are_clamped_to_the_epoch() {
        let mut changes = LayerChanges::default();
        changes.put(
            "new",
            Entry {
                kind: Kind::File(Arc::new(vec![])),
                meta: meta(0o644, 5_000),
            },
        );
        let layer = encode_layer(&changes, 1_000).unwrap();
        let mut t = Tree::new();
        untar(&layer, &mut t);
        assert_eq!(t.get("new").unwrap().meta.mtime, 1_000);
    }

    #[test]
    fn diff_then_apply_onto_lower_gives_upper() {
        let lower = sample();
        let mut upper = lower.clone();
        upper.remove("dev").unwrap();
        upper.remove("usr/bin/sh").unwrap();
        upper
            .insert(
                "usr/bin",
                Entry {
                    kind: Kind::Dir,
                    meta: meta(0o700, 9),
                },
            )
            .unwrap();
        upper
            .insert(
                "usr/lib",
                Entry {
                    kind: Kind::File(Arc::new(b"now a file".to_vec())),
                    meta: meta(0o644, 9),
                },
            )
            .unwrap();
        upper
            .insert(
                "etc",
                Entry {
                    kind: Kind::Dir,
                    meta: meta(0o755, 9),
                },
            )
            .unwrap();
        upper
            .insert(
                "etc/hostname",
                Entry {
                    kind: Kind::File(Arc::new(b"harmony\n".to_vec())),
                    meta: meta(0o644, 9),
                },
            )
            .unwrap();
        let changes = diff_trees(&lower, &upper);
        // A removed dir is one whiteout, not one per child; a dir replaced by a file needs none.
        assert_eq!(changes.0.get("dev"), Some(&Change::Delete));
        assert!(!changes.0.contains_key("dev/console"));
        assert!(!changes.0.keys().any(|k| k.starts_with("usr/lib/")));
        let layer = encode_layer(&changes, 1_000).unwrap();
        let mut back = lower.clone();
        untar(&layer, &mut back);
        assert_eq!(back, upper);
    }

    #[test]
    fn sockets_are_refused_by_name() {
        let mut changes = LayerChanges::default();
        changes.put(
            "run/sock",
            Entry {
                kind: Kind::Socket,
                meta: meta(0o755, 0),
            },
        );
        let err = encode_layer(&changes, 0).unwrap_err();
        assert!(err.to_string().contains("run/sock"), "{err}");
    }
}
