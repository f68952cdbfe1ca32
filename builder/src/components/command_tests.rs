//! Every catalog entry's command makes its process read what was rendered, and none runs
//! a dev mode (issue 12 item 2): the image's default command (`vault server -dev`,
//! `consul agent -dev`, a redis with no config file) would ignore the rendered files.

use std::path::Path;

use ignition::secrets::CONTAINER_SECRETS_DIR;

use super::catalog::{CatalogEntry, Rendered, CATALOG};

/// Each entry by name, with values that render every file it can render, and the program
/// its command runs.
const ENTRIES: &[(&str, &str, &str)] = &[
    (
        "haproxy",
        "{backends: [{name: api, bind: ':6443', servers: ['10.0.0.1:6443']}]}",
        "haproxy",
    ),
    (
        "keepalived",
        "{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, authentication: pass}",
        "keepalived",
    ),
    (
        "prometheus",
        "{replica: a, alertmanagers: ['am:9093'], rules: [{alert: A, expr: up == 0}]}",
        "prometheus",
    ),
    ("grafana", "{prometheus_url: 'http://p:9090'}", "grafana"),
    (
        "consul",
        "{server: true, bootstrap_expect: 1, gossip_encryption: true}",
        "consul",
    ),
    ("vault", "{storage: raft}", "vault"),
    ("redis", "{maxmemory_mb: 64}", "redis-server"),
    ("sensu-backend", "{pagerduty: true}", "sensu-backend"),
    (
        "sensu-agent",
        "{backend_urls: ['ws://b:8081']}",
        "sensu-agent",
    ),
    ("uchiwa", "{sensu_api: 'http://b:8080'}", "/go/bin/uchiwa"),
    ("elasticsearch", "{}", "/bin/tini"),
    (
        "logstash",
        "{elasticsearch_url: 'http://es:9200'}",
        "logstash",
    ),
    (
        "kibana",
        "{elasticsearch_url: 'http://es:9200'}",
        "/usr/share/kibana/bin/kibana",
    ),
    (
        "fluent-bit",
        "{splunk_host: splunk.example}",
        "/fluent-bit/bin/fluent-bit",
    ),
];

/// The paths a command line and its environment name: whole arguments, and what follows
/// `=` in `--flag=PATH`, `cfg:key=PATH` or `NAME=PATH`.
fn named_paths(entry: &CatalogEntry) -> Vec<&'static str> {
    let args = entry.command.iter().copied();
    let env = entry.env.iter().map(|(_, v)| *v);
    args.chain(env)
        .map(|a| a.split_once('=').map_or(a, |(_, v)| v))
        .filter(|a| a.starts_with('/'))
        .collect()
}

/// Rendered files (as mounted in the container) the process never reaches: a file is
/// reached when the command names it or a directory above it, or when a reached file
/// names it (prometheus.yml's `rule_files`).
fn unread_files(entry: &CatalogEntry, rendered: &Rendered) -> Vec<String> {
    let mounted: Vec<(String, &str)> = rendered
        .files
        .iter()
        .map(|(path, text)| (format!("{}/{path}", entry.config_mount), text.as_str()))
        .collect();
    let named = named_paths(entry);
    let mut reached: Vec<bool> = mounted
        .iter()
        .map(|(path, _)| {
            named
                .iter()
                .any(|n| Path::new(path) == Path::new(n) || Path::new(path).starts_with(n))
        })
        .collect();
    loop {
        let newly: Vec<usize> = (0..mounted.len())
            .filter(|&i| !reached[i])
            .filter(|&i| {
                (0..mounted.len()).any(|j| reached[j] && mounted[j].1.contains(&mounted[i].0))
            })
            .collect();
        if newly.is_empty() {
            break;
        }
        for i in newly {
            reached[i] = true;
        }
    }
    mounted
        .into_iter()
        .zip(reached)
        .filter(|(_, r)| !r)
        .map(|((path, _), _)| path)
        .collect()
}

/// `-dev`, `--dev`, `-dev-root-token-id=…`, and the images' dev-mode variables.
fn dev_mode(entry: &CatalogEntry) -> Vec<String> {
    let flags = entry
        .command
        .iter()
        .filter(|a| a.starts_with('-') && a.trim_start_matches('-').starts_with("dev"))
        .map(|a| a.to_string());
    let vars = entry
        .env
        .iter()
        .filter(|(k, _)| k.contains("_DEV_") || k.ends_with("_DEV"))
        .map(|(k, _)| k.to_string());
    flags.chain(vars).collect()
}

/// Secrets the process never reaches: a file in /run/secrets that neither the command,
/// its environment nor a rendered file names (itself or its directory), a variable no
/// rendered file or resource refers to.
fn unreached_secrets(entry: &CatalogEntry, rendered: &Rendered) -> Vec<String> {
    let named = named_paths(entry);
    let texts: Vec<&str> = rendered
        .files
        .iter()
        .chain(&rendered.resources)
        .map(|(_, t)| t.as_str())
        .collect();
    rendered
        .secrets
        .iter()
        .filter(|s| {
            let by_file = s.file.as_ref().is_some_and(|f| {
                let path = format!("{CONTAINER_SECRETS_DIR}/{f}");
                named.iter().any(|n| Path::new(&path).starts_with(n))
                    || texts.iter().any(|t| t.contains(&path))
            });
            let by_env = s
                .env
                .as_ref()
                .is_some_and(|v| texts.iter().any(|t| t.contains(v.as_str())));
            !(by_file || by_env)
        })
        .map(|s| s.name.clone())
        .collect()
}

#[test]
fn every_entry_is_listed_here() {
    let listed: Vec<&str> = ENTRIES.iter().map(|(name, _, _)| *name).collect();
    let catalog: Vec<&str> = CATALOG.iter().map(|e| e.name).collect();
    assert_eq!(listed, catalog);
}

#[test]
fn every_command_reads_every_rendered_file_and_none_runs_a_dev_mode() {
    for (name, values, program) in ENTRIES {
        let entry = super::find(name).unwrap_or_else(|| panic!("{name} is not in the catalog"));
        let rendered = (entry.render)(&serde_yaml_ng::from_str(values).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(!rendered.files.is_empty(), "{name} renders nothing");
        assert_eq!(entry.command.first(), Some(program), "{name}");
        let unread = unread_files(entry, &rendered);
        assert!(
            unread.is_empty(),
            "{name}: `{}` reads none of {unread:?}",
            entry.command.join(" ")
        );
        let dev = dev_mode(entry);
        assert!(dev.is_empty(), "{name}: dev mode {dev:?}");
        let lost = unreached_secrets(entry, &rendered);
        assert!(
            lost.is_empty(),
            "{name}: secrets the process never sees: {lost:?}"
        );
    }
}

/// The checks above catch what they are for.
#[test]
fn the_checks_fail_on_an_image_default_command() {
    let redis = super::find("redis").unwrap();
    let rendered = (redis.render)(&serde_yaml_ng::Value::Null).unwrap();
    let image_default = CatalogEntry {
        command: &["redis-server"],
        ..*redis
    };
    assert_eq!(
        unread_files(&image_default, &rendered),
        ["/usr/local/etc/redis/redis.conf"]
    );
    let vault = super::find("vault").unwrap();
    let dev = CatalogEntry {
        command: &["vault", "server", "-dev", "-dev-root-token-id=root"],
        env: &[("VAULT_DEV_ROOT_TOKEN_ID", "root")],
        ..*vault
    };
    assert_eq!(
        dev_mode(&dev),
        ["-dev", "-dev-root-token-id=root", "VAULT_DEV_ROOT_TOKEN_ID"]
    );
    let prometheus = super::find("prometheus").unwrap();
    let rendered = (prometheus.render)(&serde_yaml_ng::Value::Null).unwrap();
    let rules_only_by_dir = CatalogEntry {
        command: &["prometheus", "--storage.tsdb.path=/prometheus"],
        ..*prometheus
    };
    assert_eq!(
        unread_files(&rules_only_by_dir, &rendered),
        [
            "/etc/prometheus/prometheus.yml",
            "/etc/prometheus/rules.yml"
        ]
    );
    let consul = super::find("consul").unwrap();
    let rendered = (consul.render)(
        &serde_yaml_ng::from_str("{server: true, gossip_encryption: true}").unwrap(),
    )
    .unwrap();
    let without_the_secrets_dir = CatalogEntry {
        command: &["consul", "agent", "-config-dir=/consul/config"],
        ..*consul
    };
    assert_eq!(
        unreached_secrets(&without_the_secrets_dir, &rendered),
        ["consul-gossip-key"]
    );
}

/// Entries whose state lives at their image's default path (the data mount), not at one
/// the command or the rendered config names.
const STATE_AT_THE_IMAGE_DEFAULT: &[&str] = &[
    "haproxy",
    "keepalived",
    "sensu-agent",
    "uchiwa",
    "logstash",
    "kibana",
    "fluent-bit",
];

/// Issue 12 items 3 and 5: no entry runs as root, each keeps only capabilities the kernel
/// knows by the name given, and the state its command or config puts somewhere is on the
/// data mount (so it survives a restart).
#[test]
fn every_entry_runs_unprivileged_and_keeps_its_state_on_the_data_mount() {
    for (name, values, _) in ENTRIES {
        let entry = super::find(name).unwrap();
        let ids: Vec<u32> = entry
            .user
            .split(':')
            .map(|n| n.parse().unwrap_or_else(|_| panic!("{name}: user")))
            .collect();
        assert!(ids.len() == 2 && ids[0] != 0, "{name}: {}", entry.user);
        for cap in entry.capabilities {
            assert!(
                rustix::thread::CapabilitySet::from_name(cap).is_some(),
                "{name}: {cap}"
            );
        }
        let data = entry.data_mount;
        assert!(
            data.starts_with('/') && data != entry.config_mount,
            "{name}"
        );
        if STATE_AT_THE_IMAGE_DEFAULT.contains(name) {
            continue;
        }
        let rendered = (entry.render)(&serde_yaml_ng::from_str(values).unwrap()).unwrap();
        let named = named_paths(entry)
            .iter()
            .any(|p| Path::new(p).starts_with(data))
            || rendered.files.iter().any(|(_, text)| text.contains(data));
        assert!(named, "{name}: nothing puts its state on {data}");
    }
}
