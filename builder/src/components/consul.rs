//! Consul agent: on its own (its own datacenter, bootstrap_expect) or bridged into an
//! existing cluster through `retry_join`.

use serde::Deserialize;

use ignition::secrets::SecretFormat;

use super::catalog::{invalid, never_baked, parse_values, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "consul",
    upstream: "docker.io/hashicorp/consul",
    config_mount: "/consul/config",
    summary: "service discovery agent; independent or retry_join to a cluster",
    // /run/secrets: the runner's tmpfs, where the gossip key's config file is written.
    command: &[
        "consul",
        "agent",
        "-config-dir=/consul/config",
        "-config-dir=/run/secrets",
    ],
    env: &[],
    // the image's `consul` user.
    user: "100:1000",
    capabilities: &[],
    data_mount: "/consul/data",
    render,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    #[serde(default = "dc")]
    datacenter: String,
    #[serde(default)]
    server: bool,
    #[serde(default)]
    bootstrap_expect: Option<u32>,
    /// Addresses of an existing cluster to join.
    #[serde(default)]
    retry_join: Vec<String>,
    /// Gossip encryption with the node's secret `consul-gossip-key` (`consul keygen`).
    #[serde(default)]
    gossip_encryption: bool,
    /// Refused: the key would be baked into the image.
    #[serde(default)]
    encrypt: Option<serde_yaml_ng::Value>,
}

const GOSSIP_KEY_SECRET: &str = "consul-gossip-key";

fn dc() -> String {
    "dc1".into()
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
    if v.encrypt.is_some() {
        return Err(never_baked("encrypt", GOSSIP_KEY_SECRET));
    }
    if v.bootstrap_expect.is_some() && !v.server {
        return Err(invalid(
            "bootstrap_expect",
            "only a server (`server: true`) bootstraps",
        ));
    }
    if !v.server && v.retry_join.is_empty() {
        return Err(invalid(
            "retry_join",
            "a client agent needs servers to join",
        ));
    }
    let mut doc = serde_json::json!({
        "datacenter": v.datacenter,
        "data_dir": "/consul/data",
        "server": v.server,
        "client_addr": "0.0.0.0",
    });
    if let Some(n) = v.bootstrap_expect {
        doc["bootstrap_expect"] = n.into();
    }
    if !v.retry_join.is_empty() {
        doc["retry_join"] = v.retry_join.into();
    }
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    let rendered = Rendered::default().file("harmony.json", text);
    Ok(if v.gossip_encryption {
        rendered.secret_file(
            GOSSIP_KEY_SECRET,
            "gossip-encrypt.json",
            SecretFormat::ConsulEncrypt,
        )
    } else {
        rendered
    })
}

#[cfg(test)]
mod tests {
    fn render(s: &str) -> Result<super::Rendered, super::ValuesError> {
        super::render(&serde_yaml_ng::from_str(s).unwrap())
    }

    #[test]
    fn independent_or_bridged() {
        let own = render("{server: true, bootstrap_expect: 1}").unwrap();
        let doc: serde_json::Value = serde_json::from_str(&own.files[0].1).unwrap();
        assert_eq!(doc["bootstrap_expect"], 1);
        assert!(doc.get("retry_join").is_none());
        let bridged = render("{retry_join: [consul.example.internal]}").unwrap();
        let doc: serde_json::Value = serde_json::from_str(&bridged.files[0].1).unwrap();
        assert_eq!(doc["retry_join"][0], "consul.example.internal");
        assert_eq!(doc["server"], false);
        assert_eq!(render("{}").unwrap_err().field, "retry_join");
        assert!(own.secrets.is_empty());
    }

    #[test]
    fn the_gossip_key_is_the_node_secret_never_a_value() {
        let r = render("{server: true, gossip_encryption: true}").unwrap();
        assert_eq!(r.secrets[0].name, "consul-gossip-key");
        assert_eq!(r.secrets[0].file.as_deref(), Some("gossip-encrypt.json"));
        assert!(!r.files[0].1.contains("encrypt"), "{}", r.files[0].1);
        let e = render("{server: true, encrypt: pUqJrVyVRj5jsiYEkM/tFQ==}").unwrap_err();
        assert_eq!(e.field, "encrypt");
        assert!(
            e.problem.contains("/etc/harmony/secrets/consul-gossip-key"),
            "{e:?}"
        );
    }
}
