//! Where a node's config comes from: one trait, one file per platform (afterburn's
//! layout). Adding a platform is a new file here and one arm in [`for_platform`].

mod file;
mod kernel_cmdline;
pub mod metal;
pub mod network_config;
pub mod nocloud;
mod qemu;
pub mod vmware;

use std::path::{Path, PathBuf};

pub use file::FileSource;
pub use kernel_cmdline::KernelCmdline;
pub use qemu::QemuFwCfg;

/// A config as fetched, before parsing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedConfig {
    /// Where it came from, for the report: `fw_cfg:opt/com.coreos/config`, `file:/path`.
    pub source: String,
    pub bytes: Vec<u8>,
    /// cloud-init meta-data that came with user-data (NoCloud), for `cloud_config::node_config`.
    pub meta_data: Option<ignition::cloud_config::MetaData>,
    /// Node labels the platform gives besides the config (VMware `guestinfo.harmony.labels`).
    pub node_labels: crate::node_role::PlatformLabels,
    /// cloud-init network config that came with user-data (NoCloud, VMware meta-data).
    pub network_config: Option<network_config::NetworkConfig>,
    /// cloud-init vendor-data that came with user-data (VMware `guestinfo.vendordata`).
    pub vendor_data: Option<Vec<u8>>,
    /// What the platform gave that the agent does not act on, for the report.
    pub warnings: Vec<crate::report::WarningReport>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading {path}: {err}")]
    Io {
        path: PathBuf,
        #[source]
        err: std::io::Error,
    },
    #[error("platform {0:?} is not supported yet (supported: qemu, vmware, metal, file)")]
    UnsupportedPlatform(String),
    #[error("platform \"file\" needs a config path (--config-file or IGNITION_CONFIG_FILE)")]
    FileWithoutPath,
    /// A source found its config but cannot read it (bad encoding, malformed, unreachable).
    #[error("{location}: {problem}")]
    Unreadable { location: String, problem: String },
}

/// One platform's way to find the config.
pub trait ConfigSource {
    /// `Ok(None)`: the platform has no config for this node, which is not an error.
    fn fetch(&self) -> Result<Option<FetchedConfig>, SourceError>;
}

/// Where the agent reads the host's /proc and /sys; tests point it at a temp dir.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub prefix: PathBuf,
}

impl HostPaths {
    pub fn new(prefix: impl Into<PathBuf>) -> HostPaths {
        HostPaths {
            prefix: prefix.into(),
        }
    }

    pub fn join(&self, abs: &str) -> PathBuf {
        self.prefix.join(abs.trim_start_matches('/'))
    }

    /// The real host: the only case where loading a kernel module makes sense.
    pub fn is_live(&self) -> bool {
        self.prefix == Path::new("/")
    }
}

/// The platform id: `ignition.platform.id=` on the kernel command line, else what the
/// machine looks like (a fw_cfg device or QEMU's DMI vendor → qemu). `None`: unknown.
pub fn detect_platform(host: &HostPaths) -> Result<Option<String>, SourceError> {
    let cmdline_path = host.join("/proc/cmdline");
    let cmdline = match std::fs::read_to_string(&cmdline_path) {
        Ok(s) => KernelCmdline::parse(&s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => KernelCmdline::parse(""),
        Err(err) => {
            return Err(SourceError::Io {
                path: cmdline_path,
                err,
            })
        }
    };
    if let Some(id) = cmdline.value("ignition.platform.id") {
        return Ok(Some(id.to_string()));
    }
    if vmware::detected(host) {
        return Ok(Some("vmware".to_string()));
    }
    if nocloud::detect(host)? {
        return Ok(Some(nocloud::PLATFORM.to_string()));
    }
    let dmi_vendor = std::fs::read_to_string(host.join("/sys/class/dmi/id/sys_vendor"));
    if host.join(qemu::FW_CFG_DIR).is_dir() || dmi_vendor.is_ok_and(|v| v.trim() == "QEMU") {
        return Ok(Some("qemu".to_string()));
    }
    Ok(None)
}

/// The source for a platform id.
pub fn for_platform(
    platform: &str,
    host: &HostPaths,
    config_file: Option<&Path>,
) -> Result<Box<dyn ConfigSource>, SourceError> {
    match platform {
        "qemu" => Ok(Box::new(QemuFwCfg::new(host.clone()))),
        "vmware" => Ok(Box::new(vmware::VmwareSource::for_host(host)?)),
        "nocloud" => Ok(Box::new(nocloud::NoCloudSource::new(
            host,
            Box::new(crate::fetch::NetFetcher {
                hosts_file: Some(host.join("/etc/hosts")),
                resolv_conf: Some(host.join("/etc/resolv.conf")),
                ..crate::fetch::NetFetcher::default()
            }),
        ))),
        "metal" => Ok(Box::new(metal::MetalSource::for_host(host))),
        "file" => Ok(Box::new(FileSource::new(
            config_file.ok_or(SourceError::FileWithoutPath)?,
        ))),
        other => Err(SourceError::UnsupportedPlatform(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_from_cmdline_then_detection() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostPaths::new(dir.path());
        assert_eq!(detect_platform(&host).unwrap(), None);
        std::fs::create_dir_all(host.join("/sys/firmware/qemu_fw_cfg")).unwrap();
        assert_eq!(detect_platform(&host).unwrap().as_deref(), Some("qemu"));
        std::fs::create_dir_all(host.join("/proc")).unwrap();
        std::fs::write(
            host.join("/proc/cmdline"),
            "console=ttyS0 ignition.platform.id=metal quiet\n",
        )
        .unwrap();
        assert_eq!(detect_platform(&host).unwrap().as_deref(), Some("metal"));
        let err = for_platform("aws", &host, None).err().unwrap();
        assert_eq!(
            err.to_string(),
            "platform \"aws\" is not supported yet (supported: qemu, vmware, metal, file)"
        );
        assert!(for_platform("file", &host, None).is_err());
    }
}
