//! Sensu: backend, agent, the Uchiwa dashboard, and a PagerDuty handler definition.

use serde::Deserialize;

use super::catalog::{never_baked, parse_values, CatalogEntry, Rendered, ValuesError};

pub const BACKEND: CatalogEntry = CatalogEntry {
    name: "sensu-backend",
    upstream: "docker.io/sensu/sensu",
    config_mount: "/etc/sensu",
    summary: "monitoring backend with a PagerDuty handler",
    command: &["sensu-backend", "start", "-c", "/etc/sensu/backend.yml"],
    env: &[],
    user: "65534:65534",
    capabilities: &[],
    data_mount: "/var/lib/sensu",
    render: render_backend,
};

pub const AGENT: CatalogEntry = CatalogEntry {
    name: "sensu-agent",
    upstream: "docker.io/sensu/sensu",
    config_mount: "/etc/sensu",
    summary: "monitoring agent",
    command: &["sensu-agent", "start", "-c", "/etc/sensu/agent.yml"],
    env: &[],
    user: "65534:65534",
    capabilities: &[],
    data_mount: "/var/cache/sensu",
    render: render_agent,
};

pub const UCHIWA: CatalogEntry = CatalogEntry {
    name: "uchiwa",
    upstream: "docker.io/sensu/uchiwa",
    config_mount: "/config",
    summary: "Sensu dashboard",
    command: &[
        "/go/bin/uchiwa",
        "-c",
        "/config/config.json",
        "-p",
        "/go/src/github.com/sensu/uchiwa/public",
    ],
    env: &[],
    user: "65534:65534",
    capabilities: &[],
    data_mount: "/var/lib/uchiwa",
    render: render_uchiwa,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendValues {
    /// A PagerDuty handler whose key is the node's secret `pagerduty-integration-key`.
    #[serde(default)]
    pagerduty: bool,
    /// Refused: the key would be baked into the image.
    #[serde(default)]
    pagerduty_token_env: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    pagerduty_key: Option<serde_yaml_ng::Value>,
}

const PAGERDUTY_SECRET: &str = "pagerduty-integration-key";
/// The backend's variable Sensu's built-in `env` secrets provider reads.
const PAGERDUTY_VAR: &str = "PAGERDUTY_INTEGRATION_KEY";

fn render_backend(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: BackendValues = parse_values(values)?;
    if v.pagerduty_token_env.is_some() {
        return Err(never_baked("pagerduty_token_env", PAGERDUTY_SECRET));
    }
    if v.pagerduty_key.is_some() {
        return Err(never_baked("pagerduty_key", PAGERDUTY_SECRET));
    }
    let backend = "state-dir: /var/lib/sensu/sensu-backend\napi-listen-address: \"[::]:8080\"\n";
    let mut r = Rendered::default().file("backend.yml", backend.to_string());
    if v.pagerduty {
        // Sensu's own secret resource: the `env` provider reads the backend's variable,
        // which the runner sets from the node secret.
        let secret = serde_json::json!({
            "type": "Secret",
            "api_version": "secrets/v1",
            "metadata": {"name": "pagerduty-integration-key"},
            "spec": {"id": PAGERDUTY_VAR, "provider": "env"}
        });
        r = r
            .resource(
                "secrets/pagerduty.json",
                serde_json::to_string_pretty(&secret).expect("json") + "\n",
            )
            .secret_env(PAGERDUTY_SECRET, PAGERDUTY_VAR);
        let handler = serde_json::json!({
            "type": "Handler",
            "api_version": "core/v2",
            "metadata": {"name": "pagerduty"},
            "spec": {
                "type": "pipe",
                "command": "sensu-pagerduty-handler",
                "secrets": [{"name": "PAGERDUTY_TOKEN", "secret": "pagerduty-integration-key"}],
                "filters": ["is_incident", "not_silenced"],
                "timeout": 10
            }
        });
        r = r.resource(
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
        let b = render_backend(&y("pagerduty: true")).unwrap();
        let s: serde_json::Value = serde_json::from_str(&b.resources[0].1).unwrap();
        assert_eq!(s["spec"]["id"], "PAGERDUTY_INTEGRATION_KEY");
        assert_eq!(s["spec"]["provider"], "env");
        let h: serde_json::Value = serde_json::from_str(&b.resources[1].1).unwrap();
        assert_eq!(b.resources[1].0, "handlers/pagerduty.json");
        assert_eq!(h["spec"]["secrets"][0]["name"], "PAGERDUTY_TOKEN");
        assert_eq!(h["spec"]["secrets"][0]["secret"], s["metadata"]["name"]);
        assert_eq!(b.secrets[0].name, "pagerduty-integration-key");
        assert_eq!(
            b.secrets[0].env.as_deref(),
            Some("PAGERDUTY_INTEGRATION_KEY")
        );
        let e = render_backend(&y("pagerduty_key: 0123abcd")).unwrap_err();
        assert_eq!(e.field, "pagerduty_key");
        assert!(e.problem.contains("never baked") && !e.problem.contains("0123abcd"));
        assert_eq!(
            render_backend(&serde_yaml_ng::Value::Null)
                .unwrap()
                .resources
                .len(),
            0
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
