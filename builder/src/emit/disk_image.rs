//! `OUT/disk.raw`: a GPT disk that UEFI firmware boots by itself. Its EFI System
//! Partition holds `\EFI\BOOT\BOOTX64.EFI` (the removable-media path firmware tries
//! without any boot entry), a unified kernel image: harmony-efi-stub + the kernel + the
//! initrds PXE boots (initramfs, then the rootfs cpio with the read-only root) + the
//! command line + os-release.
//!
//! Partitions are a `DiskLayout`: after the ESP come the read-only root, its dm-verity
//! hash tree, and an empty /var partition that harmony-init formats at first boot (and
//! grows when the disk grew) — docs/boot-flow.md, "Disk boot". The UKI's initrd is the
//! initramfs alone and its command line carries the root hash: the root is on the disk.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::disk::{write_disk, DiskLayout, PartitionData, PartitionSpec, ALIGNMENT};
use super::efi_stub::pe_from_elf;
use super::esp::{esp_image, esp_size};
use super::gpt::{ESP_TYPE, SECTOR};
use super::pxe::BootFiles;
use super::uki::{unified_kernel_image, UkiParts};
use super::uki_signer::UkiSigner;
use super::verified_root::{
    VerifiedRoot, ROOT_PARTITION_NAME, ROOT_TYPE, VAR_PARTITION_NAME, VAR_TYPE,
    VAR_UNFORMATTED_ATTRIBUTE, VERITY_PARTITION_NAME, VERITY_TYPE,
};
use super::EmitError;
use crate::kernel::Kernel;
use crate::manifest::Artifact;
use crate::tree::{Kind, Tree};

pub const DISK_FILE: &str = "disk.raw";
/// The manifest kind of disk.raw.
pub const DISK_KIND: &str = "disk";
/// Where UEFI firmware looks on removable media (and on any disk without a boot entry).
pub const BOOT_PATH: &str = "EFI/BOOT/BOOTX64.EFI";
/// GPT partition name of the ESP (PARTNAME in Linux).
pub const ESP_NAME: &str = "esp";
const ESP_LABEL: &str = "HARMONY";
/// The empty /var partition's size: room for first boot; grow the disk for more.
pub const VAR_BYTES: u64 = 128 << 20;

pub struct DiskInputs<'a> {
    pub tree: &'a Tree,
    pub kernel: &'a Kernel,
    pub boot: &'a BootFiles,
    /// The recipe's kernel command line; the verified root's arguments are appended
    /// (the UKI's `.cmdline`; fixed, as Secure Boot wants).
    pub cmdline: &'a str,
    /// harmony-efi-stub as linked (an ELF shared object) and where it came from.
    pub efi_stub: &'a [u8],
    pub efi_stub_path: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub source_date_epoch: i64,
    /// The recipe's `secure_boot` key: the UKI is signed with it.
    pub signer: Option<&'a UkiSigner>,
}

/// The image's os-release (`.osrel`): its own file if it has one, else one naming the recipe.
fn os_release(inputs: &DiskInputs) -> Vec<u8> {
    for path in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(entry) = inputs.tree.get(path) {
            if let Kind::File(bytes) = &entry.kind {
                return bytes.to_vec();
            }
        }
    }
    format!(
        "NAME=\"{name}\"\nID={name}\nVERSION_ID={version}\nPRETTY_NAME=\"{name} {version}\"\n",
        name = inputs.name,
        version = inputs.version
    )
    .into_bytes()
}

/// Write `out_dir/disk.raw` and describe it.
pub fn emit_disk_image(inputs: &DiskInputs, out_dir: &Path) -> Result<Artifact, EmitError> {
    let stub = pe_from_elf(inputs.efi_stub, inputs.efi_stub_path)?;
    let root = VerifiedRoot::of_image(&inputs.boot.root_image);
    let cmdline = disk_cmdline(inputs.cmdline, &root);
    let os_release = os_release(inputs);
    let uki = unified_kernel_image(
        stub,
        UkiParts {
            os_release: &os_release,
            cmdline: &cmdline,
            linux: inputs.kernel.vmlinuz.as_slice(),
            initrd: inputs.boot.initramfs.clone(),
        },
        inputs.signer,
    )?;
    // The volume serial number follows the content, like every GUID on the disk.
    let digest = Sha256::digest(&uki);
    let volume_id = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
    // The ESP is the first partition: it starts at the first alignment boundary.
    let esp_first_lba = (ALIGNMENT / SECTOR) as u32;
    let esp = esp_image(
        &[(BOOT_PATH, &uki)],
        esp_size(uki.len() as u64),
        volume_id,
        ESP_LABEL,
        esp_first_lba,
        inputs.source_date_epoch,
    )?;
    drop(uki);
    let partition = |name: &str, type_guid, data, min_bytes| PartitionSpec {
        name: name.into(),
        type_guid,
        data: PartitionData::Bytes(data),
        min_bytes,
        unique_guid: None,
        attributes: 0,
    };
    let layout = DiskLayout {
        partitions: vec![
            partition(ESP_NAME, ESP_TYPE, esp, 0),
            partition(ROOT_PARTITION_NAME, ROOT_TYPE, root.root_partition, 0),
            partition(VERITY_PARTITION_NAME, VERITY_TYPE, root.verity_partition, 0),
            // Zeros (holes in disk.raw), marked as Harmony's: harmony-init makes its filesystem.
            PartitionSpec {
                attributes: VAR_UNFORMATTED_ATTRIBUTE,
                ..partition(VAR_PARTITION_NAME, VAR_TYPE, Vec::new(), VAR_BYTES)
            },
        ],
    };
    let written = write_disk(&layout, &out_dir.join(DISK_FILE))?;
    debug_assert_eq!(
        written.gpt.partitions[0].first_lba,
        u64::from(esp_first_lba)
    );
    Ok(Artifact {
        path: DISK_FILE.into(),
        kind: DISK_KIND.into(),
        size: written.size,
        sha256: written.sha256,
    })
}

/// The UKI's command line: the recipe's, then the verified root's.
pub fn disk_cmdline(cmdline: &str, root: &VerifiedRoot) -> String {
    let mut parts = vec![cmdline.trim().to_string()];
    parts.extend(root.kernel_args());
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};
    use std::sync::Arc;

    use super::*;
    use crate::emit::efi_stub::tests::tiny_shared_object;
    use crate::emit::gpt::tests::read_gpt;
    use crate::tree::{Entry, Meta};
    use object::read::pe::PeFile64;
    use object::{Object, ObjectSection};

    const ROOT_IMAGE: &[u8] = b"hsqs-a-root-image";

    fn tree() -> Tree {
        let mut t = Tree::new();
        t.mkdir_all("usr/lib/modules/6.1.0", &Meta::new(0o755))
            .unwrap();
        t.insert(
            "usr/lib/modules/6.1.0/vmlinuz",
            Entry {
                kind: Kind::File(Arc::new(b"MZ-bzImage".to_vec())),
                meta: Meta::new(0o644),
            },
        )
        .unwrap();
        t
    }

    fn emit(out: &Path, stub: &[u8]) -> Result<Artifact, EmitError> {
        let tree = tree();
        let kernel = crate::kernel::find_kernel(&tree).unwrap();
        let boot = BootFiles {
            initramfs: b"initramfs-cpio|".to_vec(),
            rootfs: b"rootfs-cpio".to_vec(),
            root_image: Arc::new(ROOT_IMAGE.to_vec()),
        };
        emit_disk_image(
            &DiskInputs {
                tree: &tree,
                kernel: &kernel,
                boot: &boot,
                cmdline: "console=ttyS0 ",
                efi_stub: stub,
                efi_stub_path: "stub.so",
                name: "test-image",
                version: "1.2.3",
                source_date_epoch: 0,
                signer: None,
            },
            out,
        )
    }

    #[test]
    fn the_esp_holds_a_uki_with_kernel_initrds_and_cmdline() {
        let out = tempfile::tempdir().unwrap();
        let artifact = emit(out.path(), &tiny_shared_object(None)).unwrap();
        let disk = std::fs::read(out.path().join(DISK_FILE)).unwrap();
        assert_eq!(
            Artifact {
                path: DISK_FILE.into(),
                kind: DISK_KIND.into(),
                size: disk.len() as u64,
                sha256: hex::encode(Sha256::digest(&disk))
            },
            artifact
        );

        let gpt = read_gpt(&disk);
        let [esp, root, verity, var] = &gpt.partitions[..] else {
            panic!("{gpt:?}")
        };
        let data = |p: &crate::emit::gpt::GptPartition| {
            &disk[(p.first_lba * SECTOR) as usize..((p.last_lba + 1) * SECTOR) as usize]
        };
        let expected = VerifiedRoot::of_image(ROOT_IMAGE);
        assert_eq!(
            (root.name.as_str(), root.type_guid),
            (ROOT_PARTITION_NAME, ROOT_TYPE)
        );
        assert_eq!(&data(root)[..4096], &expected.root_partition[..]);
        assert_eq!(
            (verity.name.as_str(), verity.type_guid),
            (VERITY_PARTITION_NAME, VERITY_TYPE)
        );
        assert_eq!(
            &data(verity)[..expected.verity_partition.len()],
            &expected.verity_partition[..]
        );
        assert_eq!(
            (var.name.as_str(), var.type_guid),
            (VAR_PARTITION_NAME, VAR_TYPE)
        );
        assert_eq!(data(var).len() as u64, VAR_BYTES);
        assert_eq!(
            var.attributes, VAR_UNFORMATTED_ATTRIBUTE,
            "init may format it"
        );
        assert!(
            data(var).iter().all(|&b| b == 0),
            "/var is left for init to format"
        );
        assert_eq!(
            (esp.name.as_str(), esp.type_guid, esp.first_lba),
            (ESP_NAME, ESP_TYPE, 2048)
        );
        let bytes =
            &disk[(esp.first_lba * SECTOR) as usize..((esp.last_lba + 1) * SECTOR) as usize];
        let fs =
            fatfs::FileSystem::new(Cursor::new(bytes.to_vec()), fatfs::FsOptions::new()).unwrap();
        let mut uki = Vec::new();
        fs.root_dir()
            .open_file(BOOT_PATH)
            .unwrap()
            .read_to_end(&mut uki)
            .unwrap();

        let pe = PeFile64::parse(&*uki).unwrap();
        let section = |n: &str| pe.section_by_name(n).unwrap().data().unwrap().to_vec();
        assert_eq!(section(".linux"), b"MZ-bzImage");
        // The root is on the disk: the initrd is the initramfs alone.
        assert_eq!(section(".initrd"), b"initramfs-cpio|");
        let cmdline = String::from_utf8(section(".cmdline")).unwrap();
        assert_eq!(
            cmdline,
            format!("console=ttyS0 {}", expected.kernel_args().join(" "))
        );
        assert!(
            cmdline.contains(&format!(
                "harmony.verity.roothash={}",
                expected.tree.root_hash_hex()
            )),
            "{cmdline}"
        );
        let osrel = String::from_utf8(section(".osrel")).unwrap();
        assert!(
            osrel.contains("ID=test-image\nVERSION_ID=1.2.3\n"),
            "{osrel}"
        );
    }

    #[test]
    fn same_inputs_same_disk() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let stub = tiny_shared_object(None);
        assert_eq!(
            emit(a.path(), &stub).unwrap(),
            emit(b.path(), &stub).unwrap()
        );
    }

    #[test]
    fn a_bad_stub_writes_nothing() {
        let out = tempfile::tempdir().unwrap();
        let e = emit(out.path(), b"not an elf").unwrap_err().to_string();
        assert!(e.contains("stub.so"), "{e}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
