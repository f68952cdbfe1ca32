//! Sensu: backend, agent, the Uchiwa dashboard, and a PagerDuty handler definition.

use serde::Deserialize;

use super::catalog::{parse_values, CatalogEntry, Rendered, ValuesError};

pub const BACKEND: CatalogEntry = CatalogEntry {
    name: "sensu-backend",
    upstream: "docker.io/sensu/sensu",
    config_mount: "/etc/sensu",
    summary: "monitoring backend with a PagerDuty handler",
    render: render_backend,
};

pub const AGENT: CatalogEntry = CatalogEntry {
    name: "sensu-agent",
    upstream: "docker.io/sensu/sensu",
    config_mount: "/etc/sensu",
    summary: "monitoring agent",
    render: render_agent,
};

pub const UCHIWA: CatalogEntry = CatalogEntry {
    name: "uchiwa",
    upstream: "docker.io/sensu/uchiwa",
    config_mount: "/config",
    summary: "Sensu dashboard",
    render: render_uchiwa,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendValues {
    /// The PagerDuty integration key's environment variable on the node (never the key).
    #[serde(default)]
    pagerduty_token_env: Option<String>,
}

fn render_backend(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: BackendValues = parse_values(values)?;
    let backend = "state-dir: /var/lib/sensu/sensu-backend\napi-listen-address: \"[::]:8080\"\n";
    let mut r = Rendered::default().file("backend.yml", backend.to_string());
    if let Some(env) = v.pagerduty_token_env {
        let handler = serde_json::json!({
            "type": "Handler",
            "api_version": "core/v2",
            "metadata": {"name": "pagerduty"},
            "spec": {
                "type": "pipe",
                "command": "sensu-pagerduty-handler",
                "env_vars": [format!("PAGERDUTY_TOKEN=${env}")],
                "filters": ["is_incident", "not_silenced"],
                "timeout": 10
            }
        });
        r = r.file(
            "handlers/pagerduty.json",
            serde_json::to_string_pretty(&handler).expect("json") + "\n",
        );
    }
    Ok(r)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentValues {
    backend_urls: Vec<String>,
    #[serde(default)]
    subscriptions: Vec<String>,
}

fn render_agent(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: AgentValues = parse_values(values)?;
    let doc = serde_json::json!({"backend-url": v.backend_urls, "subscriptions": v.subscriptions});
    // JSON is YAML: sensu-agent reads agent.yml.
    Ok(Rendered::default().file(
        "agent.yml",
        serde_json::to_string_pretty(&doc).expect("json") + "\n",
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UchiwaValues {
    sensu_api: String,
    #[serde(default = "uchiwa_port")]
    port: u16,
}

fn uchiwa_port() -> u16 {
    3000
}

fn render_uchiwa(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: UchiwaValues = parse_values(values)?;
    let doc = serde_json::json!({
        "sensu": [{"name": "harmony", "url": v.sensu_api}],
        "uchiwa": {"host": "0.0.0.0", "port": v.port}
    });
    Ok(Rendered::default().file(
        "config.json",
        serde_json::to_string_pretty(&doc).expect("json") + "\n",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn backend_with_pagerduty_agent_and_uchiwa() {
        let b = render_backend(&y("pagerduty_token_env: PD_KEY")).unwrap();
        let h: serde_json::Value = serde_json::from_str(&b.files[1].1).unwrap();
        assert_eq!(b.files[1].0, "handlers/pagerduty.json");
        assert_eq!(h["spec"]["env_vars"][0], "PAGERDUTY_TOKEN=$PD_KEY");
        assert_eq!(
            render_backend(&serde_yaml_ng::Value::Null)
                .unwrap()
                .files
                .len(),
            1
        );
        let a = render_agent(&y(
            "{backend_urls: ['ws://b:8081'], subscriptions: [linux]}",
        ))
        .unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&a.files[0].1).unwrap();
        assert_eq!(doc["backend-url"][0], "ws://b:8081");
        let u = render_uchiwa(&y("sensu_api: http://b:8080")).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&u.files[0].1).unwrap();
        assert_eq!(doc["uchiwa"]["port"], 3000);
        assert!(render_agent(&y("{}")).is_err());
    }
}
