//! haproxy (TCP load balancing with a stats/health frontend) and keepalived (a VIP).

use serde::Deserialize;

use super::catalog::{invalid, parse_values, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "haproxy",
    upstream: "docker.io/library/haproxy",
    config_mount: "/usr/local/etc/haproxy",
    summary: "TCP load balancer; stats at :STATS_PORT/stats, health at /healthz",
    render,
};

pub const KEEPALIVED: CatalogEntry = CatalogEntry {
    name: "keepalived",
    upstream: "docker.io/osixia/keepalived",
    config_mount: "/container/service/keepalived/assets",
    summary: "VRRP virtual IP in front of haproxy",
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
    #[serde(default)]
    password: Option<String>,
}

fn priority() -> u8 {
    100
}

fn render_keepalived(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: KeepalivedValues = parse_values(values)?;
    if v.virtual_ip.parse::<std::net::IpAddr>().is_err() {
        return Err(invalid(
            "virtual_ip",
            format!("`{}` is not an IP address", v.virtual_ip),
        ));
    }
    if !word(&v.interface) {
        return Err(invalid("interface", "not an interface name"));
    }
    let auth = match &v.password {
        Some(p) if p.len() > 8 => {
            return Err(invalid(
                "password",
                "VRRP passwords are at most 8 characters",
            ))
        }
        Some(p) => format!(
            "    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}\n"
        ),
        None => String::new(),
    };
    let cfg = format!(
        "\
vrrp_script chk_haproxy {{
    script \"/bin/sh -c 'kill -0 $(pidof haproxy)'\"
    interval 2
}}

vrrp_instance harmony {{
    state BACKUP
    interface {iface}
    virtual_router_id {id}
    priority {prio}
{auth}    virtual_ipaddress {{
        {vip}
    }}
    track_script {{
        chk_haproxy
    }}
}}
",
        iface = v.interface,
        id = v.router_id,
        prio = v.priority,
        vip = v.virtual_ip
    );
    Ok(Rendered::default().file("keepalived.conf", cfg))
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
        let out = std::process::Command::new("/usr/sbin/haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
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
            "{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, password: secret}",
        ))
        .unwrap();
        let cfg = &r.files[0].1;
        assert!(cfg.contains("virtual_router_id 51"), "{cfg}");
        assert!(cfg.contains("        192.0.2.10\n"), "{cfg}");
        assert!(cfg.contains("auth_pass secret"), "{cfg}");
        let e = render_keepalived(&yaml("{interface: eth0, virtual_ip: nope, router_id: 1}"))
            .unwrap_err();
        assert_eq!(e.field, "virtual_ip");
    }
}
