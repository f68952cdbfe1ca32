//! Recognising filesystems by their superblocks: the root image's type
//! (squashfs or erofs) and an ext4 filesystem's label.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Bytes to read from the start of a file or device to answer every question
/// here: the erofs and ext4 superblocks both start at 1024.
pub const PROBE_BYTES: usize = 2048;

const SQUASHFS_MAGIC: &[u8; 4] = b"hsqs";
const EROFS_MAGIC_OFFSET: usize = 1024;
const EROFS_MAGIC: u32 = 0xE0F5_E1E2;
const EXT4_SUPERBLOCK_OFFSET: usize = 1024;
const EXT4_MAGIC_OFFSET: usize = EXT4_SUPERBLOCK_OFFSET + 0x38;
const EXT4_MAGIC: u16 = 0xEF53;
const EXT4_LABEL_OFFSET: usize = EXT4_SUPERBLOCK_OFFSET + 0x78;
const EXT4_LABEL_LEN: usize = 16;

/// The read-only root filesystem types harmony-init can mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootFsType {
    Squashfs,
    Erofs,
}

impl RootFsType {
    /// The name `mount(2)` wants.
    pub fn fstype(self) -> &'static str {
        match self {
            RootFsType::Squashfs => "squashfs",
            RootFsType::Erofs => "erofs",
        }
    }
}

impl fmt::Display for RootFsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.fstype())
    }
}

/// Recognises squashfs ("hsqs" at 0) or erofs (0xE0F5E1E2 LE at 1024).
pub fn root_fs_type(header: &[u8]) -> Option<RootFsType> {
    if header.starts_with(SQUASHFS_MAGIC) {
        return Some(RootFsType::Squashfs);
    }
    let erofs = header.get(EROFS_MAGIC_OFFSET..EROFS_MAGIC_OFFSET + 4)?;
    (u32::from_le_bytes(erofs.try_into().ok()?) == EROFS_MAGIC).then_some(RootFsType::Erofs)
}

/// The label of an ext2/3/4 filesystem (`s_volume_name`, NUL padded), or
/// `None` if the header is not one. An unlabelled filesystem gives `Some("")`.
pub fn ext4_label(header: &[u8]) -> Option<&[u8]> {
    let magic = header.get(EXT4_MAGIC_OFFSET..EXT4_MAGIC_OFFSET + 2)?;
    if u16::from_le_bytes(magic.try_into().ok()?) != EXT4_MAGIC {
        return None;
    }
    let label = header.get(EXT4_LABEL_OFFSET..EXT4_LABEL_OFFSET + EXT4_LABEL_LEN)?;
    let len = label.iter().position(|&b| b == 0).unwrap_or(EXT4_LABEL_LEN);
    Some(&label[..len])
}

/// Reads up to [`PROBE_BYTES`] from the start of `path`; shorter files give
/// a shorter buffer (the parsers above then say "not recognised").
pub fn read_header(path: &Path) -> io::Result<Vec<u8>> {
    let mut header = Vec::with_capacity(PROBE_BYTES);
    File::open(path)?
        .take(PROBE_BYTES as u64)
        .read_to_end(&mut header)?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext4_header(label: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; PROBE_BYTES];
        h[EXT4_MAGIC_OFFSET..EXT4_MAGIC_OFFSET + 2].copy_from_slice(&EXT4_MAGIC.to_le_bytes());
        h[EXT4_LABEL_OFFSET..EXT4_LABEL_OFFSET + label.len()].copy_from_slice(label);
        h
    }

    #[test]
    fn recognises_squashfs_and_erofs() {
        let mut squash = vec![0u8; 100];
        squash[..4].copy_from_slice(b"hsqs");
        assert_eq!(root_fs_type(&squash), Some(RootFsType::Squashfs));

        let mut erofs = vec![0u8; PROBE_BYTES];
        erofs[1024..1028].copy_from_slice(&[0xE2, 0xE1, 0xF5, 0xE0]);
        assert_eq!(root_fs_type(&erofs), Some(RootFsType::Erofs));
    }

    #[test]
    fn rejects_unknown_and_short_headers() {
        assert_eq!(root_fs_type(&[0u8; PROBE_BYTES]), None);
        assert_eq!(root_fs_type(b"hsq"), None);
        // Erofs magic in the wrong byte order is not erofs.
        let mut be = vec![0u8; PROBE_BYTES];
        be[1024..1028].copy_from_slice(&[0xE0, 0xF5, 0xE1, 0xE2]);
        assert_eq!(root_fs_type(&be), None);
    }

    #[test]
    fn reads_ext4_label() {
        assert_eq!(
            ext4_label(&ext4_header(b"harmony-state")),
            Some(&b"harmony-state"[..])
        );
        // A full 16-byte label has no NUL terminator.
        assert_eq!(
            ext4_label(&ext4_header(b"0123456789abcdef")),
            Some(&b"0123456789abcdef"[..])
        );
        assert_eq!(ext4_label(&ext4_header(b"")), Some(&b""[..]));
    }

    #[test]
    fn not_ext4_without_magic_or_when_short() {
        assert_eq!(ext4_label(&[0u8; PROBE_BYTES]), None);
        assert_eq!(ext4_label(&ext4_header(b"x")[..1100]), None);
    }

    /// Runs a mkfs tool; `false` after [`harmony_test_support::skip`] when it is not
    /// installed (a failure under HARMONY_TEST_STRICT=1).
    fn make(tool: &str, args: &[&std::ffi::OsStr]) -> bool {
        match std::process::Command::new(tool)
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
        {
            Ok(status) => {
                assert!(status.success(), "{tool} failed");
                true
            }
            Err(_) => {
                harmony_test_support::skip(format!("tool {tool} not installed"));
                false
            }
        }
    }

    #[test]
    fn agrees_with_real_mkfs_ext4() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fs.img");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(4 << 20)
            .unwrap();
        let args = [
            "-q".as_ref(),
            "-F".as_ref(),
            "-L".as_ref(),
            "probe-label".as_ref(),
            img.as_os_str(),
        ];
        if make("mkfs.ext4", &args) {
            let header = read_header(&img).unwrap();
            assert_eq!(ext4_label(&header), Some(&b"probe-label"[..]));
            assert_eq!(root_fs_type(&header), None);
        }
    }

    #[test]
    fn agrees_with_real_mksquashfs_and_mkfs_erofs() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::fs::write(tree.join("hello"), b"hi").unwrap();

        let squash = dir.path().join("root.squashfs");
        let args = [
            tree.as_os_str(),
            squash.as_os_str(),
            "-quiet".as_ref(),
            "-no-progress".as_ref(),
        ];
        if make("mksquashfs", &args) {
            let header = read_header(&squash).unwrap();
            assert_eq!(root_fs_type(&header), Some(RootFsType::Squashfs));
            assert_eq!(ext4_label(&header), None);
        }

        let erofs = dir.path().join("root.erofs");
        if make("mkfs.erofs", &[erofs.as_os_str(), tree.as_os_str()]) {
            assert_eq!(
                root_fs_type(&read_header(&erofs).unwrap()),
                Some(RootFsType::Erofs)
            );
        }
    }
}
