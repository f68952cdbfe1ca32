//! cloud-init's VMware meta-data (`guestinfo.metadata`), read as cloud-init 22.4's
//! DataSourceVMware reads it: JSON, else YAML; `instance-id` (else the DMI product UUID,
//! lower case), `local-hostname`, and `network`: a mapping is the network config itself,
//! a string is decoded with `network.encoding` first. Keys cloud-init acts on that
//! Harmony does not (`public-keys-data` & co., `redact`, `cleanup-guestinfo`,
//! `wait-on-network`) become warnings; the rest is instance data, ignored as cloud-init
//! ignores it.

use ignition::cloud_config::MetaData;
use serde_yaml_ng::Value;

use super::encoding;
use crate::report::WarningReport;
use crate::sources::network_config::NetworkConfig;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VmwareMetaData {
    pub meta: MetaData,
    pub network: Option<NetworkConfig>,
    pub warnings: Vec<WarningReport>,
}

/// What cloud-init does with each key Harmony leaves alone.
const NOT_DONE: [(&str, &str); 7] = [
    ("public-keys-data", "SSH keys for cloud-init's default user"),
    ("public_keys_data", "SSH keys for cloud-init's default user"),
    ("public-keys", "SSH keys for cloud-init's default user"),
    ("public_keys", "SSH keys for cloud-init's default user"),
    ("redact", "clearing the listed guestinfo keys"),
    ("cleanup-guestinfo", "clearing the listed guestinfo keys"),
    ("wait-on-network", "waiting for addresses before going on"),
];

/// `bytes` is the decoded value of `location` (`guestinfo:guestinfo.metadata`).
pub fn parse(
    bytes: &[u8],
    location: &str,
    product_uuid: Option<&str>,
) -> Result<VmwareMetaData, String> {
    let doc: Value =
        serde_yaml_ng::from_slice(bytes).map_err(|e| format!("neither JSON nor YAML: {e}"))?;
    let map = match &doc {
        Value::Null => serde_yaml_ng::Mapping::new(),
        Value::Mapping(m) => m.clone(),
        _ => return Err("not a mapping of meta-data keys".to_string()),
    };
    let mut meta = MetaData::parse(bytes).map_err(|e| e.to_string())?;
    if meta.instance_id.is_none() {
        meta.instance_id = product_uuid.map(|u| u.trim().to_ascii_lowercase());
    }
    let network = match map.get("network") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Mapping(_)) => Some(NetworkConfig::from_value(v)),
        Some(Value::String(s)) => {
            let enc = match map.get("network.encoding") {
                Some(Value::String(e)) => e.trim().to_string(),
                Some(_) => return Err("network.encoding: not a string".to_string()),
                None => String::new(),
            };
            Some(encoding::decode(s.as_bytes(), &enc).and_then(|b| NetworkConfig::parse(&b)))
        }
        Some(_) => Some(Err("a mapping, or an encoded string".to_string())),
    }
    .transpose()
    .map_err(|e| format!("network: {e}"))?;
    let warnings = NOT_DONE
        .iter()
        .filter(|(k, _)| map.contains_key(*k))
        .map(|(k, what)| WarningReport {
            path: format!("{location}.{k}"),
            message: format!("not supported by harmony-agent ({what}): ignored"),
        })
        .collect();
    Ok(VmwareMetaData {
        meta,
        network,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    const AT: &str = "guestinfo:guestinfo.metadata";

    #[test]
    fn yaml_with_a_network_mapping() {
        let md = parse(
            b"instance-id: cloud-vm\nlocal-hostname: cloud-vm\nnetwork:\n  version: 2\n  ethernets:\n    nics:\n      match: {name: ens*}\n      dhcp4: yes\n",
            AT,
            None,
        )
        .unwrap();
        assert_eq!(md.meta.instance_id.as_deref(), Some("cloud-vm"));
        assert_eq!(md.meta.local_hostname.as_deref(), Some("cloud-vm"));
        assert_eq!(md.network.unwrap().version, 2);
        assert!(md.warnings.is_empty());
    }

    #[test]
    fn json_with_an_encoded_network_string() {
        let net = base64::engine::general_purpose::STANDARD
            .encode("version: 1\nconfig:\n  - type: physical\n    name: ens192\n");
        let json = format!(
            r#"{{"local-hostname": "n1", "network": "{net}", "network.encoding": "base64"}}"#
        );
        let md = parse(
            json.as_bytes(),
            AT,
            Some("4231C0DE-0000-1111-2222-333344445555\n"),
        )
        .unwrap();
        assert_eq!(md.network.unwrap().version, 1);
        // No instance-id: the DMI product UUID, lower case, as cloud-init reads it.
        assert_eq!(
            md.meta.instance_id.as_deref(),
            Some("4231c0de-0000-1111-2222-333344445555")
        );
    }

    #[test]
    fn bad_network_config_is_an_error_naming_the_key() {
        let err = parse(b"network: {version: 7}\n", AT, None).unwrap_err();
        assert_eq!(err, "network: version must be 1 or 2");
        let err = parse(b"network: abc\nnetwork.encoding: base32\n", AT, None).unwrap_err();
        assert!(
            err.starts_with("network: unsupported encoding \"base32\""),
            "{err}"
        );
        assert_eq!(
            parse(b"- a\n", AT, None).unwrap_err(),
            "not a mapping of meta-data keys"
        );
    }

    #[test]
    fn keys_cloud_init_acts_on_are_warned_about() {
        let md = parse(
            b"instance-id: i\npublic-keys-data: ssh-ed25519 AAAA\nredact: [userdata]\n",
            AT,
            None,
        )
        .unwrap();
        let paths: Vec<&str> = md.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "guestinfo:guestinfo.metadata.public-keys-data",
                "guestinfo:guestinfo.metadata.redact"
            ]
        );
    }
}
