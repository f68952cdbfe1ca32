//! `<name>.ova`: what vSphere imports. A ustar archive holding, in this order, the OVF
//! descriptor, the manifest (`SHA256(file)= hex` for the other two) and the
//! streamOptimized VMDK, with fixed owners (0/0) and mtimes (SOURCE_DATE_EPOCH).

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::ovf::{ovf_descriptor, OvfInputs};
use super::vmdk::VmdkSummary;
use super::EmitError;

/// The VMDK's name inside the OVA (and in its descriptor's extent line).
pub fn vmdk_member_name(name: &str) -> String {
    format!("{name}-disk1.vmdk")
}

pub struct OvaInputs<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// A streamOptimized VMDK written with extent name `vmdk_member_name(name)`.
    pub vmdk: &'a Path,
    pub vmdk_summary: &'a VmdkSummary,
    pub source_date_epoch: i64,
    /// The UKI is signed: the OVF turns Secure Boot on.
    pub secure_boot: bool,
}

/// Write the OVA at `out` (a temporary file beside it, renamed when complete).
pub fn write_ova(out: &Path, i: &OvaInputs) -> Result<(), EmitError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| EmitError::Io {
            path: path.clone(),
            source,
        }
    };
    let vmdk_name = vmdk_member_name(i.name);
    let vmdk_sha256 = sha256_file(i.vmdk)?;
    let vmdk_size = std::fs::metadata(i.vmdk).map_err(io(i.vmdk))?.len();
    let ovf = ovf_descriptor(&OvfInputs {
        name: i.name,
        version: i.version,
        vmdk_name: &vmdk_name,
        vmdk_size,
        capacity: i.vmdk_summary.capacity,
        populated: i.vmdk_summary.populated,
        secure_boot: i.secure_boot,
    });
    let ovf_name = format!("{}.ovf", i.name);
    let manifest = format!(
        "SHA256({ovf_name})= {}\nSHA256({vmdk_name})= {vmdk_sha256}\n",
        hex::encode(Sha256::digest(ovf.as_bytes()))
    );

    let dir = out.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(out))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp));
    let mtime = i.source_date_epoch.max(0) as u64;
    let mut append = |name: &str, size: u64, data: &mut dyn Read| {
        let mut h = tar::Header::new_ustar();
        h.set_path(name)?;
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_username("root")?;
        h.set_groupname("root")?;
        h.set_mtime(mtime);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, data)
    };
    append(&ovf_name, ovf.len() as u64, &mut ovf.as_bytes()).map_err(io(out))?;
    let mf_name = format!("{}.mf", i.name);
    append(&mf_name, manifest.len() as u64, &mut manifest.as_bytes()).map_err(io(out))?;
    let mut vmdk = File::open(i.vmdk).map_err(io(i.vmdk))?;
    append(&vmdk_name, vmdk_size, &mut vmdk).map_err(io(out))?;
    let tmp = tar
        .into_inner()
        .map_err(io(out))?
        .into_inner()
        .map_err(|e| io(out)(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io(out))?;
    tmp.persist(out).map_err(|e| io(out)(e.error))?;
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, EmitError> {
    let io = |source| EmitError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = File::open(path).map_err(io)?;
    let mut hash = Sha256::new();
    std::io::copy(&mut f, &mut hash).map_err(io)?;
    Ok(hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::emit::ovf::tests::xmllint;
    use crate::emit::raw_disk::tests::synthetic_raw;
    use crate::emit::vmdk::{write_vmdk, VmdkOptions};

    /// Every member of a tar, in order: (name, header, bytes).
    fn members(ova: &Path) -> Vec<(String, tar::Header, Vec<u8>)> {
        let mut archive = tar::Archive::new(File::open(ova).unwrap());
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().display().to_string();
                let header = e.header().clone();
                let mut bytes = Vec::new();
                e.read_to_end(&mut bytes).unwrap();
                (name, header, bytes)
            })
            .collect()
    }

    fn make_ova(dir: &Path, epoch: i64) -> std::path::PathBuf {
        let raw = dir.join("disk.raw");
        if !raw.exists() {
            synthetic_raw(&raw, 5 << 20, &[(0, 100_000), (4 << 20, 70_000)], 9);
        }
        let vmdk = dir.join("disk.vmdk");
        let member = vmdk_member_name("node");
        let summary = write_vmdk(
            &raw,
            &vmdk,
            &VmdkOptions {
                cid: 42,
                extent_name: &member,
            },
        )
        .unwrap();
        let ova = dir.join(format!("node-{epoch}.ova"));
        write_ova(
            &ova,
            &OvaInputs {
                name: "node",
                version: "1.0",
                vmdk: &vmdk,
                vmdk_summary: &summary,
                source_date_epoch: epoch,
                secure_boot: false,
            },
        )
        .unwrap();
        ova
    }

    #[test]
    fn ustar_in_order_with_a_manifest_that_matches_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let ova = make_ova(dir.path(), 1_700_000_000);
        let members = members(&ova);
        let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
        assert_eq!(names, ["node.ovf", "node.mf", "node-disk1.vmdk"]);
        for (name, h, _) in &members {
            assert_eq!(
                &h.as_bytes()[257..265],
                b"ustar\x0000",
                "{name}: ustar magic"
            );
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            assert_eq!(h.mode().unwrap(), 0o644);
        }
        // The manifest: one `SHA256(name)= hex` line per other member, and it matches.
        let mf = String::from_utf8(members[1].2.clone()).unwrap();
        let lines: Vec<&str> = mf.lines().collect();
        assert_eq!(lines.len(), 2, "{mf}");
        for (line, (name, _, bytes)) in lines.iter().zip([&members[0], &members[2]]) {
            let want = format!("SHA256({name})= {}", hex::encode(Sha256::digest(bytes)));
            assert_eq!(*line, want);
        }
        // The VMDK inside is the VMDK beside it, byte for byte.
        assert_eq!(
            members[2].2,
            std::fs::read(dir.path().join("disk.vmdk")).unwrap()
        );
        // The OVF inside is schema-valid and names the VMDK with its real size.
        let ovf = String::from_utf8(members[0].2.clone()).unwrap();
        assert!(ovf.contains(&format!(
            r#"ovf:href="node-disk1.vmdk" ovf:id="file1" ovf:size="{}""#,
            members[2].2.len()
        )));
        if let Some((ok, text)) = xmllint(&ovf) {
            assert!(ok, "{text}");
        }
        // GNU tar reads it as ustar too.
        let out = Command::new("tar")
            .arg("--list")
            .arg("--verbose")
            .arg("--file")
            .arg(&ova)
            .output()
            .unwrap();
        assert!(out.status.success());
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("root/root"), "{listing}");
    }

    #[test]
    fn same_inputs_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = std::fs::read(make_ova(dir.path(), 5)).unwrap();
        let renamed = dir.path().join("first.ova");
        std::fs::rename(dir.path().join("node-5.ova"), &renamed).unwrap();
        let b = std::fs::read(make_ova(dir.path(), 5)).unwrap();
        assert_eq!(a, b);
    }

    /// `virt-v2v -i ova FILE --print-source` parses the OVA and checks its manifest
    /// (libguestfs forced to TCG: KVM does not work on these machines).
    #[test]
    fn virt_v2v_reads_the_ova() {
        if Command::new("virt-v2v").arg("--version").output().is_err() {
            harmony_test_support::skip(
                "tool virt-v2v not installed: virt-v2v -i ova --print-source",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ova = make_ova(dir.path(), 0);
        let out = Command::new("virt-v2v")
            .args(["-i", "ova"])
            .arg(&ova)
            .arg("--print-source")
            .env("LIBGUESTFS_BACKEND", "direct")
            .env("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("node"), "{text}");
    }
}
