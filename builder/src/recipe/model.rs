//! The recipe as written: what a platform team puts in `image-recipes/*.yaml`.

use serde::{Deserialize, Serialize};

/// Modules harmony-init loads before it mounts the root: loop + squashfs for the root
/// image, overlay for the writable layer, virtio for QEMU disks and NICs, fw_cfg for the
/// agent's config, dm_verity for a disk boot's verified root, efivarfs for the firmware's
/// variables (the agent reports SecureBoot). ext4 (state disk, /var) is built into
/// Debian's cloud kernel.
pub const DEFAULT_BOOT_MODULES: &[&str] = &[
    "loop",
    "squashfs",
    "overlay",
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_scsi",
    "qemu_fw_cfg",
    "dm_verity",
    "efivarfs",
];

pub const DEFAULT_CMDLINE: &[&str] = &["console=ttyS0,115200", "quiet"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipeDoc {
    pub name: String,
    pub version: String,
    /// `docker://REGISTRY/REPO@sha256:…` or `:tag`, `oci-layout:DIR[:tag]`, `oci-archive:FILE`;
    /// or `{image: REF, verify: {key: FILE}}` to require a signature.
    pub base: BaseDoc,
    #[serde(default)]
    pub kernel: KernelDoc,
    /// Installed with the base's own package manager (dnf, apk, apt-get), inside its root.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Shell commands run inside the image's root after the packages.
    #[serde(default)]
    pub run: Vec<String>,
    #[serde(default)]
    pub files: Vec<FileDoc>,
    #[serde(default)]
    pub directories: Vec<DirectoryDoc>,
    #[serde(default)]
    pub links: Vec<LinkDoc>,
    #[serde(default)]
    pub agent: AgentDoc,
    /// Platform components from the catalog (builder/src/components/).
    #[serde(default)]
    pub components: Vec<ComponentDoc>,
    /// Kubernetes packages from their upstream repositories, containerd configured.
    #[serde(default)]
    pub kubernetes: Option<KubernetesDoc>,
    #[serde(default)]
    pub hardening: Option<HardeningDoc>,
    /// Sign the disk image's UKI for UEFI Secure Boot.
    #[serde(default)]
    pub secure_boot: Option<SecureBootDoc>,
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "an image reference, or a map {image: REFERENCE, verify: {key: FILE}}"
)]
pub enum BaseDoc {
    Reference(String),
    Verified {
        image: String,
        verify: Option<VerifyDoc>,
    },
}

impl BaseDoc {
    pub fn image(&self) -> &str {
        match self {
            BaseDoc::Reference(r) | BaseDoc::Verified { image: r, .. } => r,
        }
    }

    pub fn verify(&self) -> Option<&VerifyDoc> {
        match self {
            BaseDoc::Reference(_) => None,
            BaseDoc::Verified { verify, .. } => verify.as_ref(),
        }
    }
}

/// `verify: {key: FILE}`: the image must carry a sigstore (cosign) signature that the PEM
/// public key FILE (relative to the recipe) verifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyDoc {
    pub key: String,
}

/// `secure_boot: {key: FILE, cert: FILE}`: PEM files relative to the recipe's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureBootDoc {
    /// The private key: RSA (2048 bits or more) or ECDSA P-256, unencrypted.
    pub key: String,
    /// Its X.509 certificate: what a firmware's db must hold.
    pub cert: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelDoc {
    /// A second OCI image that carries `usr/lib/modules/KVER/{vmlinuz,…}`; default: the base.
    pub from: Option<String>,
    pub cmdline: Option<Vec<String>>,
    pub boot_modules: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDoc {
    pub path: String,
    /// Inline contents.
    pub contents: Option<String>,
    /// A file or directory on the build host, relative to the recipe's directory.
    pub source: Option<String>,
    /// Octal, as a string (`"0644"`) or with a leading zero (`0644`).
    pub mode: Option<serde_yaml_ng::Value>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryDoc {
    pub path: String,
    pub mode: Option<serde_yaml_ng::Value>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkDoc {
    pub path: String,
    pub target: String,
}

/// `kubernetes: {version: "1.31"}`: one layer, after `packages:` and `run:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesDoc {
    /// The minor version, read as written (`1.30` unquoted would be the number 1.3).
    pub version: serde_yaml_ng::Value,
}

/// `hardening: {profile: cis, exclude: [rule-id, …]}`: one layer, after every other step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardeningDoc {
    pub profile: String,
    #[serde(default)]
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDoc {
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl Default for AgentDoc {
    fn default() -> Self {
        AgentDoc { enabled: true }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDoc {
    /// A catalog entry: `prometheus`, `haproxy`, …
    pub name: String,
    /// Digest-pinned: `docker://REPO@sha256:…` or `oci-layout:DIR@sha256:…`.
    pub image: Option<String>,
    /// Rendered into the component's config; the catalog entry's schema is strict.
    #[serde(default)]
    pub values: serde_yaml_ng::Value,
    /// Require a signature on the image: `{key: FILE}`.
    #[serde(default)]
    pub verify: Option<VerifyDoc>,
}
