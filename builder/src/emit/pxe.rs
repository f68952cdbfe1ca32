//! `OUT/pxe/`: kernel, initramfs, rootfs and the iPXE script that boots them.

use std::path::Path;
use std::sync::Arc;

use super::initramfs::initramfs_image;
use super::ipxe::ipxe_script;
use super::rootfs::{rootfs_image, ROOT_IMAGE_PATH};
use super::squashfs::earlier::EarlierBlocks;
use super::squashfs::squashfs_image_reusing;
use super::EmitError;
use crate::kernel::Kernel;
use crate::manifest::Artifact;
use crate::tree::Tree;

pub struct PxeInputs<'a> {
    pub tree: &'a Tree,
    pub kernel: &'a Kernel,
    /// harmony-init, a static binary: it becomes the initramfs's `/init`.
    pub init_binary: &'a [u8],
    /// Module names boot needs (`virtio_blk`, `squashfs`, ...); dependencies are added.
    pub boot_modules: &'a [String],
    /// The recipe's kernel command line; `harmony.root=` is appended for boot.ipxe.
    pub cmdline: &'a str,
    pub source_date_epoch: i64,
}

/// The kernel command line of a PXE boot: the recipe's plus where the root image is.
pub fn pxe_cmdline(cmdline: &str) -> String {
    format!("{} harmony.root=/{ROOT_IMAGE_PATH}", cmdline.trim())
}

/// The two initrds every boot medium carries: the initramfs (harmony-init and the boot
/// modules) and the rootfs cpio holding the read-only root image.
pub struct BootFiles {
    pub initramfs: Vec<u8>,
    pub rootfs: Vec<u8>,
    /// The root squashfs itself (inside `rootfs`; a disk image's root partition).
    pub root_image: crate::tree::Contents,
}

/// Build both initrds in memory (a bad input, e.g. an unknown module, fails here before
/// any file is written).
pub fn boot_files(inputs: &PxeInputs) -> Result<BootFiles, EmitError> {
    let images = boot_images(inputs, &EarlierBlocks::default())?;
    BootFiles::new(
        images.initramfs,
        images.root_image,
        inputs.source_date_epoch,
    )
}

/// The two slow parts of [`BootFiles`] (what the build caches), and the root image's
/// block list (what lets the next build reuse its compressed blocks).
pub struct BootImages {
    pub root_image: Vec<u8>,
    pub block_list: Vec<u8>,
    pub initramfs: Vec<u8>,
}

/// The root squashfs (taking unchanged blocks from `earlier`) and the initramfs.
pub fn boot_images(inputs: &PxeInputs, earlier: &EarlierBlocks) -> Result<BootImages, EmitError> {
    // The squashfs dominates (zstd 15 over the whole root): build the initramfs beside it.
    let (root_image, initramfs) = std::thread::scope(|scope| {
        let squashfs =
            scope.spawn(|| squashfs_image_reusing(inputs.tree, inputs.source_date_epoch, earlier));
        let initramfs = initramfs_image(
            inputs.tree,
            inputs.kernel,
            inputs.init_binary,
            inputs.boot_modules,
            inputs.source_date_epoch,
        );
        (
            squashfs.join().expect("squashfs thread panicked"),
            initramfs,
        )
    });
    let (root_image, block_list) = root_image?;
    Ok(BootImages {
        root_image,
        block_list,
        initramfs: initramfs?,
    })
}

impl BootFiles {
    pub fn new(
        initramfs: Vec<u8>,
        root_image: Vec<u8>,
        source_date_epoch: i64,
    ) -> Result<Self, EmitError> {
        let root_image = Arc::new(root_image);
        let rootfs = rootfs_image(root_image.clone(), source_date_epoch)?;
        Ok(BootFiles {
            initramfs,
            rootfs,
            root_image,
        })
    }
}

/// Write `out_dir/pxe/{vmlinuz,initramfs.img,rootfs.img,boot.ipxe}`, each under a
/// temporary name first and then renamed.
pub fn emit_pxe(
    inputs: &PxeInputs,
    boot: &BootFiles,
    out_dir: &Path,
) -> Result<Vec<Artifact>, EmitError> {
    let script = ipxe_script(&pxe_cmdline(inputs.cmdline));

    let files: [(&str, &str, &[u8]); 4] = [
        ("vmlinuz", "kernel", inputs.kernel.vmlinuz.as_slice()),
        ("initramfs.img", "initramfs", &boot.initramfs),
        ("rootfs.img", "rootfs", &boot.rootfs),
        ("boot.ipxe", "ipxe-script", script.as_bytes()),
    ];
    let dir = out_dir.join("pxe");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| EmitError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut artifacts = Vec::new();
    for (name, kind, bytes) in files {
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(name);
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        artifacts.push(Artifact::of_bytes(&format!("pxe/{name}"), kind, bytes));
    }
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::find_kernel;
    use crate::tree::{Entry, Kind, Meta};

    fn image() -> Tree {
        let mut t = Tree::new();
        t.mkdir_all("usr/lib/modules/6.1.0/kernel/fs", &Meta::new(0o755))
            .unwrap();
        t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
        let file = |b: &[u8]| Entry {
            kind: Kind::File(Arc::new(b.to_vec())),
            meta: Meta::new(0o644),
        };
        t.insert("usr/lib/modules/6.1.0/vmlinuz", file(b"bzImage"))
            .unwrap();
        let module = Entry {
            kind: Kind::File(Arc::new(crate::kernel::tests::fake_module("squashfs", &[]))),
            meta: Meta::new(0o644),
        };
        t.insert("usr/lib/modules/6.1.0/kernel/fs/squashfs.ko", module)
            .unwrap();
        t.insert("etc/os-release", file(b"ID=test\n")).unwrap();
        t
    }

    fn emit(out: &Path, modules: &[String]) -> Result<Vec<Artifact>, EmitError> {
        let tree = image();
        let kernel = find_kernel(&tree).unwrap();
        let inputs = PxeInputs {
            tree: &tree,
            kernel: &kernel,
            init_binary: b"init",
            boot_modules: modules,
            cmdline: "console=ttyS0,115200 quiet",
            source_date_epoch: 1_700_000_000,
        };
        emit_pxe(&inputs, &boot_files(&inputs)?, out)
    }

    #[test]
    fn writes_four_artifacts_matching_their_hashes() {
        let out = tempfile::tempdir().unwrap();
        let artifacts = emit(out.path(), &["squashfs".into()]).unwrap();
        let kinds: Vec<(&str, &str)> = artifacts
            .iter()
            .map(|a| (a.path.as_str(), a.kind.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("pxe/vmlinuz", "kernel"),
                ("pxe/initramfs.img", "initramfs"),
                ("pxe/rootfs.img", "rootfs"),
                ("pxe/boot.ipxe", "ipxe-script")
            ]
        );
        for a in &artifacts {
            let bytes = std::fs::read(out.path().join(&a.path)).unwrap();
            assert_eq!(Artifact::of_bytes(&a.path, &a.kind, &bytes), *a);
        }
        let script = std::fs::read_to_string(out.path().join("pxe/boot.ipxe")).unwrap();
        assert!(
            script.contains(" console=ttyS0,115200 quiet harmony.root=/harmony/root.squashfs\n"),
            "{script}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(out.path().join("pxe"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 4, "{leftovers:?}");
    }

    #[test]
    fn same_inputs_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(
            emit(a.path(), &["squashfs".into()]).unwrap(),
            emit(b.path(), &["squashfs".into()]).unwrap()
        );
    }

    #[test]
    fn bad_input_writes_nothing() {
        let out = tempfile::tempdir().unwrap();
        assert!(emit(out.path(), &["no_such_module".into()]).is_err());
        assert!(!out.path().join("pxe").exists());
    }
}
