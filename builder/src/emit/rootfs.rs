//! `rootfs.img`: an uncompressed cpio holding only `/harmony/root.squashfs`.
//!
//! Uncompressed because squashfs is compressed already; the kernel unpacks it after
//! the initramfs into the same rootfs, where harmony-init finds the image.

use super::{cpio, EmitError};
use crate::tree::{Contents, Entry, Kind, Meta, Tree};

pub const ROOT_IMAGE_PATH: &str = "harmony/root.squashfs";

pub fn rootfs_image(root_image: Contents, source_date_epoch: i64) -> Result<Vec<u8>, EmitError> {
    let mut meta = Meta::new(0o755);
    meta.mtime = source_date_epoch;
    let mut tree = Tree::new();
    tree.mkdir_all("harmony", &meta)
        .expect("a fresh tree takes a directory");
    meta.mode = 0o444;
    let file = Entry {
        kind: Kind::File(root_image.clone()),
        meta,
    };
    tree.insert(ROOT_IMAGE_PATH, file)
        .expect("parent was just created");
    let out = Vec::with_capacity(root_image.len() + 512);
    cpio::write_tree(&tree, out, source_date_epoch).map_err(|source| EmitError::Cpio {
        what: "rootfs.img".into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn holds_the_image_under_harmony() {
        let bytes = rootfs_image(Arc::new(b"hsqs-image".to_vec()), 1_700_000_000).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("rootfs.img");
        std::fs::write(&archive, &bytes).unwrap();
        let out = std::process::Command::new("cpio")
            .args(["-t", "--quiet", "-F"])
            .arg(&archive)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "harmony\nharmony/root.squashfs\n"
        );
        let status = std::process::Command::new("cpio")
            .args(["-id", "--quiet", "-F"])
            .arg(&archive)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(dir.path().join(ROOT_IMAGE_PATH)).unwrap(),
            b"hsqs-image"
        );
    }
}
