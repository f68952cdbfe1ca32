//! Consul agent: on its own (its own datacenter, bootstrap_expect) or bridged into an
//! existing cluster through `retry_join`.

use serde::Deserialize;

use super::catalog::{invalid, parse_values, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "consul",
    upstream: "docker.io/hashicorp/consul",
    config_mount: "/consul/config",
    summary: "service discovery agent; independent or retry_join to a cluster",
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
}

fn dc() -> String {
    "dc1".into()
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
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
    Ok(Rendered::default().file("harmony.json", text))
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
    }
}
