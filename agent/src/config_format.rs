//! Which parser a config's bytes go to, decided by content as cloud-init and Ignition
//! users expect: cloud-init user-data (`#cloud-config`, `#!`, boothooks, MIME, gzip)
//! goes to [`ignition::cloud_config`], a Butane YAML config (a mapping with `variant:`)
//! is translated by [`ignition::butane`] (no local files at first boot), anything else
//! is an Ignition document.

use ignition::cloud_config::{CloudConfigError, MetaData};
use ignition::{ConfigError, Fetcher, NodeConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    Ignition,
    CloudConfig,
    Butane,
}

/// The parser's error, prefixed with the format the content was taken for (the message
/// is whole: it is not repeated as a source).
#[derive(Debug, thiserror::Error)]
pub enum ConfigFormatError {
    #[error("Ignition config: {0}")]
    Ignition(ConfigError),
    #[error("cloud-init user-data: {0}")]
    CloudConfig(CloudConfigError),
    #[error("Butane config: {0}")]
    Butane(ConfigError),
}

impl ConfigFormat {
    pub fn of(bytes: &[u8]) -> ConfigFormat {
        if ignition::cloud_config::is_user_data(bytes) {
            ConfigFormat::CloudConfig
        } else if ignition::butane::is_butane(bytes) {
            ConfigFormat::Butane
        } else {
            ConfigFormat::Ignition
        }
    }
}

/// Parse, validate and resolve a config of either format into the one model.
/// `meta` is the datasource's meta-data (cloud-config only; none is an empty one);
/// `fetcher` serves an Ignition config's remote sources.
pub fn node_config(
    bytes: &[u8],
    meta: Option<&MetaData>,
    fetcher: &dyn Fetcher,
) -> Result<NodeConfig, ConfigFormatError> {
    node_config_with_vendor_data(bytes, None, meta, fetcher)
}

/// [`node_config`] with the datasource's cloud-init vendor-data, which goes with
/// user-data only: beside an Ignition or Butane config it is ignored with a warning.
pub fn node_config_with_vendor_data(
    bytes: &[u8],
    vendor: Option<&[u8]>,
    meta: Option<&MetaData>,
    fetcher: &dyn Fetcher,
) -> Result<NodeConfig, ConfigFormatError> {
    let mut cfg = match ConfigFormat::of(bytes) {
        ConfigFormat::CloudConfig => {
            return ignition::cloud_config::node_config_with_vendor_data(
                bytes,
                vendor,
                meta.unwrap_or(&MetaData::default()),
            )
            .map_err(ConfigFormatError::CloudConfig)
        }
        ConfigFormat::Ignition => {
            ignition::node_config(bytes, fetcher).map_err(ConfigFormatError::Ignition)?
        }
        ConfigFormat::Butane => {
            let json = butane_to_ignition(bytes, &ignition::butane::TranslateOptions::default())?;
            ignition::node_config(&json, fetcher).map_err(ConfigFormatError::Ignition)?
        }
    };
    if vendor.is_some() {
        cfg.warnings.push(ignition::ConfigWarning::new(
            "vendor-data",
            "vendor-data goes with cloud-init user-data, not an Ignition config: ignored",
        ));
    }
    Ok(cfg)
}

/// A Butane config as the Ignition document Butane would write (compact JSON).
pub fn butane_to_ignition(
    bytes: &[u8],
    opts: &ignition::butane::TranslateOptions,
) -> Result<Vec<u8>, ConfigFormatError> {
    let doc = ignition::butane::translate(bytes, opts).map_err(ConfigFormatError::Butane)?;
    serde_json::to_vec(&doc).map_err(|e| {
        ConfigFormatError::Butane(ConfigError::new(
            "",
            ignition::Problem::Shape(e.to_string()),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_config_and_ignition_each_reach_their_parser() {
        let cc = b"#cloud-config\nhostname: from-user-data\nruncmd:\n - [touch, /run/x]\n";
        assert_eq!(ConfigFormat::of(cc), ConfigFormat::CloudConfig);
        let meta = MetaData {
            instance_id: Some("iid-1".into()),
            local_hostname: Some("from-meta".into()),
        };
        let cfg = node_config(cc, Some(&meta), &ignition::NoRemoteFetcher).unwrap();
        let hostname = cfg
            .files
            .iter()
            .find(|f| f.path == "/etc/hostname")
            .unwrap();
        assert_eq!(
            hostname.contents,
            Some(ignition::Contents::from(&b"from-user-data\n"[..]))
        );
        assert_eq!(cfg.commands.len(), 1);

        // Meta-data is where the hostname comes from when user-data does not name one.
        let cfg = node_config(
            b"#cloud-config\n{}\n",
            Some(&meta),
            &ignition::NoRemoteFetcher,
        )
        .unwrap();
        let hostname = cfg
            .files
            .iter()
            .find(|f| f.path == "/etc/hostname")
            .unwrap();
        assert_eq!(
            hostname.contents,
            Some(ignition::Contents::from(&b"from-meta\n"[..]))
        );

        let ign = br#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,hi"}}]}}"#;
        assert_eq!(ConfigFormat::of(ign), ConfigFormat::Ignition);
        let cfg = node_config(ign, None, &ignition::NoRemoteFetcher).unwrap();
        assert_eq!(
            cfg.files[0].contents,
            Some(ignition::Contents::from(&b"hi"[..]))
        );
    }

    #[test]
    fn butane_is_translated_then_read_as_ignition() {
        let bu = b"variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: hi\n";
        assert_eq!(ConfigFormat::of(bu), ConfigFormat::Butane);
        let cfg = node_config(bu, None, &ignition::NoRemoteFetcher).unwrap();
        assert_eq!(
            cfg.files[0].contents,
            Some(ignition::Contents::from(&b"hi"[..]))
        );
        let err = node_config(
            b"variant: fcos\nversion: 9.0.0\n",
            None,
            &ignition::NoRemoteFetcher,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("Butane config: version: "), "{err}");
    }

    #[test]
    fn errors_say_which_format_and_where() {
        let err = node_config(
            b"#cloud-config\nwrite_files:\n - path: /etc/x\n   encoding: rot13\n   content: x\n",
            None,
            &ignition::NoRemoteFetcher,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("cloud-init user-data: write_files[0].encoding: "),
            "{err}"
        );
        let err = node_config(
            br#"{"ignition":{"version":"9.9.9"}}"#,
            None,
            &ignition::NoRemoteFetcher,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("Ignition config: ignition.version: "),
            "{err}"
        );
        // Neither user-data nor JSON: the Ignition parser names the syntax problem.
        let err = node_config(b"hostname: x\n", None, &ignition::NoRemoteFetcher)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Ignition config: "), "{err}");
    }
}
