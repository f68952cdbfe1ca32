//! The read-only root as a squashfs 4.0 image (zstd), with extended attributes.
//!
//! Written here because no Rust crate writes xattrs (backhand 0.21 and 0.25 drop them),
//! and without them binaries lose their file capabilities (`security.capability`) and an
//! SELinux policy finds no labels (`security.selinux`). Layout, in the order the kernel
//! checks it: superblock; data (each file's whole blocks, then fragment blocks packing
//! the files' tails); inode, directory, fragment, id and xattr tables. Same tree and
//! epoch, same bytes: entries in path order, compressed in parallel but placed in order.

mod compress;
pub mod earlier;
mod metadata;
mod xattrs;

use std::collections::HashMap;

use super::EmitError;
use crate::tree::{Entry, Kind, Meta, Tree};
use compress::compress_all;
use earlier::{BlockList, EarlierBlocks};
use metadata::MetadataWriter;
use xattrs::{split_name, XattrSet, XattrTable};

const BLOCK_SIZE: usize = 128 * 1024;
const BLOCK_LOG: u16 = 17;
const SUPERBLOCK_SIZE: usize = 96;
const MAGIC: u32 = 0x7371_7368;
const ZSTD: u16 = 6;
/// Superblock flag: no xattr table.
const NO_XATTRS: u16 = 0x0200;
/// Data block size bit: the block is stored uncompressed.
const DATA_UNCOMPRESSED: u32 = 1 << 24;
const NOT_SET: u64 = u64::MAX;
const NO_FRAGMENT: u32 = u32::MAX;
const NO_XATTR: u32 = u32::MAX;
/// Images are padded to this, as mksquashfs does (block devices read whole sectors).
const PAD_TO: usize = 4096;

/// Inode types: basic ones, and the extended form (basic + 7) that carries an xattr index.
const DIR: u16 = 1;
const FILE: u16 = 2;
const SYMLINK: u16 = 3;
const BLOCK_DEV: u16 = 4;
const CHAR_DEV: u16 = 5;
const FIFO: u16 = 6;
const SOCKET: u16 = 7;
const EXTENDED: u16 = 7;

/// Encode the whole tree; same tree and epoch, same bytes.
pub fn squashfs_image(tree: &Tree, source_date_epoch: i64) -> Result<Vec<u8>, EmitError> {
    Ok(squashfs_image_reusing(tree, source_date_epoch, &EarlierBlocks::default())?.0)
}

/// [`squashfs_image`], taking already compressed blocks from `earlier`; also returns the
/// image's block list (see [`earlier`]), which lets the next build reuse its blocks.
pub fn squashfs_image_reusing(
    tree: &Tree,
    source_date_epoch: i64,
    earlier: &EarlierBlocks,
) -> Result<(Vec<u8>, Vec<u8>), EmitError> {
    let epoch = source_date_epoch.clamp(0, u32::MAX as i64);
    let mut out = vec![0u8; SUPERBLOCK_SIZE];
    let (files, fragments, block_list) = write_data(tree, &mut out, earlier);

    let mut w = Writer {
        tree,
        files,
        ids: Vec::new(),
        id_index: HashMap::new(),
        xattrs: XattrTable::default(),
        inodes: MetadataWriter::default(),
        dirs: MetadataWriter::default(),
        inode_count: 0,
        epoch,
        dropped_xattrs: 0,
    };
    w.inode_count = 1;
    let root = w.directory("", 1, None)?;
    if w.dropped_xattrs > 0 {
        tracing::warn!(
            attributes = w.dropped_xattrs,
            "squashfs: extended attributes outside user., trusted. and security. dropped \
             (squashfs cannot store them)"
        );
    }
    let Writer {
        ids,
        xattrs,
        inodes,
        dirs,
        inode_count,
        ..
    } = w;

    let inode_table_start = out.len() as u64;
    out.extend_from_slice(&inodes.finish().0);
    let directory_table_start = out.len() as u64;
    out.extend_from_slice(&dirs.finish().0);

    let fragment_table_start = if fragments.is_empty() {
        NOT_SET
    } else {
        let mut table = MetadataWriter::default();
        for (start, size) in &fragments {
            let mut e = [0u8; 16];
            e[..8].copy_from_slice(&start.to_le_bytes());
            e[8..12].copy_from_slice(&size.to_le_bytes());
            table.write(&e);
        }
        lookup_table(&mut out, table)
    };

    let mut id_table = MetadataWriter::default();
    for id in &ids {
        id_table.write(&id.to_le_bytes());
    }
    let id_table_start = lookup_table(&mut out, id_table);

    let (xattr_id_table_start, flags) = if xattrs.is_empty() {
        (NOT_SET, NO_XATTRS)
    } else {
        let (tables, header_at) = xattrs.finish(out.len() as u64);
        out.extend_from_slice(&tables);
        (header_at, 0)
    };

    let bytes_used = out.len() as u64;
    let mut sb = Vec::with_capacity(SUPERBLOCK_SIZE);
    sb.extend_from_slice(&MAGIC.to_le_bytes());
    sb.extend_from_slice(&inode_count.to_le_bytes());
    sb.extend_from_slice(&(epoch as u32).to_le_bytes());
    sb.extend_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
    sb.extend_from_slice(&(fragments.len() as u32).to_le_bytes());
    sb.extend_from_slice(&ZSTD.to_le_bytes());
    sb.extend_from_slice(&BLOCK_LOG.to_le_bytes());
    sb.extend_from_slice(&flags.to_le_bytes());
    sb.extend_from_slice(&(ids.len() as u16).to_le_bytes());
    sb.extend_from_slice(&4u16.to_le_bytes());
    sb.extend_from_slice(&0u16.to_le_bytes());
    sb.extend_from_slice(&root.reference.to_le_bytes());
    sb.extend_from_slice(&bytes_used.to_le_bytes());
    sb.extend_from_slice(&id_table_start.to_le_bytes());
    sb.extend_from_slice(&xattr_id_table_start.to_le_bytes());
    sb.extend_from_slice(&inode_table_start.to_le_bytes());
    sb.extend_from_slice(&directory_table_start.to_le_bytes());
    sb.extend_from_slice(&fragment_table_start.to_le_bytes());
    sb.extend_from_slice(&NOT_SET.to_le_bytes()); // no export (NFS) table
    out[..SUPERBLOCK_SIZE].copy_from_slice(&sb);
    out.resize(out.len().next_multiple_of(PAD_TO), 0);
    Ok((out, block_list.into_bytes()))
}

/// A table's metadata blocks, then the list of where each starts (what the superblock
/// points at). Returns that list's offset.
fn lookup_table(out: &mut Vec<u8>, table: MetadataWriter) -> u64 {
    let at = out.len() as u64;
    let (blocks, starts) = table.finish();
    out.extend_from_slice(&blocks);
    let index = out.len() as u64;
    for s in starts {
        out.extend_from_slice(&(at + s).to_le_bytes());
    }
    index
}

/// Where a regular file's data went.
struct FileLayout {
    /// Offset of its first whole block (0 when it has none).
    start: u64,
    /// Each whole block's stored size (with `DATA_UNCOMPRESSED` when stored raw).
    sizes: Vec<u32>,
    /// Fragment index and offset of its tail, if it has one.
    fragment: Option<(u32, u32)>,
}

/// A file's whole blocks (indices into the block list) and its tail's fragment.
struct Plan<'t> {
    path: &'t str,
    blocks: std::ops::Range<usize>,
    fragment: Option<(u32, u32)>,
}

/// Write every file's whole blocks and then the fragment blocks into `out`; returns each
/// file's layout (by path), each fragment block's (offset, stored size) and the list of
/// every stored block.
fn write_data<'t>(
    tree: &'t Tree,
    out: &mut Vec<u8>,
    earlier: &EarlierBlocks,
) -> (HashMap<&'t str, FileLayout>, Vec<(u64, u32)>, BlockList) {
    let mut blocks: Vec<&[u8]> = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
    let mut fragments: Vec<Vec<u8>> = Vec::new();
    let mut filling: Vec<u8> = Vec::new();
    for (path, entry) in tree.iter() {
        let Kind::File(contents) = &entry.kind else {
            continue;
        };
        let whole = contents.len() / BLOCK_SIZE;
        let first = blocks.len();
        blocks.extend(contents.chunks_exact(BLOCK_SIZE));
        let tail = &contents[whole * BLOCK_SIZE..];
        let fragment = (!tail.is_empty()).then(|| {
            if filling.len() + tail.len() > BLOCK_SIZE {
                fragments.push(std::mem::take(&mut filling));
            }
            let at = (fragments.len() as u32, filling.len() as u32);
            filling.extend_from_slice(tail);
            at
        });
        plans.push(Plan {
            path,
            blocks: first..blocks.len(),
            fragment,
        });
    }
    if !filling.is_empty() {
        fragments.push(filling);
    }
    let file_blocks = blocks.len();
    blocks.extend(fragments.iter().map(Vec::as_slice));

    let packed = compress_all(&blocks, earlier);
    let mut placed: Vec<(u64, u32)> = Vec::with_capacity(blocks.len());
    let mut block_list = BlockList::default();
    for (raw, packed) in blocks.iter().zip(&packed) {
        let at = out.len() as u64;
        let size = match &packed.bytes {
            Some(p) => {
                out.extend_from_slice(p);
                p.len() as u32
            }
            None => {
                out.extend_from_slice(raw);
                raw.len() as u32 | DATA_UNCOMPRESSED
            }
        };
        block_list.push(&packed.sha, at, size);
        placed.push((at, size));
    }
    let files = plans
        .into_iter()
        .map(|plan| {
            let range = plan.blocks;
            let start = if range.is_empty() {
                0
            } else {
                placed[range.start].0
            };
            let sizes = placed[range].iter().map(|p| p.1).collect();
            let layout = FileLayout {
                start,
                sizes,
                fragment: plan.fragment,
            };
            (plan.path, layout)
        })
        .collect();
    (files, placed.split_off(file_blocks), block_list)
}

/// An inode once written: where (for directory entries) and what.
struct Written {
    reference: u64,
    number: u32,
    basic_type: u16,
}

struct Writer<'t> {
    tree: &'t Tree,
    files: HashMap<&'t str, FileLayout>,
    ids: Vec<u32>,
    id_index: HashMap<u32, u16>,
    xattrs: XattrTable,
    inodes: MetadataWriter,
    dirs: MetadataWriter,
    inode_count: u32,
    epoch: i64,
    dropped_xattrs: usize,
}

impl Writer<'_> {
    /// A directory: its children's inodes first (numbered in path order after it), then
    /// its listing, then its own inode. The root (`parent` None) names the inode count
    /// plus one as its parent, as mksquashfs writes it.
    fn directory(
        &mut self,
        path: &str,
        number: u32,
        parent: Option<u32>,
    ) -> Result<Written, EmitError> {
        let tree = self.tree;
        let entry = tree
            .get_exact(path)
            .ok_or_else(|| problem(path, "missing from the tree"))?;
        let mut listing = Vec::new();
        let mut subdirs = 0u32;
        for (name, child) in tree.children(path) {
            let child_path = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            };
            if name.is_empty() || name.len() > 256 {
                return Err(problem(&child_path, "a name must be 1 to 256 bytes"));
            }
            self.inode_count += 1;
            let child_number = self.inode_count;
            let written = match &child.kind {
                Kind::Dir => {
                    subdirs += 1;
                    self.directory(&child_path, child_number, Some(number))?
                }
                _ => self.leaf(&child_path, child, child_number)?,
            };
            listing.push((name, written));
        }
        let (block, offset) = self.dirs.position();
        // The kernel counts `.` and `..` in the size: 3 bytes for an empty directory.
        let size = self.write_listing(&listing) + 3;
        let parent = parent.unwrap_or(self.inode_count + 1);
        let nlink = 2 + subdirs;
        let xattr = self.xattr_id(&entry.meta);
        let mut body = Vec::with_capacity(24);
        let kind = if xattr == NO_XATTR && size <= u32::from(u16::MAX) {
            body.extend_from_slice(&block.to_le_bytes());
            body.extend_from_slice(&nlink.to_le_bytes());
            body.extend_from_slice(&(size as u16).to_le_bytes());
            body.extend_from_slice(&offset.to_le_bytes());
            body.extend_from_slice(&parent.to_le_bytes());
            DIR
        } else {
            body.extend_from_slice(&nlink.to_le_bytes());
            body.extend_from_slice(&size.to_le_bytes());
            body.extend_from_slice(&block.to_le_bytes());
            body.extend_from_slice(&parent.to_le_bytes());
            body.extend_from_slice(&0u16.to_le_bytes()); // no directory index
            body.extend_from_slice(&offset.to_le_bytes());
            body.extend_from_slice(&xattr.to_le_bytes());
            DIR + EXTENDED
        };
        self.inode(path, &entry.meta, kind, number, &body)
    }

    /// Everything but a directory.
    fn leaf(&mut self, path: &str, entry: &Entry, number: u32) -> Result<Written, EmitError> {
        let xattr = self.xattr_id(&entry.meta);
        let extended = xattr != NO_XATTR;
        let mut body = Vec::new();
        let kind = match &entry.kind {
            Kind::File(contents) => {
                let layout = self
                    .files
                    .get(path)
                    .ok_or_else(|| problem(path, "file data was not laid out"))?;
                let (fragment, frag_offset) = layout.fragment.unwrap_or((NO_FRAGMENT, 0));
                let size = contents.len() as u64;
                let small = u32::try_from(size).is_ok() && u32::try_from(layout.start).is_ok();
                if !extended && small {
                    body.extend_from_slice(&(layout.start as u32).to_le_bytes());
                    body.extend_from_slice(&fragment.to_le_bytes());
                    body.extend_from_slice(&frag_offset.to_le_bytes());
                    body.extend_from_slice(&(size as u32).to_le_bytes());
                } else {
                    body.extend_from_slice(&layout.start.to_le_bytes());
                    body.extend_from_slice(&size.to_le_bytes());
                    body.extend_from_slice(&0u64.to_le_bytes()); // no sparse bytes
                    body.extend_from_slice(&1u32.to_le_bytes()); // nlink
                    body.extend_from_slice(&fragment.to_le_bytes());
                    body.extend_from_slice(&frag_offset.to_le_bytes());
                    body.extend_from_slice(&xattr.to_le_bytes());
                }
                for s in &layout.sizes {
                    body.extend_from_slice(&s.to_le_bytes());
                }
                if !extended && small {
                    FILE
                } else {
                    FILE + EXTENDED
                }
            }
            Kind::Symlink(target) => {
                body.extend_from_slice(&1u32.to_le_bytes());
                body.extend_from_slice(&(target.len() as u32).to_le_bytes());
                body.extend_from_slice(target.as_bytes());
                SYMLINK
            }
            Kind::BlockDevice { major, minor } | Kind::CharDevice { major, minor } => {
                body.extend_from_slice(&1u32.to_le_bytes());
                body.extend_from_slice(&encode_dev(*major, *minor).to_le_bytes());
                if matches!(entry.kind, Kind::BlockDevice { .. }) {
                    BLOCK_DEV
                } else {
                    CHAR_DEV
                }
            }
            Kind::Fifo => {
                body.extend_from_slice(&1u32.to_le_bytes());
                FIFO
            }
            Kind::Socket => {
                body.extend_from_slice(&1u32.to_le_bytes());
                SOCKET
            }
            Kind::Dir => return Err(problem(path, "a directory written as a leaf")),
        };
        // Files carry the xattr index inside their extended body; the others append it.
        let kind = match (kind, extended) {
            (FILE | FILE_EXTENDED, _) => kind,
            (k, true) => {
                body.extend_from_slice(&xattr.to_le_bytes());
                k + EXTENDED
            }
            (k, false) => k,
        };
        self.inode(path, &entry.meta, kind, number, &body)
    }

    /// The common inode header, then `body`, into the inode table.
    fn inode(
        &mut self,
        path: &str,
        meta: &Meta,
        kind: u16,
        number: u32,
        body: &[u8],
    ) -> Result<Written, EmitError> {
        let reference = self.inodes.reference();
        let uid = self.id(path, meta.uid)?;
        let gid = self.id(path, meta.gid)?;
        let mut header = Vec::with_capacity(16 + body.len());
        header.extend_from_slice(&kind.to_le_bytes());
        header.extend_from_slice(&((meta.mode & 0o7777) as u16).to_le_bytes());
        header.extend_from_slice(&uid.to_le_bytes());
        header.extend_from_slice(&gid.to_le_bytes());
        header.extend_from_slice(&clamp_time(meta.mtime, self.epoch).to_le_bytes());
        header.extend_from_slice(&number.to_le_bytes());
        header.extend_from_slice(body);
        self.inodes.write(&header);
        let basic_type = if kind > EXTENDED {
            kind - EXTENDED
        } else {
            kind
        };
        Ok(Written {
            reference,
            number,
            basic_type,
        })
    }

    /// Directory entries in runs that share an inode metadata block (at most 256 each,
    /// inode numbers within ±32767 of the run's first); returns the bytes written.
    fn write_listing(&mut self, listing: &[(&str, Written)]) -> u32 {
        let mut written = 0usize;
        let mut rest = listing;
        while let Some((_, first)) = rest.first() {
            let block = first.reference >> 16;
            let base = i64::from(first.number);
            let run = rest
                .iter()
                .take(256)
                .take_while(|(_, w)| {
                    w.reference >> 16 == block && i16::try_from(i64::from(w.number) - base).is_ok()
                })
                .count();
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&(run as u32 - 1).to_le_bytes());
            bytes.extend_from_slice(&(block as u32).to_le_bytes());
            bytes.extend_from_slice(&first.number.to_le_bytes());
            for (name, w) in &rest[..run] {
                bytes.extend_from_slice(&((w.reference & 0xffff) as u16).to_le_bytes());
                bytes.extend_from_slice(&((i64::from(w.number) - base) as i16).to_le_bytes());
                bytes.extend_from_slice(&w.basic_type.to_le_bytes());
                bytes.extend_from_slice(&(name.len() as u16 - 1).to_le_bytes());
                bytes.extend_from_slice(name.as_bytes());
            }
            self.dirs.write(&bytes);
            written += bytes.len();
            rest = &rest[run..];
        }
        written as u32
    }

    /// The id table index of a uid or gid (squashfs has room for 65536 distinct ids).
    fn id(&mut self, path: &str, id: u32) -> Result<u16, EmitError> {
        if let Some(i) = self.id_index.get(&id) {
            return Ok(*i);
        }
        let i = u16::try_from(self.ids.len())
            .map_err(|_| problem(path, "more than 65536 distinct owners and groups"))?;
        self.ids.push(id);
        self.id_index.insert(id, i);
        Ok(i)
    }

    /// The xattr id of an entry's attributes (those squashfs can store), or NO_XATTR.
    fn xattr_id(&mut self, meta: &Meta) -> u32 {
        if meta.xattrs.is_empty() {
            return NO_XATTR;
        }
        let set: XattrSet = meta
            .xattrs
            .iter()
            .filter(|(name, _)| split_name(name).is_some())
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        self.dropped_xattrs += meta.xattrs.len() - set.len();
        if set.is_empty() {
            NO_XATTR
        } else {
            self.xattrs.id(&set)
        }
    }
}

const FILE_EXTENDED: u16 = FILE + EXTENDED;

fn problem(path: &str, problem: &str) -> EmitError {
    EmitError::Squashfs {
        path: format!("/{path}"),
        problem: problem.to_string(),
    }
}

fn clamp_time(mtime: i64, source_date_epoch: i64) -> u32 {
    mtime.clamp(0, source_date_epoch.clamp(0, u32::MAX as i64)) as u32
}

/// Linux's `new_encode_dev`, the device number layout squashfs stores.
fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::Arc;

    use super::*;
    use crate::tree::Entry;

    const EPOCH: i64 = 1_700_000_000;

    fn sample_tree() -> Tree {
        let mut t = Tree::new();
        t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
        let mut srv = Meta::new(0o750);
        srv.uid = 33;
        srv.gid = 44;
        srv.mtime = EPOCH + 1000; // clamped
        t.mkdir_all("srv/data", &srv).unwrap();
        let mut motd = Meta::new(0o640);
        motd.gid = 4;
        motd.mtime = 1_600_000_000; // kept
        t.insert(
            "etc/motd",
            Entry {
                kind: Kind::File(Arc::new(b"hello\n".repeat(50_000))),
                meta: motd,
            },
        )
        .unwrap();
        let link = Entry {
            kind: Kind::Symlink("../usr/share/zoneinfo/UTC".into()),
            meta: Meta::new(0o777),
        };
        t.insert("etc/localtime", link).unwrap();
        t.mkdir_all("dev", &Meta::new(0o755)).unwrap();
        let null = Entry {
            kind: Kind::CharDevice { major: 1, minor: 3 },
            meta: Meta::new(0o666),
        };
        t.insert("dev/null", null).unwrap();
        t.insert(
            "usr-bin-su",
            Entry {
                kind: Kind::File(Arc::new(b"#!".to_vec())),
                meta: Meta::new(0o4755),
            },
        )
        .unwrap();
        t
    }

    /// A rebuild after one file changed takes every unchanged block from the earlier
    /// image and still writes exactly what a fresh build writes.
    #[test]
    fn blocks_from_an_earlier_image_give_the_same_bytes() {
        let mut tree = sample_tree();
        let (first, list) =
            squashfs_image_reusing(&tree, EPOCH, &EarlierBlocks::default()).unwrap();
        assert_eq!(first, squashfs_image(&tree, EPOCH).unwrap());
        let earlier = EarlierBlocks::parse(&first, &list);
        assert!(!earlier.is_empty());
        let changed = Entry {
            kind: Kind::File(Arc::new(b"changed\n".repeat(40_000))),
            meta: Meta::new(0o644),
        };
        tree.insert("etc/issue", changed).unwrap();
        let (second, _) = squashfs_image_reusing(&tree, EPOCH, &earlier).unwrap();
        assert_eq!(second, squashfs_image(&tree, EPOCH).unwrap());
    }

    /// The earlier image's blocks are really used: one whose stored bytes were replaced
    /// shows up in the new image (which is why the block list is only ever read from a
    /// cache entry whose digest was checked).
    #[test]
    fn an_earlier_block_is_taken_as_stored() {
        let tree = sample_tree();
        let (first, list) =
            squashfs_image_reusing(&tree, EPOCH, &EarlierBlocks::default()).unwrap();
        let marker = b"\x28\xb5\x2f\xfdPLANTED";
        let mut planted = first.clone();
        let record = &list[..44];
        let start = u64::from_le_bytes(record[32..40].try_into().unwrap()) as usize;
        planted[start..start + marker.len()].copy_from_slice(marker);
        let earlier = EarlierBlocks::parse(&planted, &list);
        let (second, _) = squashfs_image_reusing(&tree, EPOCH, &earlier).unwrap();
        assert_ne!(second, first);
        assert_eq!(&second[start..start + marker.len()], marker);
    }

    #[test]
    fn same_tree_same_bytes() {
        let a = squashfs_image(&sample_tree(), EPOCH).unwrap();
        let b = squashfs_image(&sample_tree(), EPOCH).unwrap();
        assert_eq!(&a[..4], b"hsqs");
        assert_eq!(a, b);
    }

    #[test]
    fn unsquashfs_lists_owners_modes_and_times() {
        let image = squashfs_image(&sample_tree(), EPOCH).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.squashfs");
        std::fs::write(&path, image).unwrap();
        let out = Command::new("unsquashfs")
            .arg("-lln")
            .arg(&path)
            .env("TZ", "UTC")
            .output()
            .expect("unsquashfs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        // Columns are padded: compare with single spaces.
        let lines: Vec<String> = listing
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        let line = |name: &str| {
            let name = format!(" squashfs-root/{name}");
            lines
                .iter()
                .find(|l| l.ends_with(&name))
                .unwrap_or_else(|| panic!("{name}: {listing}"))
                .clone()
        };
        assert!(
            line("srv/data").starts_with("drwxr-x--- 33/44"),
            "{listing}"
        );
        assert!(
            line("srv/data").contains("2023-11-14 22:13"),
            "mtime clamped to the epoch: {listing}"
        );
        assert!(
            line("etc/motd").starts_with("-rw-r----- 0/4 300000 2020-09-13 12:26"),
            "{listing}"
        );
        assert!(
            line("etc/localtime -> ../usr/share/zoneinfo/UTC").starts_with("lrwxrwxrwx 0/0"),
            "{listing}"
        );
        assert!(
            line("dev/null").starts_with("crw-rw-rw- 0/0 1, 3"),
            "{listing}"
        );
        assert!(line("usr-bin-su").starts_with("-rwsr-xr-x"), "{listing}");

        let extract = dir.path().join("x");
        let status = Command::new("unsquashfs")
            .args(["-q", "-no-xattrs", "-d"])
            .arg(&extract)
            .arg(&path)
            .arg("etc/motd")
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(extract.join("etc/motd")).unwrap(),
            b"hello\n".repeat(50_000)
        );
    }

    /// `security.capability` as setcap writes `cap_net_raw+ep` (VFS_CAP_REVISION_2).
    const CAP_NET_RAW: [u8; 20] = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    fn labelled(mode: u32, label: &str) -> Meta {
        let mut m = Meta::new(mode);
        m.xattrs
            .insert("security.selinux".into(), label.as_bytes().to_vec());
        m
    }

    fn write_image(tree: &Tree, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("root.squashfs");
        std::fs::write(&path, squashfs_image(tree, EPOCH).unwrap()).unwrap();
        path
    }

    /// squashfs-tools-ng's reader (an implementation apart from ours and the kernel's).
    fn xattrs_of(image: &std::path::Path, path: &str) -> Vec<String> {
        let out = Command::new("rdsquashfs")
            .args(["-x", path])
            .arg(image)
            .output()
            .expect("rdsquashfs (squashfs-tools-ng)");
        assert!(
            out.status.success(),
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn capabilities_and_selinux_labels_are_stored() {
        let mut t = Tree::new();
        t.mkdir_all("usr", &Meta::new(0o755)).unwrap();
        t.mkdir_all("usr/bin", &labelled(0o755, "system_u:object_r:bin_t:s0"))
            .unwrap();
        let mut ping = labelled(0o755, "system_u:object_r:ping_exec_t:s0");
        ping.xattrs
            .insert("security.capability".into(), CAP_NET_RAW.to_vec());
        t.insert(
            "usr/bin/ping",
            Entry {
                kind: Kind::File(Arc::new(vec![0x7f; 200_000])),
                meta: ping,
            },
        )
        .unwrap();
        // Two files with the same label share one stored set.
        for name in ["ls", "cat"] {
            t.insert(
                &format!("usr/bin/{name}"),
                Entry {
                    kind: Kind::File(Arc::new(name.as_bytes().to_vec())),
                    meta: labelled(0o755, "system_u:object_r:bin_t:s0"),
                },
            )
            .unwrap();
        }
        t.mkdir_all("dev", &Meta::new(0o755)).unwrap();
        t.insert(
            "dev/null",
            Entry {
                kind: Kind::CharDevice { major: 1, minor: 3 },
                meta: labelled(0o666, "system_u:object_r:null_device_t:s0"),
            },
        )
        .unwrap();
        // POSIX ACLs have no place in squashfs: dropped, the rest kept.
        let mut acl = labelled(0o644, "system_u:object_r:etc_t:s0");
        acl.xattrs
            .insert("system.posix_acl_access".into(), vec![2, 0, 0, 0]);
        t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
        t.insert(
            "etc/acl",
            Entry {
                kind: Kind::File(Arc::new(b"x".to_vec())),
                meta: acl,
            },
        )
        .unwrap();

        let dir = tempfile::tempdir().unwrap();
        let image = write_image(&t, dir.path());
        assert_eq!(
            xattrs_of(&image, "/usr/bin/ping"),
            [
                "security.capability=0x0100000200200000000000000000000000000000",
                "security.selinux=system_u:object_r:ping_exec_t:s0"
            ]
        );
        for path in ["/usr/bin", "/usr/bin/ls", "/usr/bin/cat"] {
            assert_eq!(
                xattrs_of(&image, path),
                ["security.selinux=system_u:object_r:bin_t:s0"],
                "{path}"
            );
        }
        assert_eq!(
            xattrs_of(&image, "/dev/null"),
            ["security.selinux=system_u:object_r:null_device_t:s0"]
        );
        assert_eq!(
            xattrs_of(&image, "/etc/acl"),
            ["security.selinux=system_u:object_r:etc_t:s0"]
        );
        assert!(xattrs_of(&image, "/usr").is_empty());
        // squashfs-tools reads the same image, contents included.
        let extract = dir.path().join("x");
        let status = Command::new("unsquashfs")
            .args(["-q", "-no-xattrs", "-d"])
            .arg(&extract)
            .arg(&image)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(extract.join("usr/bin/ping")).unwrap(),
            vec![0x7f; 200_000]
        );
    }

    /// Many entries: directory listings split into runs (256 entries, one inode block),
    /// tables over several metadata blocks, files of every size class (empty, a tail only,
    /// whole blocks, blocks and a tail, incompressible data stored raw).
    #[test]
    fn every_entry_reads_back_as_written() {
        let mut t = Tree::new();
        let mut expected = Vec::new();
        let mut noise = 0x1234_5678u32;
        for d in 0..3 {
            t.mkdir_all(&format!("d{d}/sub"), &Meta::new(0o755))
                .unwrap();
            for i in 0..700 {
                let size = [0, 1, 4096, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 77][i % 6];
                let size = if i % 97 == 0 { size } else { size.min(300) };
                let bytes: Vec<u8> = (0..size)
                    .map(|_| {
                        noise ^= noise << 13;
                        noise ^= noise >> 17;
                        noise ^= noise << 5;
                        if d == 2 {
                            noise as u8
                        } else {
                            b'a' + (noise % 4) as u8
                        }
                    })
                    .collect();
                let path = format!("d{d}/f{i:04}");
                let mut meta = Meta::new(0o640);
                meta.uid = i as u32 % 5;
                t.insert(
                    &path,
                    Entry {
                        kind: Kind::File(Arc::new(bytes.clone())),
                        meta,
                    },
                )
                .unwrap();
                expected.push((path, bytes));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let image = write_image(&t, dir.path());
        let extract = dir.path().join("x");
        let status = Command::new("unsquashfs")
            .args(["-q", "-no-xattrs", "-d"])
            .arg(&extract)
            .arg(&image)
            .status()
            .unwrap();
        assert!(status.success());
        for (path, bytes) in &expected {
            let read = std::fs::read(extract.join(path)).unwrap();
            assert!(
                read == *bytes,
                "{path}: {} bytes read, {} written",
                read.len(),
                bytes.len()
            );
        }
        let listing = Command::new("unsquashfs")
            .args(["-lln"])
            .arg(&image)
            .output()
            .unwrap();
        let listing = String::from_utf8(listing.stdout).unwrap();
        assert_eq!(
            listing
                .lines()
                .filter(|l| l.contains("squashfs-root"))
                .count(),
            t.len(),
            "every entry listed once"
        );
        assert!(listing.contains("-rw-r----- 4/0 "), "owners kept");
    }

    #[test]
    fn device_numbers_use_the_kernel_layout() {
        assert_eq!(encode_dev(1, 3), 0x103);
        assert_eq!(encode_dev(259, 0x12345), 0x12310345);
    }
}
