//! A logging stack: ELK (elasticsearch, logstash, kibana) or a forwarder (fluent-bit)
//! that ships to Splunk's HTTP Event Collector.

use serde::Deserialize;

use ignition::secrets::SecretFormat;

use super::catalog::{invalid, never_baked, parse_values, CatalogEntry, Rendered, ValuesError};

pub const ELASTICSEARCH: CatalogEntry = CatalogEntry {
    name: "elasticsearch",
    upstream: "docker.elastic.co/elasticsearch/elasticsearch",
    config_mount: "/usr/share/elasticsearch/config/harmony",
    summary: "ELK: search and storage (single node)",
    // The image's entrypoint (under tini) is kept: it turns ELASTIC_PASSWORD_FILE into the
    // bootstrap password; ES_PATH_CONF points Elasticsearch at the rendered directory.
    command: &[
        "/bin/tini",
        "--",
        "/usr/local/bin/docker-entrypoint.sh",
        "eswrapper",
    ],
    env: &[
        ("ES_PATH_CONF", "/usr/share/elasticsearch/config/harmony"),
        ("ELASTIC_PASSWORD_FILE", "/run/secrets/elastic-password"),
    ],
    // the image's `elasticsearch` user.
    user: "1000:0",
    capabilities: &[],
    data_mount: "/usr/share/elasticsearch/data",
    render: render_es,
};
pub const LOGSTASH: CatalogEntry = CatalogEntry {
    name: "logstash",
    upstream: "docker.elastic.co/logstash/logstash",
    config_mount: "/usr/share/logstash/pipeline",
    summary: "ELK: beats input to elasticsearch",
    command: &[
        "logstash",
        "-f",
        "/usr/share/logstash/pipeline/harmony.conf",
    ],
    env: &[],
    // the image's `logstash` user.
    user: "1000:1000",
    capabilities: &[],
    data_mount: "/usr/share/logstash/data",
    render: render_logstash,
};
pub const KIBANA: CatalogEntry = CatalogEntry {
    name: "kibana",
    upstream: "docker.elastic.co/kibana/kibana",
    config_mount: "/usr/share/kibana/config/harmony",
    summary: "ELK: dashboards",
    command: &[
        "/usr/share/kibana/bin/kibana",
        "-c",
        "/usr/share/kibana/config/harmony/kibana.yml",
    ],
    env: &[],
    // the image's `kibana` user.
    user: "1000:0",
    capabilities: &[],
    data_mount: "/usr/share/kibana/data",
    render: render_kibana,
};
pub const FLUENT_BIT: CatalogEntry = CatalogEntry {
    name: "fluent-bit",
    upstream: "docker.io/fluent/fluent-bit",
    config_mount: "/fluent-bit/etc",
    summary: "log forwarder; Splunk HEC output",
    command: &[
        "/fluent-bit/bin/fluent-bit",
        "-c",
        "/fluent-bit/etc/fluent-bit.conf",
    ],
    env: &[],
    user: "65534:65534",
    capabilities: &[],
    data_mount: "/fluent-bit/data",
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

/// ES_PATH_CONF must hold all three files Elasticsearch reads at start: it falls back
/// to none of the image's own once the variable points elsewhere.
const ES_JVM_OPTIONS: &str = "\
## Rendered by harmony: no -Xms/-Xmx, so Elasticsearch sizes the heap from the memory it has.
-XX:+UseG1GC
";
const ES_LOG4J2: &str = "\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %marker%m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
";

fn render_es(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: EsValues = parse_values(values)?;
    Ok(Rendered::default()
        .file(
            "elasticsearch.yml",
            format!(
                "cluster.name: {}\nnetwork.host: 0.0.0.0\ndiscovery.type: single-node\npath.data: /usr/share/elasticsearch/data\nxpack.security.enabled: true\n",
                super::catalog::quoted(&v.cluster_name)
            ),
        )
        .file("jvm.options", ES_JVM_OPTIONS.to_string())
        .file("log4j2.properties", ES_LOG4J2.to_string())
        .secret_file(
            ELASTIC_PASSWORD_SECRET,
            ELASTIC_PASSWORD_SECRET,
            SecretFormat::Raw,
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
    #[serde(default = "yes")]
    tls: bool,
    /// Refused: the token comes from the node's secret, never from the recipe.
    #[serde(default)]
    splunk_token: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    splunk_token_env: Option<serde_yaml_ng::Value>,
}

/// The node secret with the HEC token, and the variable the runner sets from it.
const HEC_TOKEN_SECRET: &str = "splunk-hec-token";
const HEC_TOKEN_VAR: &str = "SPLUNK_HEC_TOKEN";
/// Elastic's `elastic` user password: a file the image's entrypoint reads
/// (ELASTIC_PASSWORD_FILE) into the keystore's bootstrap.password.
const ELASTIC_PASSWORD_SECRET: &str = "elastic-password";

fn hec_port() -> u16 {
    8088
}

fn yes() -> bool {
    true
}

fn render_fluent_bit(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: FluentBitValues = parse_values(values)?;
    if v.splunk_token.is_some() {
        return Err(never_baked("splunk_token", HEC_TOKEN_SECRET));
    }
    if v.splunk_token_env.is_some() {
        return Err(never_baked("splunk_token_env", HEC_TOKEN_SECRET));
    }
    if v.splunk_host.is_empty() || v.splunk_host.contains(char::is_whitespace) {
        return Err(invalid("splunk_host", "a host name or address"));
    }
    let conf = format!(
        "[SERVICE]\n    Flush 5\n\n[INPUT]\n    Name tail\n    Path /var/log/containers/*.log\n    Tag kube.*\n\n\
         [OUTPUT]\n    Name splunk\n    Match *\n    Host {}\n    Port {}\n    Splunk_Token ${{{}}}\n    TLS {}\n",
        v.splunk_host,
        v.splunk_port,
        HEC_TOKEN_VAR,
        if v.tls { "On" } else { "Off" }
    );
    Ok(Rendered::default()
        .file("fluent-bit.conf", conf)
        .secret_env(HEC_TOKEN_SECRET, HEC_TOKEN_VAR))
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
        assert_eq!(e.secrets[0].name, "elastic-password");
        assert_eq!(e.secrets[0].file.as_deref(), Some("elastic-password"));
        let f = render_fluent_bit(&y("{splunk_host: splunk.example}")).unwrap();
        assert!(f.files[0].1.contains("Name splunk\n"), "{}", f.files[0].1);
        assert!(f.files[0].1.contains("Splunk_Token ${SPLUNK_HEC_TOKEN}\n"));
        assert!(f.files[0].1.contains("Port 8088\n"));
        assert_eq!(f.secrets[0].name, "splunk-hec-token");
        assert_eq!(f.secrets[0].env.as_deref(), Some("SPLUNK_HEC_TOKEN"));
        for baked in ["splunk_token: hec-123", "splunk_token_env: HEC"] {
            let e = render_fluent_bit(&y(&format!("{{splunk_host: a, {baked}}}"))).unwrap_err();
            assert!(baked.starts_with(&e.field), "{e:?}");
            assert!(
                e.problem.contains("/etc/harmony/secrets/splunk-hec-token"),
                "{e:?}"
            );
        }
    }
}
