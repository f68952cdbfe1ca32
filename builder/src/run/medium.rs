//! What `harmony run` boots: the PXE artifacts (direct kernel boot), or one of the disk
//! images (`disk.raw`, `disk.qcow2`, `disk.vmdk`) under UEFI firmware (OVMF).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::RunError;
use crate::manifest::Manifest;

/// UEFI firmware for QEMU (Debian's `ovmf`): one image, no separate variable store, so
/// nothing to copy per VM; FACTS.md measured it 1.5 s faster than pflash under TCG.
pub const OVMF_CANDIDATES: &[&str] = &["/usr/share/qemu/OVMF.fd", "/usr/share/ovmf/OVMF.fd"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
    Vmdk,
}

impl DiskFormat {
    /// QEMU's `format=` name.
    pub fn qemu_name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Vmdk => "vmdk",
        }
    }

    /// Where `harmony build` writes it in the output directory.
    pub fn file_name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "disk.raw",
            DiskFormat::Qcow2 => "disk.qcow2",
            DiskFormat::Vmdk => "disk.vmdk",
        }
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pxe,
    Disk(DiskFormat),
}

impl Format {
    pub const NAMES: &'static str = "pxe, raw, qcow2, vmdk";
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "pxe" => Format::Pxe,
            "raw" => Format::Disk(DiskFormat::Raw),
            "qcow2" => Format::Disk(DiskFormat::Qcow2),
            "vmdk" => Format::Disk(DiskFormat::Vmdk),
            other => {
                return Err(format!(
                    "unknown format `{other}`: one of {}",
                    Format::NAMES
                ))
            }
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Format::Pxe => f.write_str("pxe"),
            Format::Disk(d) => f.write_str(d.qemu_name()),
        }
    }
}

/// How the caller picks the medium.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MediumChoice {
    /// PXE when the output has it, else the first disk image it has (qcow2, raw, vmdk).
    #[default]
    Auto,
    Format(Format),
    /// A disk image anywhere (e.g. the VMDK taken out of an OVA).
    File {
        path: PathBuf,
        format: DiskFormat,
    },
}

/// The medium resolved against an output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Medium {
    Pxe,
    Disk { path: PathBuf, format: DiskFormat },
}

/// The output's artifact at `rel`, if the manifest lists it and the file is there.
fn listed(manifest: &Manifest, out_dir: &Path, rel: &str) -> Option<PathBuf> {
    manifest
        .artifacts
        .iter()
        .any(|a| a.path == rel)
        .then(|| out_dir.join(rel))
        .filter(|p| p.is_file())
}

pub fn resolve(
    choice: &MediumChoice,
    manifest: &Manifest,
    out_dir: &Path,
) -> Result<Medium, RunError> {
    let has_pxe = manifest.artifacts.iter().any(|a| a.kind == "kernel");
    let disk = |format: DiskFormat| {
        listed(manifest, out_dir, format.file_name()).map(|path| Medium::Disk { path, format })
    };
    match choice {
        MediumChoice::File { path, format } => Ok(Medium::Disk {
            path: path.clone(),
            format: *format,
        }),
        MediumChoice::Format(Format::Pxe) => Ok(Medium::Pxe),
        MediumChoice::Format(Format::Disk(format)) => {
            disk(*format).ok_or_else(|| RunError::BadPath {
                path: out_dir.join(format.file_name()).display().to_string(),
                reason: format!(
                    "--format {}: this build has no {} (add `{}` to the recipe's outputs)",
                    format.qemu_name(),
                    format.file_name(),
                    match format {
                        DiskFormat::Raw => "disk",
                        other => other.qemu_name(),
                    }
                ),
            })
        }
        MediumChoice::Auto if has_pxe => Ok(Medium::Pxe),
        MediumChoice::Auto => [DiskFormat::Qcow2, DiskFormat::Raw, DiskFormat::Vmdk]
            .into_iter()
            .find_map(disk)
            .ok_or_else(|| RunError::BadPath {
                path: out_dir.display().to_string(),
                reason: format!(
                    "nothing to boot: no PXE artifacts and no disk image ({})",
                    Format::NAMES
                ),
            }),
    }
}

/// The UEFI firmware image, or an error naming the package.
pub fn ovmf() -> Result<PathBuf, RunError> {
    OVMF_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| RunError::BadPath {
            path: OVMF_CANDIDATES.join(" or "),
            reason: "no UEFI firmware for QEMU: install Debian's `ovmf` to boot disk images".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Artifact;

    fn manifest(paths: &[(&str, &str)]) -> Manifest {
        Manifest {
            name: "n".into(),
            version: "1".into(),
            cmdline: String::new(),
            artifacts: paths
                .iter()
                .map(|(p, k)| Artifact::of_bytes(p, k, b""))
                .collect(),
            inputs: serde_json::Value::Null,
        }
    }

    #[test]
    fn formats_parse_and_print() {
        for name in ["pxe", "raw", "qcow2", "vmdk"] {
            assert_eq!(name.parse::<Format>().unwrap().to_string(), name);
        }
        let err = "ova".parse::<Format>().unwrap_err();
        assert!(err.contains("pxe, raw, qcow2, vmdk"), "{err}");
    }

    #[test]
    fn auto_prefers_pxe_then_qcow2_and_a_missing_format_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["disk.raw", "disk.qcow2"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let both = manifest(&[
            ("pxe/vmlinuz", "kernel"),
            ("disk.raw", "disk"),
            ("disk.qcow2", "qcow2"),
        ]);
        assert_eq!(
            resolve(&MediumChoice::Auto, &both, dir.path()).unwrap(),
            Medium::Pxe
        );
        let disks = manifest(&[("disk.raw", "disk"), ("disk.qcow2", "qcow2")]);
        assert_eq!(
            resolve(&MediumChoice::Auto, &disks, dir.path()).unwrap(),
            Medium::Disk {
                path: dir.path().join("disk.qcow2"),
                format: DiskFormat::Qcow2
            }
        );
        let vmdk = MediumChoice::Format(Format::Disk(DiskFormat::Vmdk));
        let err = resolve(&vmdk, &both, dir.path()).unwrap_err().to_string();
        assert!(err.contains("disk.vmdk") && err.contains("`vmdk`"), "{err}");
        let none = manifest(&[]);
        let err = resolve(&MediumChoice::Auto, &none, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing to boot"), "{err}");
    }
}
