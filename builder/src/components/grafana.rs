//! Grafana with a provisioned Prometheus datasource.

use serde::Deserialize;

use super::catalog::{parse_values, quoted, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "grafana",
    upstream: "docker.io/grafana/grafana",
    config_mount: "/etc/grafana/provisioning/datasources",
    summary: "dashboards; Prometheus datasource provisioned",
    // What the image's run.sh would exec, with the provisioning path spelled out.
    command: &[
        "grafana",
        "server",
        "--homepath=/usr/share/grafana",
        "--config=/etc/grafana/grafana.ini",
        "cfg:default.log.mode=console",
        "cfg:default.paths.data=/var/lib/grafana",
        "cfg:default.paths.provisioning=/etc/grafana/provisioning",
    ],
    env: &[],
    // the image's `grafana` user.
    user: "472:0",
    capabilities: &[],
    data_mount: "/var/lib/grafana",
    render,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    prometheus_url: String,
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
    let ds = format!(
        "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    type: prometheus\n    access: proxy\n    url: {}\n    isDefault: true\n",
        quoted(&v.prometheus_url)
    );
    Ok(Rendered::default().file("prometheus.yaml", ds))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_datasource_points_at_prometheus() {
        let r = super::render(&serde_yaml_ng::from_str("prometheus_url: http://p:9090").unwrap())
            .unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&r.files[0].1).unwrap();
        assert_eq!(doc["datasources"][0]["url"], "http://p:9090");
        assert_eq!(doc["datasources"][0]["type"], "prometheus");
        assert!(
            super::render(&serde_yaml_ng::Value::Null).is_err(),
            "url is required"
        );
    }
}
