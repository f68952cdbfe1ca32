//! QEMU: the config is the fw_cfg blob `opt/com.coreos/config`
//! (`-fw_cfg name=opt/com.coreos/config,file=cfg.ign`), which the qemu_fw_cfg driver
//! exposes in sysfs.

use std::path::PathBuf;

use super::{ConfigSource, FetchedConfig, HostPaths, SourceError};

pub const FW_CFG_DIR: &str = "/sys/firmware/qemu_fw_cfg";
const CONFIG_NAME: &str = "opt/com.coreos/config";

pub struct QemuFwCfg {
    host: HostPaths,
}

impl QemuFwCfg {
    pub fn new(host: HostPaths) -> QemuFwCfg {
        QemuFwCfg { host }
    }

    /// The driver is a module in most distribution kernels: load it when the sysfs
    /// directory is missing, only on the live host and only if modprobe exists. A failure
    /// shows up as "no fw_cfg directory" below, so its status is not needed.
    fn load_driver(&self) {
        if !self.host.is_live() {
            return;
        }
        for modprobe in ["/sbin/modprobe", "/usr/sbin/modprobe", "/bin/modprobe"] {
            if std::path::Path::new(modprobe).exists() {
                let _status = std::process::Command::new(modprobe)
                    .arg("qemu_fw_cfg")
                    .status();
                return;
            }
        }
    }
}

impl ConfigSource for QemuFwCfg {
    fn fetch(&self) -> Result<Option<FetchedConfig>, SourceError> {
        if !self.host.join(FW_CFG_DIR).is_dir() {
            self.load_driver();
        }
        let raw: PathBuf = self
            .host
            .join(&format!("{FW_CFG_DIR}/by_name/{CONFIG_NAME}/raw"));
        match std::fs::read(&raw) {
            Ok(bytes) => Ok(Some(FetchedConfig {
                source: format!("fw_cfg:{CONFIG_NAME}"),
                bytes,
                meta_data: None,
                ..Default::default()
            })),
            // No entry (or no fw_cfg at all) means QEMU was started without a config.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(SourceError::Io { path: raw, err }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_blob_or_reports_none() {
        let dir = tempfile::tempdir().unwrap();
        let host = HostPaths::new(dir.path());
        let src = QemuFwCfg::new(host.clone());
        assert_eq!(src.fetch().unwrap(), None);
        let entry = host.join("/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config");
        std::fs::create_dir_all(&entry).unwrap();
        assert_eq!(src.fetch().unwrap(), None);
        std::fs::write(entry.join("raw"), b"{}").unwrap();
        assert_eq!(
            src.fetch().unwrap(),
            Some(FetchedConfig {
                source: "fw_cfg:opt/com.coreos/config".into(),
                bytes: b"{}".to_vec(),
                meta_data: None,
                ..Default::default()
            })
        );
    }
}
