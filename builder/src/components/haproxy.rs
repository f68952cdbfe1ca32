//! haproxy (TCP load balancing with a stats/health frontend) and keepalived (a VIP).

use serde::Deserialize;

use ignition::keepalived::{self, PASSWORD_SECRET};
use ignition::node_settings::{VrrpAuthentication, VrrpState};
use ignition::secrets::{SecretFormat, CONTAINER_SECRETS_DIR};

use super::catalog::{invalid, never_baked, parse_values, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "haproxy",
    upstream: "docker.io/library/haproxy",
    config_mount: "/usr/local/etc/haproxy",
    summary: "TCP load balancer; stats at :STATS_PORT/stats, health at /healthz",
    // -db: stay in the foreground, the init system supervises it.
    command: &["haproxy", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
    env: &[],
    // the image's `haproxy` user; binds below 1024 for an API endpoint on 443.
    user: "99:99",
    capabilities: &["NET_BIND_SERVICE"],
    data_mount: "/var/lib/haproxy",
    render,
};

pub const KEEPALIVED: CatalogEntry = CatalogEntry {
    name: "keepalived",
    upstream: "docker.io/osixia/keepalived",
    config_mount: "/usr/local/etc/keepalived",
    summary: "VRRP virtual IP in front of haproxy",
    command: &[
        "keepalived",
        "--dont-fork",
        "--log-console",
        "-f",
        "/usr/local/etc/keepalived/keepalived.conf",
    ],
    env: &[],
    // VRRP adverts (raw IP socket) and adding the VIP to the interface.
    user: "65534:65534",
    capabilities: &["NET_ADMIN", "NET_RAW", "NET_BROADCAST"],
    data_mount: "/var/lib/keepalived",
    render: render_keepalived,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    #[serde(default = "stats_port")]
    stats_port: u16,
    #[serde(default)]
    backends: Vec<Backend>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Backend {
    name: String,
    /// `ADDR:PORT` or `:PORT` to listen on.
    bind: String,
    servers: Vec<String>,
}

fn stats_port() -> u16 {
    8404
}

fn word(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:[]".contains(c))
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
    let mut cfg = format!(
        "\
global
    log stdout format raw local0
    maxconn 4096

defaults
    log global
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend stats
    mode http
    bind :{port}
    http-request return status 200 content-type text/plain string \"ok\" if {{ path /healthz }}
    stats enable
    stats uri /stats
    stats refresh 10s
",
        port = v.stats_port
    );
    for (i, b) in v.backends.iter().enumerate() {
        if !word(&b.name) {
            return Err(invalid(
                &format!("backends[{i}].name"),
                "letters, digits, . _ - only",
            ));
        }
        if !word(&b.bind) || !b.bind.contains(':') {
            return Err(invalid(
                &format!("backends[{i}].bind"),
                "expected ADDR:PORT or :PORT",
            ));
        }
        if b.servers.is_empty() {
            return Err(invalid(
                &format!("backends[{i}].servers"),
                "at least one server",
            ));
        }
        cfg += &format!(
            "\nlisten {name}\n    mode tcp\n    bind {bind}\n    balance roundrobin\n",
            name = b.name,
            bind = b.bind
        );
        for (j, s) in b.servers.iter().enumerate() {
            if !word(s) || !s.contains(':') {
                return Err(invalid(
                    &format!("backends[{i}].servers[{j}]"),
                    "expected HOST:PORT",
                ));
            }
            cfg += &format!("    server s{j} {s} check\n");
        }
    }
    Ok(Rendered::default().file("haproxy.cfg", cfg))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeepalivedValues {
    interface: String,
    virtual_ip: String,
    router_id: u8,
    #[serde(default = "priority")]
    priority: u8,
    /// `pass`: VRRP PASS with the node's secret keepalived-password.
    #[serde(default)]
    authentication: VrrpAuthentication,
    /// Refused: a password here would be baked into the image.
    #[serde(default)]
    password: Option<serde_yaml_ng::Value>,
    /// haproxy's stats port, where it answers /healthz: the VIP follows a haproxy that
    /// answers there.
    #[serde(default = "stats_port")]
    haproxy_port: u16,
}

/// The password fragment the runner writes from the secret, in the container.
const KEEPALIVED_AUTH_FILE: &str = "keepalived-auth.conf";

fn priority() -> u8 {
    100
}

fn render_keepalived(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: KeepalivedValues = parse_values(values)?;
    if !word(&v.interface) {
        return Err(invalid("interface", "not an interface name"));
    }
    if v.password.is_some() {
        return Err(never_baked("password", PASSWORD_SECRET));
    }
    let address: std::net::IpAddr = v.virtual_ip.parse().map_err(|_| {
        invalid(
            "virtual_ip",
            format!("`{}` is not an IP address", v.virtual_ip),
        )
    })?;
    let fragment = format!("{CONTAINER_SECRETS_DIR}/{KEEPALIVED_AUTH_FILE}");
    // Over the shared host network, not by PID: each component has a PID namespace of
    // its own, so keepalived cannot see haproxy's process (`kill -0 $(pidof haproxy)`
    // failed always).
    let check = format!(
        "/bin/sh -c 'wget -q -T 2 -O /dev/null http://127.0.0.1:{}/healthz'",
        v.haproxy_port
    );
    let pass = v.authentication == VrrpAuthentication::Pass;
    let cfg = keepalived::render(&keepalived::Conf {
        rendered_from: "harmony from the recipe's keepalived values",
        router_id: "harmony",
        instance: "harmony",
        state: VrrpState::Backup,
        interface: &v.interface,
        virtual_router_id: v.router_id,
        priority: v.priority,
        address,
        check: keepalived::TrackScript {
            name: "chk_haproxy",
            script: &check,
            interval: 2,
            fall: 1,
            rise: 1,
        },
        auth_fragment: pass.then_some(fragment.as_str()),
    });
    let rendered = Rendered::default().file("keepalived.conf", cfg);
    Ok(if pass {
        rendered.secret_file(
            PASSWORD_SECRET,
            KEEPALIVED_AUTH_FILE,
            SecretFormat::KeepalivedAuth,
        )
    } else {
        rendered
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    /// The rendered file is checked by haproxy itself where it is installed.
    #[test]
    fn haproxy_config_renders_and_haproxy_accepts_it() {
        let r = render(&yaml(
            "stats_port: 9000\nbackends: [{name: api, bind: ':6443', servers: ['10.0.0.1:6443', '10.0.0.2:6443']}]",
        ))
        .unwrap();
        let (path, cfg) = &r.files[0];
        assert_eq!(path, "haproxy.cfg");
        assert!(cfg.contains("bind :9000"), "{cfg}");
        assert!(cfg.contains("server s1 10.0.0.2:6443 check"), "{cfg}");
        if !std::path::Path::new("/usr/sbin/haproxy").exists() {
            harmony_test_support::skip(
                "tool haproxy not installed: haproxy -c of the rendered config",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, cfg).unwrap();
        harmony_test_support::command::run_ok(
            std::process::Command::new("/usr/sbin/haproxy")
                .arg("-c")
                .arg("-f")
                .arg(&file),
        );
    }

    #[test]
    fn haproxy_values_are_strict() {
        let e = render(&yaml("stat_port: 1")).unwrap_err();
        assert_eq!(e.field, "stat_port", "{e:?}");
        assert!(e.problem.contains("unknown field `stat_port`"), "{e:?}");
        let e = render(&yaml("backends: [{name: a, bind: ':1', servers: ['x']}]")).unwrap_err();
        assert_eq!(e.field, "backends[0].servers[0]");
    }

    #[test]
    fn keepalived_renders_the_vip() {
        let r = render_keepalived(&yaml(
            "{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51}",
        ))
        .unwrap();
        let cfg = &r.files[0].1;
        assert!(cfg.contains("virtual_router_id 51"), "{cfg}");
        assert!(cfg.contains("        192.0.2.10\n"), "{cfg}");
        // haproxy is checked through its health endpoint, never by PID (another PID
        // namespace).
        assert!(
            cfg.contains("wget -q -T 2 -O /dev/null http://127.0.0.1:8404/healthz"),
            "{cfg}"
        );
        assert!(!cfg.contains("pidof"), "{cfg}");
        assert!(
            !cfg.contains("auth"),
            "no authentication unless asked: {cfg}"
        );
        assert!(r.secrets.is_empty());
        let e = render_keepalived(&yaml("{interface: eth0, virtual_ip: nope, router_id: 1}"))
            .unwrap_err();
        assert_eq!(e.field, "virtual_ip");
    }

    /// keepalived itself reads the catalog's file, with the fragment the runner would
    /// write in /run/secrets put in a temporary directory instead.
    #[test]
    fn keepalived_accepts_the_catalog_conf() {
        let r = render_keepalived(&yaml(
            "{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, authentication: pass}",
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fragment = dir.path().join(KEEPALIVED_AUTH_FILE);
        std::fs::write(&fragment, "auth_pass pw-1\n").unwrap();
        let conf = dir.path().join("keepalived.conf");
        let in_container = format!("{CONTAINER_SECRETS_DIR}/{KEEPALIVED_AUTH_FILE}");
        std::fs::write(
            &conf,
            r.files[0]
                .1
                .replace(&in_container, fragment.to_str().unwrap()),
        )
        .unwrap();
        let Some(test) = harmony_test_support::keepalived::config_test(&conf) else {
            return;
        };
        assert!(test.accepted, "keepalived -t -f: {}", test.said);
        assert!(
            !test.said.contains("WARNING") && !test.said.contains("Ignoring"),
            "{}",
            test.said
        );
    }

    /// The one policy (ignition::keepalived): the password is the node's secret, included
    /// from the fragment the runner writes; one given in the recipe is refused.
    #[test]
    fn keepalived_authentication_comes_from_the_node_secret_never_the_recipe() {
        let r = render_keepalived(&yaml(
            "{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, authentication: pass}",
        ))
        .unwrap();
        let cfg = &r.files[0].1;
        assert!(
            cfg.contains(
                "        auth_type PASS\n        includea /run/secrets/keepalived-auth.conf\n"
            ),
            "{cfg}"
        );
        assert_eq!(r.secrets.len(), 1);
        assert_eq!(r.secrets[0].name, "keepalived-password");
        assert_eq!(r.secrets[0].file.as_deref(), Some("keepalived-auth.conf"));
        assert_eq!(r.secrets[0].format, SecretFormat::KeepalivedAuth);
        let e = render_keepalived(&yaml(
            "{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, password: s3cret}",
        ))
        .unwrap_err();
        assert_eq!(e.field, "password");
        assert!(
            e.problem.contains("never baked")
                && e.problem
                    .contains("/etc/harmony/secrets/keepalived-password"),
            "{e:?}"
        );
        assert!(!e.problem.contains("s3cret"), "{e:?}");
    }
}
