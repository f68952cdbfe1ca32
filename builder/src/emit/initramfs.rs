//! `initramfs.img`: harmony-init as `/init`, the boot modules under
//! `/usr/lib/modules/KVER/`, and `/etc/harmony-init/modules` listing them in load order.
//! zstd-compressed newc cpio (the kernel has RD_ZSTD).

use std::sync::Arc;

use super::{cpio, EmitError};
use crate::kernel::{module_closure, Kernel};
use crate::tree::{Entry, Kind, Meta, Tree};

pub const MODULE_LIST_PATH: &str = "etc/harmony-init/modules";
/// Mount points harmony-init uses (docs/boot-flow.md).
const MOUNT_POINTS: [&str; 7] = ["dev", "proc", "sys", "run", "lower", "state", "sysroot"];
/// Level 19: the archive is small (one binary, a few modules) and is read on every boot.
const ZSTD_LEVEL: i32 = 19;

/// The initramfs as a tree: `/init`, the closure of `boot_modules`, the module list.
pub fn initramfs_tree(
    image: &Tree,
    kernel: &Kernel,
    init_binary: &[u8],
    boot_modules: &[String],
    source_date_epoch: i64,
) -> Result<Tree, EmitError> {
    let meta = |mode: u32| Meta {
        mtime: source_date_epoch,
        ..Meta::new(mode)
    };
    let mut tree = Tree::new();
    let fresh = |source| EmitError::Tree {
        what: "initramfs.img".into(),
        source,
    };
    for dir in MOUNT_POINTS.iter().chain(&["etc/harmony-init"]) {
        tree.mkdir_all(dir, &meta(0o755)).map_err(fresh)?;
    }
    // Init's stdio is /dev/console, opened before /init runs; kernels without the default
    // built-in initramfs would otherwise start it with no console at all.
    tree.insert(
        "dev/console",
        Entry {
            kind: Kind::CharDevice { major: 5, minor: 1 },
            meta: meta(0o600),
        },
    )
    .map_err(fresh)?;
    tree.insert(
        "init",
        Entry {
            kind: Kind::File(Arc::new(init_binary.to_vec())),
            meta: meta(0o755),
        },
    )
    .map_err(fresh)?;

    let mut list = String::new();
    let source_prefix = format!("{}/", kernel.modules_dir);
    for path in module_closure(image, kernel, boot_modules)? {
        let Some(Entry {
            kind: Kind::File(contents),
            ..
        }) = image.get(&path)
        else {
            return Err(EmitError::ModuleNotAFile {
                path: format!("/{path}"),
            });
        };
        // The image may keep modules in /lib/modules (unmerged /usr); the contract says /usr/lib.
        let relative = path.strip_prefix(&source_prefix).unwrap_or(&path);
        let target = format!("usr/lib/modules/{}/{relative}", kernel.version);
        let parent = &target[..target.rfind('/').unwrap_or(0)];
        tree.mkdir_all(parent, &meta(0o755)).map_err(fresh)?;
        tree.insert(
            &target,
            Entry {
                kind: Kind::File(contents.clone()),
                meta: meta(0o644),
            },
        )
        .map_err(fresh)?;
        list.push_str(&format!("/{target}\n"));
    }
    tree.insert(
        MODULE_LIST_PATH,
        Entry {
            kind: Kind::File(Arc::new(list.into_bytes())),
            meta: meta(0o644),
        },
    )
    .map_err(fresh)?;
    Ok(tree)
}

/// The tree above as a zstd-compressed cpio.
pub fn initramfs_image(
    image: &Tree,
    kernel: &Kernel,
    init_binary: &[u8],
    boot_modules: &[String],
    source_date_epoch: i64,
) -> Result<Vec<u8>, EmitError> {
    let tree = initramfs_tree(image, kernel, init_binary, boot_modules, source_date_epoch)?;
    compress_cpio(&tree, source_date_epoch, "initramfs.img")
}

/// zstd of a tree's cpio, one frame, zero-padded to a multiple of 4 bytes: the kernel
/// looks for a following archive (rootfs.img) only at 4-byte offsets and skips zero bytes
/// before it; unpadded, it reads the next cpio as "invalid magic" and drops it.
pub fn compress_cpio(
    tree: &Tree,
    source_date_epoch: i64,
    what: &str,
) -> Result<Vec<u8>, EmitError> {
    let encoder = zstd::stream::write::Encoder::new(Vec::new(), ZSTD_LEVEL).map_err(|source| {
        EmitError::Compress {
            what: what.into(),
            source,
        }
    })?;
    let encoder =
        cpio::write_tree(tree, encoder, source_date_epoch).map_err(|source| EmitError::Cpio {
            what: what.into(),
            source,
        })?;
    let mut out = encoder.finish().map_err(|source| EmitError::Compress {
        what: what.into(),
        source,
    })?;
    out.resize(out.len().next_multiple_of(4), 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::process::{Command, Stdio};

    use super::*;
    use crate::kernel::find_kernel;

    fn image_with_module(dir: &str) -> Tree {
        let mut t = Tree::new();
        t.mkdir_all(&format!("{dir}/kernel/fs"), &Meta::new(0o755))
            .unwrap();
        let file = |b: &[u8]| Entry {
            kind: Kind::File(Arc::new(b.to_vec())),
            meta: Meta::new(0o644),
        };
        t.insert(&format!("{dir}/vmlinuz"), file(b"kernel"))
            .unwrap();
        // Built in, so the closure is empty: module contents are tested in kernel.rs.
        t.insert(
            &format!("{dir}/modules.builtin"),
            file(b"kernel/fs/ext4/ext4.ko\n"),
        )
        .unwrap();
        t
    }

    #[test]
    fn layout_and_module_list() {
        let image = image_with_module("usr/lib/modules/6.1.0");
        let k = find_kernel(&image).unwrap();
        let t =
            initramfs_tree(&image, &k, b"\x7fELF init", &["ext4".into()], 1_700_000_000).unwrap();
        let init = t.get("init").unwrap();
        assert_eq!(init.meta.mode, 0o755);
        assert!(matches!(&init.kind, Kind::File(c) if c.as_slice() == b"\x7fELF init"));
        for dir in MOUNT_POINTS {
            assert!(matches!(t.get(dir).unwrap().kind, Kind::Dir), "{dir}");
        }
        assert!(matches!(&t.get(MODULE_LIST_PATH).unwrap().kind, Kind::File(c) if c.is_empty()));
    }

    #[test]
    fn modules_from_unmerged_lib_land_in_usr_lib_in_load_order() {
        let mut image = image_with_module("lib/modules/6.1.0");
        let module = |name: &str, deps: &[&str]| Entry {
            kind: Kind::File(Arc::new(crate::kernel::tests::fake_module(name, deps))),
            meta: Meta::new(0o644),
        };
        image
            .insert(
                "lib/modules/6.1.0/kernel/fs/overlay.ko",
                module("overlay", &["base"]),
            )
            .unwrap();
        image
            .insert("lib/modules/6.1.0/kernel/fs/base.ko", module("base", &[]))
            .unwrap();
        let k = find_kernel(&image).unwrap();
        let t = initramfs_tree(&image, &k, b"", &["overlay".into()], 0).unwrap();
        let Kind::File(list) = &t.get(MODULE_LIST_PATH).unwrap().kind else {
            panic!("module list is a file")
        };
        assert_eq!(
            String::from_utf8_lossy(list),
            "/usr/lib/modules/6.1.0/kernel/fs/base.ko\n/usr/lib/modules/6.1.0/kernel/fs/overlay.ko\n"
        );
        assert!(t
            .get("usr/lib/modules/6.1.0/kernel/fs/overlay.ko")
            .is_some());
        assert!(t.get("lib").is_none());
    }

    /// Alpine: /boot/vmlinuz-virt, modules in a real /lib/modules/6.6.58-0-virt; the
    /// initramfs gets them under /usr/lib/modules/KVER, listed in load order.
    #[test]
    fn alpine_flavoured_kernel_modules_from_lib_in_load_order() {
        use crate::kernel::tests::{alpine_tree, fake_module, ALPINE_KVER};
        let image = alpine_tree(&[
            ("squashfs.ko", fake_module("squashfs", &["lz4_decompress"])),
            ("lz4_decompress.ko", fake_module("lz4_decompress", &[])),
            ("virtio_blk.ko", fake_module("virtio_blk", &["virtio"])),
        ]);
        let k = find_kernel(&image).unwrap_or_else(|e| panic!("{e}"));
        let t = initramfs_tree(
            &image,
            &k,
            b"",
            &["virtio_blk".into(), "squashfs".into()],
            0,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let Kind::File(list) = &t.get(MODULE_LIST_PATH).unwrap().kind else {
            panic!("module list is a file")
        };
        let dir = format!("/usr/lib/modules/{ALPINE_KVER}/kernel/drivers");
        assert_eq!(
            String::from_utf8_lossy(list),
            format!("{dir}/virtio_blk.ko\n{dir}/lz4_decompress.ko\n{dir}/squashfs.ko\n"),
            "virtio is built in; lz4 before squashfs"
        );
        for line in String::from_utf8_lossy(list).lines() {
            let got = t
                .get(line)
                .unwrap_or_else(|| panic!("{line} not in the initramfs"));
            let source = image
                .get(&line.replace("/usr/lib/modules", "lib/modules"))
                .unwrap();
            assert_eq!(got.kind, source.kind, "{line}: the image's bytes");
        }
    }

    #[test]
    fn unknown_module_fails_the_build() {
        let image = image_with_module("usr/lib/modules/6.1.0");
        let k = find_kernel(&image).unwrap();
        let err = initramfs_tree(&image, &k, b"", &["virtio_blk".into()], 0).unwrap_err();
        assert!(err.to_string().contains("virtio_blk"), "{err}");
    }

    #[test]
    fn compressed_archive_is_readable_and_reproducible() {
        let image = image_with_module("usr/lib/modules/6.1.0");
        let k = find_kernel(&image).unwrap();
        let a = initramfs_image(&image, &k, b"init", &[], 1_700_000_000).unwrap();
        let b = initramfs_image(&image, &k, b"init", &[], 1_700_000_000).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.len() % 4,
            0,
            "padded so a concatenated rootfs.img starts aligned"
        );
        let mut cpio = Vec::new();
        let mut decoder = zstd::stream::read::Decoder::new(&a[..])
            .unwrap()
            .single_frame();
        std::io::Read::read_to_end(&mut decoder, &mut cpio).unwrap();
        let mut child = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &cpio).unwrap();
        let listing = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "etc",
                "etc/harmony-init",
                "etc/harmony-init/modules",
                "init",
                "lower",
                "proc",
                "run",
                "state",
                "sys",
                "sysroot"
            ]
        );
    }
}
