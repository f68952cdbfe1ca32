//! `disk.qcow2`, `disk.vmdk` and `<name>.ova`: the built raw disk (`disk.raw`) converted
//! for QEMU and vSphere. Each is a function of the raw disk's bytes (the VMDK's CID is
//! taken from its digest), so the same disk gives the same files.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::ova::{vmdk_member_name, write_ova, OvaInputs};
use super::qcow2::write_qcow2;
use super::vmdk::{write_vmdk, VmdkOptions, VmdkSummary};
use super::EmitError;
use crate::manifest::Artifact;

pub const QCOW2_FILE: &str = "disk.qcow2";
pub const VMDK_FILE: &str = "disk.vmdk";

pub struct DiskFormatInputs<'a> {
    pub out_dir: &'a Path,
    /// The raw disk, relative to `out_dir`.
    pub raw: &'a str,
    /// Its sha256 (hex), as the manifest records it.
    pub raw_sha256: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub source_date_epoch: i64,
    /// The recipe signs the UKI (`secure_boot`): the OVA's VM boots with Secure Boot on.
    pub secure_boot: bool,
}

/// `OUT/disk.qcow2`.
pub fn emit_qcow2(i: &DiskFormatInputs) -> Result<Artifact, EmitError> {
    write_qcow2(&i.out_dir.join(i.raw), &i.out_dir.join(QCOW2_FILE))?;
    file_artifact(i.out_dir, QCOW2_FILE, "qcow2")
}

/// `OUT/disk.vmdk`; its descriptor names the extent as the OVA does, so the VMDK inside
/// the OVA is this very file.
pub fn emit_vmdk(i: &DiskFormatInputs) -> Result<(Artifact, VmdkSummary), EmitError> {
    let summary = vmdk_to(i, &i.out_dir.join(VMDK_FILE))?;
    Ok((file_artifact(i.out_dir, VMDK_FILE, "vmdk")?, summary))
}

/// `OUT/<name>.ova`, from `OUT/disk.vmdk` when `vmdk` says it was written (with its
/// summary), else from a VMDK made for it and then removed.
pub fn emit_ova(i: &DiskFormatInputs, vmdk: Option<&VmdkSummary>) -> Result<Artifact, EmitError> {
    let ova_name = format!("{}.ova", i.name);
    let ova = i.out_dir.join(&ova_name);
    let ova_inputs = |vmdk: &Path, summary: &VmdkSummary| {
        write_ova(
            &ova,
            &OvaInputs {
                name: i.name,
                version: i.version,
                vmdk,
                vmdk_summary: summary,
                source_date_epoch: i.source_date_epoch,
                secure_boot: i.secure_boot,
            },
        )
    };
    match vmdk {
        Some(summary) => ova_inputs(&i.out_dir.join(VMDK_FILE), summary)?,
        None => {
            let tmp = tempfile::TempDir::new_in(i.out_dir).map_err(|source| EmitError::Io {
                path: i.out_dir.display().to_string(),
                source,
            })?;
            let vmdk = tmp.path().join(VMDK_FILE);
            let summary = vmdk_to(i, &vmdk)?;
            ova_inputs(&vmdk, &summary)?;
        }
    }
    file_artifact(i.out_dir, &ova_name, "ova")
}

fn vmdk_to(i: &DiskFormatInputs, out: &Path) -> Result<VmdkSummary, EmitError> {
    let cid = cid_from_digest(i.raw_sha256).ok_or_else(|| EmitError::Invalid {
        path: i.raw.to_string(),
        problem: format!("sha256 {:?} is not hex", i.raw_sha256),
    })?;
    write_vmdk(
        &i.out_dir.join(i.raw),
        out,
        &VmdkOptions {
            cid,
            extent_name: &vmdk_member_name(i.name),
        },
    )
}

/// The VMDK content ID: the raw disk's digest's first 32 bits. It changes when the disk
/// does, as a CID should, and never between two builds of the same disk.
fn cid_from_digest(sha256_hex: &str) -> Option<u32> {
    u32::from_str_radix(sha256_hex.get(..8)?, 16).ok()
}

/// A written file as a manifest artifact (hashed as it is read back).
pub fn file_artifact(out_dir: &Path, rel: &str, kind: &str) -> Result<Artifact, EmitError> {
    let path = out_dir.join(rel);
    let io = |source| EmitError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::File::open(&path).map_err(io)?;
    let mut hash = Sha256::new();
    let size = std::io::copy(&mut f, &mut hash).map_err(io)?;
    Ok(Artifact {
        path: rel.to_string(),
        kind: kind.to_string(),
        size,
        sha256: hex::encode(hash.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::emit::raw_disk::tests::synthetic_raw;

    fn inputs<'a>(out: &'a Path, sha: &'a str) -> DiskFormatInputs<'a> {
        DiskFormatInputs {
            out_dir: out,
            raw: "disk.raw",
            raw_sha256: sha,
            name: "node",
            version: "1.0",
            source_date_epoch: 0,
            secure_boot: false,
        }
    }

    #[test]
    fn the_ova_carries_disk_vmdk_byte_for_byte_with_or_without_it() {
        let dir = tempfile::tempdir().unwrap();
        synthetic_raw(&dir.path().join("disk.raw"), 4 << 20, &[(0, 200_000)], 5);
        let sha = "0badcafe".repeat(8);
        let i = inputs(dir.path(), &sha);
        let (vmdk, summary) = emit_vmdk(&i).unwrap();
        assert_eq!(vmdk.path, "disk.vmdk");
        let with = emit_ova(&i, Some(&summary)).unwrap();
        let with_bytes = std::fs::read(dir.path().join("node.ova")).unwrap();
        let without = emit_ova(&i, None).unwrap();
        assert_eq!(with, without);
        // Only the outputs are left behind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["disk.raw", "disk.vmdk", "node.ova"]);

        let mut archive = tar::Archive::new(&with_bytes[..]);
        let mut inside = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some("node-disk1.vmdk") {
                e.read_to_end(&mut inside).unwrap();
            }
        }
        let beside = std::fs::read(dir.path().join("disk.vmdk")).unwrap();
        assert_eq!(inside, beside);
        assert!(String::from_utf8_lossy(&beside[512..1024]).contains("CID=0badcafe\n"));
        assert_eq!(vmdk.sha256, hex::encode(Sha256::digest(&beside)));
    }

    #[test]
    fn qcow2_artifact_names_its_file() {
        let dir = tempfile::tempdir().unwrap();
        synthetic_raw(&dir.path().join("disk.raw"), 1 << 20, &[(10, 10)], 5);
        let sha = "ab".repeat(32);
        let a = emit_qcow2(&inputs(dir.path(), &sha)).unwrap();
        assert_eq!((a.path.as_str(), a.kind.as_str()), ("disk.qcow2", "qcow2"));
        assert_eq!(
            a.size,
            std::fs::metadata(dir.path().join("disk.qcow2"))
                .unwrap()
                .len()
        );
    }

    #[test]
    fn cid_is_the_digest_prefix() {
        assert_eq!(cid_from_digest("0badcafe99"), Some(0x0bad_cafe));
        assert_eq!(cid_from_digest("zz"), None);
    }
}
