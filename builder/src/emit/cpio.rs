//! newc ("070701") cpio archives, the format the kernel unpacks as an initramfs.
//!
//! Deterministic: entries in the order given, inode numbers counted from 1, mtimes
//! clamped to SOURCE_DATE_EPOCH, no device numbers of the build host.

use std::io::{self, Write};

use crate::tree::{Entry, Kind, Tree};

const S_IFIFO: u32 = 0o010000;
const S_IFCHR: u32 = 0o020000;
const S_IFDIR: u32 = 0o040000;
const S_IFBLK: u32 = 0o060000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFSOCK: u32 = 0o140000;

/// Streams entries into a newc archive; call [`CpioWriter::finish`] to write the trailer.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
    source_date_epoch: i64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W, source_date_epoch: i64) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
            source_date_epoch,
        }
    }

    /// Append one entry at `path` (relative, no leading slash; the root itself is never written).
    pub fn entry(&mut self, path: &str, entry: &Entry) -> io::Result<()> {
        let path = path.trim_start_matches('/');
        if path.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cpio: the root directory has no name",
            ));
        }
        let (type_bits, data, nlink, (rmajor, rminor)): (u32, &[u8], u32, (u32, u32)) =
            match &entry.kind {
                Kind::File(contents) => (S_IFREG, contents.as_slice(), 1, (0, 0)),
                Kind::Dir => (S_IFDIR, &[], 2, (0, 0)),
                Kind::Symlink(target) => (S_IFLNK, target.as_bytes(), 1, (0, 0)),
                Kind::CharDevice { major, minor } => (S_IFCHR, &[], 1, (*major, *minor)),
                Kind::BlockDevice { major, minor } => (S_IFBLK, &[], 1, (*major, *minor)),
                Kind::Fifo => (S_IFIFO, &[], 1, (0, 0)),
                Kind::Socket => (S_IFSOCK, &[], 1, (0, 0)),
            };
        let size = u32::try_from(data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio: /{path} is larger than 4 GiB, newc cannot hold it"),
            )
        })?;
        let mtime = entry
            .meta
            .mtime
            .clamp(0, self.source_date_epoch.max(0))
            .min(u32::MAX as i64) as u32;
        let ino = self.next_ino;
        self.next_ino += 1;
        let header = Header {
            ino,
            mode: type_bits | (entry.meta.mode & 0o7777),
            uid: entry.meta.uid,
            gid: entry.meta.gid,
            nlink,
            mtime,
            size,
            rmajor,
            rminor,
        };
        self.header(&header, path)?;
        self.write_padded(data)
    }

    /// Write the `TRAILER!!!` entry and hand back the writer.
    pub fn finish(mut self) -> io::Result<W> {
        let trailer = Header {
            ino: 0,
            mode: 0,
            uid: 0,
            gid: 0,
            nlink: 1,
            mtime: 0,
            size: 0,
            rmajor: 0,
            rminor: 0,
        };
        self.header(&trailer, "TRAILER!!!")?;
        Ok(self.out)
    }

    fn header(&mut self, h: &Header, name: &str) -> io::Result<()> {
        let namesize = name.len() + 1;
        let text = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            h.ino,
            h.mode,
            h.uid,
            h.gid,
            h.nlink,
            h.mtime,
            h.size,
            0,
            0,
            h.rmajor,
            h.rminor,
            namesize,
            0
        );
        self.write_all(text.as_bytes())?;
        let mut name_bytes = name.as_bytes().to_vec();
        name_bytes.push(0);
        self.write_padded(&name_bytes)
    }

    /// Data and names are padded to 4 bytes, counting from the start of the archive.
    fn write_padded(&mut self, data: &[u8]) -> io::Result<()> {
        self.write_all(data)?;
        let pad = (4 - (self.written % 4) as usize) % 4;
        self.write_all(&[0u8; 3][..pad])
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }
}

struct Header {
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: u32,
    rmajor: u32,
    rminor: u32,
}

/// Every entry of `tree` but the root, in path order (parents first), then the trailer.
pub fn write_tree<W: Write>(tree: &Tree, out: W, source_date_epoch: i64) -> io::Result<W> {
    let mut cpio = CpioWriter::new(out, source_date_epoch);
    for (path, entry) in tree.iter().filter(|(p, _)| !p.is_empty()) {
        cpio.entry(path, entry)?;
    }
    cpio.finish()
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::Arc;

    use super::*;
    use crate::tree::Meta;

    fn sample_tree() -> Tree {
        let mut t = Tree::new();
        let mut dir = Meta::new(0o750);
        dir.mtime = 4_000_000_000; // after the epoch below: must be clamped
        t.mkdir_all("etc/ssh", &dir).unwrap();
        let mut secret = Meta::new(0o600);
        secret.uid = 1000;
        secret.gid = 100;
        t.insert(
            "etc/ssh/key",
            Entry {
                kind: Kind::File(Arc::new(b"odd-length".to_vec())),
                meta: secret,
            },
        )
        .unwrap();
        let link = Entry {
            kind: Kind::Symlink("/usr/share/zoneinfo/UTC".into()),
            meta: Meta::new(0o777),
        };
        t.insert("etc/localtime", link).unwrap();
        t.insert(
            "etc/empty",
            Entry {
                kind: Kind::File(Arc::new(Vec::new())),
                meta: Meta::new(0o4755),
            },
        )
        .unwrap();
        t.insert(
            "fifo",
            Entry {
                kind: Kind::Fifo,
                meta: Meta::new(0o644),
            },
        )
        .unwrap();
        t
    }

    #[test]
    fn layout_matches_newc() {
        let bytes = write_tree(&sample_tree(), Vec::new(), 1_700_000_000).unwrap();
        assert_eq!(&bytes[..6], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        // First entry is `etc`, inode 1, a directory 0750, mtime clamped to the epoch.
        let field = |i: usize| {
            u32::from_str_radix(
                std::str::from_utf8(&bytes[6 + 8 * i..14 + 8 * i]).unwrap(),
                16,
            )
            .unwrap()
        };
        assert_eq!(field(0), 1);
        assert_eq!(field(1), S_IFDIR | 0o750);
        assert_eq!(field(5), 1_700_000_000);
        assert_eq!(&bytes[110..114], b"etc\0");
        let tail = &bytes[bytes.len() - 124..];
        assert!(tail.windows(11).any(|w| w == b"TRAILER!!!\0"));
    }

    #[test]
    fn same_tree_same_bytes() {
        let a = write_tree(&sample_tree(), Vec::new(), 1_700_000_000).unwrap();
        let b = write_tree(&sample_tree(), Vec::new(), 1_700_000_000).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn gnu_cpio_reads_modes_owners_and_link_targets() {
        let bytes = write_tree(&sample_tree(), Vec::new(), 1_700_000_000).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.cpio");
        std::fs::write(&archive, &bytes).unwrap();
        let out = Command::new("cpio")
            .args(["-tv", "--numeric-uid-gid", "-F"])
            .arg(&archive)
            .env("TZ", "UTC")
            .output()
            .expect("cpio is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listing = String::from_utf8(out.stdout).unwrap();
        let line = |name: &str| {
            listing
                .lines()
                .find(|l| l.ends_with(name))
                .unwrap_or_else(|| panic!("{name} in {listing}"))
        };
        assert!(line(" etc").starts_with("drwxr-x---"), "{listing}");
        assert!(
            line(" etc/ssh/key").starts_with("-rw-------   1 1000     100            10"),
            "{listing}"
        );
        assert!(
            line("etc/localtime -> /usr/share/zoneinfo/UTC").starts_with("lrwxrwxrwx"),
            "{listing}"
        );
        assert!(line(" etc/empty").starts_with("-rwsr-xr-x"), "{listing}");
        assert!(line(" fifo").starts_with("prw-r--r--"), "{listing}");

        let extract = dir.path().join("x");
        std::fs::create_dir(&extract).unwrap();
        let status = Command::new("cpio")
            .args(["-id", "--quiet", "-F"])
            .arg(&archive)
            .current_dir(&extract)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(extract.join("etc/ssh/key")).unwrap(),
            b"odd-length"
        );
        assert_eq!(
            std::fs::read_link(extract.join("etc/localtime"))
                .unwrap()
                .to_str(),
            Some("/usr/share/zoneinfo/UTC")
        );
    }
}
