//! A logging stack: ELK (elasticsearch, logstash, kibana) or a forwarder (fluent-bit)
//! that ships to Splunk's HTTP Event Collector.

use serde::Deserialize;

use super::catalog::{invalid, parse_values, CatalogEntry, Rendered, ValuesError};

pub const ELASTICSEARCH: CatalogEntry = CatalogEntry {
    name: "elasticsearch",
    upstream: "docker.elastic.co/elasticsearch/elasticsearch",
    config_mount: "/usr/share/elasticsearch/config/harmony",
    summary: "ELK: search and storage (single node)",
    render: render_es,
};
pub const LOGSTASH: CatalogEntry = CatalogEntry {
    name: "logstash",
    upstream: "docker.elastic.co/logstash/logstash",
    config_mount: "/usr/share/logstash/pipeline",
    summary: "ELK: beats input to elasticsearch",
    render: render_logstash,
};
pub const KIBANA: CatalogEntry = CatalogEntry {
    name: "kibana",
    upstream: "docker.elastic.co/kibana/kibana",
    config_mount: "/usr/share/kibana/config/harmony",
    summary: "ELK: dashboards",
    render: render_kibana,
};
pub const FLUENT_BIT: CatalogEntry = CatalogEntry {
    name: "fluent-bit",
    upstream: "docker.io/fluent/fluent-bit",
    config_mount: "/fluent-bit/etc",
    summary: "log forwarder; Splunk HEC output",
    render: render_fluent_bit,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EsValues {
    #[serde(default = "cluster")]
    cluster_name: String,
}

fn cluster() -> String {
    "harmony".into()
}

fn render_es(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: EsValues = parse_values(values)?;
    Ok(Rendered::default().file(
        "elasticsearch.yml",
        format!(
            "cluster.name: {}\nnetwork.host: 0.0.0.0\ndiscovery.type: single-node\n",
            super::catalog::quoted(&v.cluster_name)
        ),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogstashValues {
    elasticsearch_url: String,
    #[serde(default = "beats")]
    beats_port: u16,
}

fn beats() -> u16 {
    5044
}

fn render_logstash(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: LogstashValues = parse_values(values)?;
    Ok(Rendered::default().file(
        "harmony.conf",
        format!(
            "input {{\n  beats {{\n    port => {}\n  }}\n}}\noutput {{\n  elasticsearch {{\n    hosts => [{}]\n  }}\n}}\n",
            v.beats_port,
            super::catalog::quoted(&v.elasticsearch_url)
        ),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KibanaValues {
    elasticsearch_url: String,
}

fn render_kibana(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: KibanaValues = parse_values(values)?;
    Ok(Rendered::default().file(
        "kibana.yml",
        format!(
            "server.host: \"0.0.0.0\"\nelasticsearch.hosts: [{}]\n",
            super::catalog::quoted(&v.elasticsearch_url)
        ),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FluentBitValues {
    splunk_host: String,
    #[serde(default = "hec_port")]
    splunk_port: u16,
    /// The HEC token's environment variable on the node (never the token itself).
    splunk_token_env: String,
    #[serde(default = "yes")]
    tls: bool,
}

fn hec_port() -> u16 {
    8088
}

fn yes() -> bool {
    true
}

fn render_fluent_bit(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: FluentBitValues = parse_values(values)?;
    if v.splunk_host.is_empty() || v.splunk_host.contains(char::is_whitespace) {
        return Err(invalid("splunk_host", "a host name or address"));
    }
    let conf = format!(
        "[SERVICE]\n    Flush 5\n\n[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    Tag kube.*\n\n\
         [OUTPUT]\n    Name splunk\n    Match *\n    Host {}\n    Port {}\n    Splunk_Token ${{{}}}\n    TLS {}\n",
        v.splunk_host,
        v.splunk_port,
        v.splunk_token_env,
        if v.tls { "On" } else { "Off" }
    );
    Ok(Rendered::default().file("fluent-bit.conf", conf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn elk_and_the_splunk_forwarder() {
        let l = render_logstash(&y("elasticsearch_url: http://es:9200")).unwrap();
        assert!(
            l.files[0].1.contains("hosts => [\"http://es:9200\"]"),
            "{}",
            l.files[0].1
        );
        let k = render_kibana(&y("elasticsearch_url: http://es:9200")).unwrap();
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&k.files[0].1).unwrap();
        assert_eq!(doc["elasticsearch.hosts"][0], "http://es:9200");
        let e = render_es(&serde_yaml_ng::Value::Null).unwrap();
        assert!(e.files[0].1.contains("discovery.type: single-node"));
        let f =
            render_fluent_bit(&y("{splunk_host: splunk.example, splunk_token_env: HEC}")).unwrap();
        assert!(f.files[0].1.contains("Name splunk\n"), "{}", f.files[0].1);
        assert!(f.files[0].1.contains("Splunk_Token ${HEC}\n"));
        assert!(f.files[0].1.contains("Port 8088\n"));
        assert_eq!(
            render_fluent_bit(&y("{splunk_host: a, splunk_token: x}"))
                .unwrap_err()
                .field,
            "splunk_token"
        );
    }
}
