//! What the node can prove about what it booted, for the first-boot report: whether the
//! firmware enforced Secure Boot (the EFI `SecureBoot` variable, through efivarfs, which
//! harmony-init mounts), the dm-verity root hash harmony-init verified the root against
//! (its `harmony.verity.roothash=` kernel argument, which the signed UKI's command line
//! carries), and the image's name, version and OCI manifest digest (baked in at build
//! time: ignition::image_identity).

use std::path::Path;

use ignition::image_identity::{ImageIdentity, IMAGE_IDENTITY_PATH};
use serde::{Deserialize, Serialize};

use crate::sources::{HostPaths, KernelCmdline};

/// efivarfs' file of the EFI global variable `SecureBoot`: 4 bytes of attributes, then
/// the value (1: Secure Boot enforced).
pub const SECURE_BOOT_VARIABLE: &str =
    "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// The kernel argument carrying the verified root's hash (builder/src/emit/verified_root.rs
/// writes it, init/src/disk_args.rs reads it).
pub const VERITY_ROOT_HASH_ARG: &str = "harmony.verity.roothash";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The firmware's SecureBoot variable is 1; false without it (BIOS, PXE direct boot,
    /// no efivarfs).
    #[serde(default)]
    pub secure_boot: bool,
    /// Hex; null when the root is not a verified disk root (PXE, a squashfs in the initrd).
    pub verity_root_hash: Option<String>,
    /// Null when the image carries no image.json (built before it existed).
    pub image: Option<ImageIdentity>,
}

/// The variable's value; anything unreadable or malformed is "not enforced".
pub fn secure_boot(host: &HostPaths) -> bool {
    std::fs::read(host.join(SECURE_BOOT_VARIABLE)).is_ok_and(|v| v.len() == 5 && v[4] == 1)
}

pub fn verity_root_hash(host: &HostPaths) -> Option<String> {
    let text = std::fs::read_to_string(host.join("/proc/cmdline")).ok()?;
    KernelCmdline::parse(&text)
        .value(VERITY_ROOT_HASH_ARG)
        .map(str::to_string)
}

/// The image's identity, or None with a console warning when the file is unreadable.
pub fn image(root: &Path) -> Option<ImageIdentity> {
    let path = root.join(IMAGE_IDENTITY_PATH.trim_start_matches('/'));
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str(&text) {
        Ok(id) => Some(id),
        Err(e) => {
            eprintln!("harmony-agent: warning: {}: {e}", path.display());
            None
        }
    }
}

pub fn read(root: &Path, host: &HostPaths) -> Provenance {
    Provenance {
        secure_boot: secure_boot(host),
        verity_root_hash: verity_root_hash(host),
        image: image(root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, bytes: &[u8]) {
        let p = dir.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    #[test]
    fn secure_boot_is_the_variable_s_fifth_byte_and_false_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostPaths::new(dir.path());
        assert!(!secure_boot(&host), "no efivarfs");
        write(dir.path(), SECURE_BOOT_VARIABLE, &[0x06, 0, 0, 0, 1]);
        assert!(secure_boot(&host));
        write(dir.path(), SECURE_BOOT_VARIABLE, &[0x06, 0, 0, 0, 0]);
        assert!(!secure_boot(&host));
        write(dir.path(), SECURE_BOOT_VARIABLE, &[1]);
        assert!(!secure_boot(&host), "malformed");
    }

    #[test]
    fn the_root_hash_comes_from_the_command_line_and_the_image_from_image_json() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostPaths::new(dir.path());
        let root = dir.path().join("root");
        assert_eq!(
            read(&root, &host),
            Provenance {
                secure_boot: false,
                verity_root_hash: None,
                image: None
            }
        );
        write(
            dir.path(),
            "/proc/cmdline",
            b"console=ttyS0 harmony.verity.hash=PARTLABEL=harmony-root-verity harmony.verity.roothash=ab12 quiet\n",
        );
        write(
            &root,
            IMAGE_IDENTITY_PATH,
            br#"{"name":"harmony-default","version":"0.1.0","manifest_digest":"sha256:00ff"}"#,
        );
        let p = read(&root, &host);
        assert_eq!(p.verity_root_hash.as_deref(), Some("ab12"));
        assert_eq!(
            p.image,
            Some(ImageIdentity {
                name: "harmony-default".into(),
                version: "0.1.0".into(),
                manifest_digest: Some("sha256:00ff".into())
            })
        );
        write(&root, IMAGE_IDENTITY_PATH, b"{not json");
        assert_eq!(image(&root), None);
    }
}
