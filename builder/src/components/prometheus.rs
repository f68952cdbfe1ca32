//! Prometheus: scrape targets and alert rules; an HA pair is two replicas with the same
//! rules and `external_labels: {replica: a|b}` (Alertmanager/Thanos deduplicate on it).

use serde::Deserialize;

use super::catalog::{invalid, parse_values, quoted, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "prometheus",
    upstream: "docker.io/prom/prometheus",
    config_mount: "/etc/prometheus",
    summary: "metrics and alert rules; HA pair via replica a/b",
    command: &[
        "prometheus",
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
    ],
    env: &[],
    // the image's `nobody`.
    user: "65534:65534",
    capabilities: &[],
    data_mount: "/prometheus",
    render,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    #[serde(default = "interval")]
    scrape_interval: String,
    /// `a` or `b` for one of an HA pair; absent for a single Prometheus.
    replica: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    scrape: Vec<Scrape>,
    #[serde(default)]
    alertmanagers: Vec<String>,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scrape {
    job: String,
    targets: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    alert: String,
    expr: String,
    #[serde(rename = "for", default)]
    for_: Option<String>,
    #[serde(default)]
    severity: Option<String>,
}

fn interval() -> String {
    "30s".into()
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
    if let Some(r) = &v.replica {
        if r != "a" && r != "b" {
            return Err(invalid("replica", "an HA pair's replicas are `a` and `b`"));
        }
    }
    let mut cfg = format!(
        "global:\n  scrape_interval: {}\n",
        quoted(&v.scrape_interval)
    );
    if v.replica.is_some() || v.cluster.is_some() {
        cfg += "  external_labels:\n";
        if let Some(c) = &v.cluster {
            cfg += &format!("    cluster: {}\n", quoted(c));
        }
        if let Some(r) = &v.replica {
            cfg += &format!("    replica: {}\n", quoted(r));
        }
    }
    cfg += "rule_files:\n  - /etc/prometheus/rules.yml\n";
    if !v.alertmanagers.is_empty() {
        cfg += "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets:\n";
        for a in &v.alertmanagers {
            cfg += &format!("            - {}\n", quoted(a));
        }
    }
    cfg += "scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: [\"localhost:9090\"]\n";
    for (i, s) in v.scrape.iter().enumerate() {
        if s.targets.is_empty() {
            return Err(invalid(
                &format!("scrape[{i}].targets"),
                "at least one target",
            ));
        }
        let targets: Vec<String> = s.targets.iter().map(|t| quoted(t)).collect();
        cfg += &format!(
            "  - job_name: {}\n    static_configs:\n      - targets: [{}]\n",
            quoted(&s.job),
            targets.join(", ")
        );
    }
    let mut rules = String::from("groups:\n  - name: harmony\n    rules:\n");
    if v.rules.is_empty() {
        rules = "groups: []\n".into();
    }
    for r in &v.rules {
        rules += &format!(
            "      - alert: {}\n        expr: {}\n",
            quoted(&r.alert),
            quoted(&r.expr)
        );
        if let Some(f) = &r.for_ {
            rules += &format!("        for: {}\n", quoted(f));
        }
        if let Some(s) = &r.severity {
            rules += &format!("        labels:\n          severity: {}\n", quoted(s));
        }
    }
    Ok(Rendered::default()
        .file("prometheus.yml", cfg)
        .file("rules.yml", rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_yaml(s: &str) -> Result<Rendered, ValuesError> {
        render(&serde_yaml_ng::from_str(s).unwrap())
    }

    #[test]
    fn an_ha_pair_differs_only_in_the_replica_label() {
        let values = |r: &str| {
            format!("{{replica: {r}, rules: [{{alert: NodeDown, expr: 'up == 0', for: 5m, severity: page}}], scrape: [{{job: node, targets: ['n1:9100']}}]}}")
        };
        let a = render_yaml(&values("a")).unwrap();
        let b = render_yaml(&values("b")).unwrap();
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&a.files[0].1).unwrap();
        assert_eq!(parsed["global"]["external_labels"]["replica"], "a");
        assert_eq!(
            parsed["scrape_configs"][1]["static_configs"][0]["targets"][0],
            "n1:9100"
        );
        assert_eq!(a.files[1], b.files[1], "same rules on both replicas");
        assert_eq!(a.files[0].1.replace("\"a\"", "\"b\""), b.files[0].1);
        let rules: serde_yaml_ng::Value = serde_yaml_ng::from_str(&a.files[1].1).unwrap();
        assert_eq!(rules["groups"][0]["rules"][0]["expr"], "up == 0");
        assert_eq!(rules["groups"][0]["rules"][0]["labels"]["severity"], "page");
    }

    #[test]
    fn a_third_replica_and_unknown_keys_are_refused() {
        assert_eq!(render_yaml("replica: c").unwrap_err().field, "replica");
        let e = render_yaml("rules: [{alert: x, expr: y, severty: z}]").unwrap_err();
        assert_eq!(e.field, "rules[0].severty");
        assert!(e.problem.contains("severty"), "{e:?}");
    }
}
