//! The read-only root as a squashfs image (zstd), written in pure Rust with `backhand`.
//!
//! backhand 0.21 cannot write extended attributes: an entry's xattrs (file capabilities,
//! SELinux labels) are dropped with a warning naming how many entries lost them.

use std::io::Cursor;

use backhand::compression::{CompressionOptions, Compressor, Zstd};
use backhand::{FilesystemCompressor, FilesystemWriter, NodeHeader};

use super::EmitError;
use crate::tree::{Contents, Kind, Meta, Tree};

/// zstd level: 15 is mksquashfs's default for zstd; same ratio, comparable images.
const ZSTD_LEVEL: u32 = 15;
const BLOCK_SIZE: u32 = 128 * 1024;

/// Encode the whole tree; same tree and epoch, same bytes.
pub fn squashfs_image(tree: &Tree, source_date_epoch: i64) -> Result<Vec<u8>, EmitError> {
    let err = |path: &str, source: backhand::BackhandError| EmitError::Squashfs {
        path: format!("/{path}"),
        source,
    };
    let mut fs = FilesystemWriter::default();
    fs.set_block_size(BLOCK_SIZE);
    fs.set_time(source_date_epoch.clamp(0, u32::MAX as i64) as u32);
    let options = CompressionOptions::Zstd(Zstd {
        compression_level: ZSTD_LEVEL,
    });
    fs.set_compressor(
        FilesystemCompressor::new(Compressor::Zstd, Some(options)).map_err(|e| err("", e))?,
    );

    let mut dropped_xattrs = 0usize;
    for (path, entry) in tree.iter() {
        if !entry.meta.xattrs.is_empty() {
            dropped_xattrs += 1;
        }
        let header = header(&entry.meta, source_date_epoch);
        if path.is_empty() {
            fs.set_root_mode(header.permissions);
            fs.set_root_uid(header.uid);
            fs.set_root_gid(header.gid);
            continue;
        }
        let pushed = match &entry.kind {
            // Cursor over the shared Arc: no copy of the file's bytes.
            Kind::File(contents) => {
                fs.push_file(Cursor::new(Shared(contents.clone())), path, header)
            }
            Kind::Dir => fs.push_dir(path, header),
            Kind::Symlink(target) => fs.push_symlink(target.as_str(), path, header),
            Kind::CharDevice { major, minor } => {
                fs.push_char_device(encode_dev(*major, *minor), path, header)
            }
            Kind::BlockDevice { major, minor } => {
                fs.push_block_device(encode_dev(*major, *minor), path, header)
            }
            Kind::Fifo => fs.push_fifo(path, header),
            Kind::Socket => fs.push_socket(path, header),
        };
        pushed.map_err(|e| err(path, e))?;
    }
    if dropped_xattrs > 0 {
        tracing::warn!(
            entries = dropped_xattrs,
            "squashfs: extended attributes dropped (backhand 0.21 cannot write them)"
        );
    }
    let mut out = Cursor::new(Vec::new());
    fs.write(&mut out).map_err(|e| err("", e))?;
    Ok(out.into_inner())
}

/// Lets a `Cursor` read the shared contents in place.
struct Shared(Contents);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

fn clamp_time(mtime: i64, source_date_epoch: i64) -> u32 {
    mtime.clamp(0, source_date_epoch.clamp(0, u32::MAX as i64)) as u32
}

fn header(meta: &Meta, source_date_epoch: i64) -> NodeHeader {
    NodeHeader::new(
        (meta.mode & 0o7777) as u16,
        meta.uid,
        meta.gid,
        clamp_time(meta.mtime, source_date_epoch),
    )
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

    #[test]
    fn device_numbers_use_the_kernel_layout() {
        assert_eq!(encode_dev(1, 3), 0x103);
        assert_eq!(encode_dev(259, 0x12345), 0x12310345);
    }
}
