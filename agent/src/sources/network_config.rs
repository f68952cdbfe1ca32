//! cloud-init network configuration (v1 or v2) as a datasource hands it over: NoCloud's
//! `network-config` file, VMware meta-data's `network` key. It is checked (a mapping with
//! version 1 or 2, also nested under a top-level `network:` as cloud-init accepts) and
//! kept as text. Applying it is issue 14 item 6, not done: first boot reports every
//! network config it was given as not applied, never drops it silently.

use serde_yaml_ng::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub version: u64,
    pub text: String,
}

impl NetworkConfig {
    /// A document: YAML or JSON.
    pub fn parse(bytes: &[u8]) -> Result<NetworkConfig, String> {
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| "not UTF-8".to_string())?;
        let v: Value =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("not valid YAML: {e}"))?;
        NetworkConfig::checked(&v, text)
    }

    /// An already parsed mapping (VMware meta-data's `network`), kept as YAML text.
    pub fn from_value(v: &Value) -> Result<NetworkConfig, String> {
        let text = serde_yaml_ng::to_string(v).map_err(|e| e.to_string())?;
        NetworkConfig::checked(v, text)
    }

    fn checked(v: &Value, text: String) -> Result<NetworkConfig, String> {
        let inner = v.get("network").unwrap_or(v);
        match inner.get("version").and_then(Value::as_u64) {
            Some(version @ (1 | 2)) => Ok(NetworkConfig { version, text }),
            _ => Err("version must be 1 or 2".to_string()),
        }
    }

    /// The report's warning: where it came from, and that it was not applied.
    pub fn not_applied(&self, source: &str) -> crate::report::WarningReport {
        crate::report::WarningReport {
            path: "network-config".to_string(),
            message: format!(
                "network config not applied: version {} from {source} was read and checked, \
                 but harmony-agent does not configure interfaces yet (the image's DHCP default \
                 stays in effect)",
                self.version
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_1_and_2_top_level_or_nested() {
        let v2 = NetworkConfig::parse(b"version: 2\nethernets: {eth0: {dhcp4: true}}\n").unwrap();
        assert_eq!(v2.version, 2);
        let nested = NetworkConfig::parse(b"network:\n  version: 1\n  config: []\n").unwrap();
        assert_eq!(nested.version, 1);
        let json = NetworkConfig::parse(br#"{"version": 2, "ethernets": {}}"#).unwrap();
        assert_eq!(json.version, 2);
        assert_eq!(
            NetworkConfig::parse(b"version: 3\n").unwrap_err(),
            "version must be 1 or 2"
        );
        assert!(NetworkConfig::parse(b"[")
            .unwrap_err()
            .starts_with("not valid YAML"));
        let v: Value = serde_yaml_ng::from_str("version: 2\nethernets: {}\n").unwrap();
        let from_value = NetworkConfig::from_value(&v).unwrap();
        assert_eq!(
            NetworkConfig::parse(from_value.text.as_bytes()).unwrap(),
            from_value
        );
    }

    #[test]
    fn the_warning_names_the_source_and_says_not_applied() {
        let w = NetworkConfig::parse(b"version: 2\n")
            .unwrap()
            .not_applied("guestinfo:guestinfo.metadata");
        assert_eq!(w.path, "network-config");
        assert!(
            w.message.starts_with(
                "network config not applied: version 2 from guestinfo:guestinfo.metadata"
            ),
            "{}",
            w.message
        );
    }
}
