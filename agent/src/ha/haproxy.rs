//! haproxy on the VIP port: TCP to the API servers (they terminate TLS), checked with
//! `GET /healthz` over TLS. kubeadm's configuration, except the timeouts: in TCP mode a
//! 20 s client/server timeout cuts idle watches and `kubectl exec` sessions, so they are
//! hours here, and haproxy logs to stdout because a container has no /dev/log.

use std::net::SocketAddr;

use ignition::node_settings::VipSettings;
use serde_json::json;

use super::{NodeFile, MANIFESTS_DIR};

pub const CFG_PATH: &str = "/etc/haproxy/haproxy.cfg";
/// The official image (an LTS branch) and where it reads its configuration.
pub const IMAGE: &str = "haproxy:2.8";
const CFG_IN_CONTAINER: &str = "/usr/local/etc/haproxy/haproxy.cfg";

pub fn files(vip: &VipSettings, backends: &[SocketAddr]) -> Vec<NodeFile> {
    vec![
        NodeFile {
            path: CFG_PATH.to_string(),
            mode: 0o644,
            contents: cfg(vip.port, backends).into_bytes(),
        },
        NodeFile {
            path: format!("{MANIFESTS_DIR}/haproxy.yaml"),
            mode: 0o600,
            contents: manifest(vip.port).into_bytes(),
        },
    ]
}

pub(crate) fn cfg(port: u16, backends: &[SocketAddr]) -> String {
    let mut out = format!(
        "# Rendered by harmony-agent from harmony.ha (kubeadm's HA pattern).
global
    log stdout format raw local0
    maxconn 4000

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    retries 1
    timeout connect 5s
    timeout client 4h
    timeout server 4h
    timeout check 5s

frontend apiserver
    bind *:{port}
    mode tcp
    default_backend apiserver

backend apiserver
    mode tcp
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server check check-ssl verify none inter 2s fall 3 rise 2
"
    );
    for (i, b) in backends.iter().enumerate() {
        out.push_str(&format!("    server apiserver-{} {b}\n", i + 1));
    }
    out
}

fn manifest(port: u16) -> String {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "haproxy", "namespace": "kube-system"},
        "spec": {
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "haproxy",
                "image": IMAGE,
                "livenessProbe": {
                    "failureThreshold": 8,
                    "httpGet": {
                        "host": "localhost",
                        "path": "/healthz",
                        "port": port,
                        "scheme": "HTTPS"
                    }
                },
                "volumeMounts": [
                    {"name": "haproxyconf", "mountPath": CFG_IN_CONTAINER, "readOnly": true}
                ]
            }],
            "volumes": [
                {"name": "haproxyconf", "hostPath": {"path": CFG_PATH, "type": "File"}}
            ]
        }
    });
    format!(
        "# Rendered by harmony-agent from harmony.ha.vip: a static pod kubelet runs.\n{}",
        serde_yaml_ng::to_string(&pod).expect("a JSON value serialises as YAML")
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::ha::test_settings::control_plane;

    fn rendered() -> (String, String) {
        let s = control_plane();
        let ha = s.ha.unwrap();
        let f = files(ha.vip.as_ref().unwrap(), &ha.backends);
        (
            String::from_utf8(f[0].contents.clone()).unwrap(),
            String::from_utf8(f[1].contents.clone()).unwrap(),
        )
    }

    /// The real haproxy parses and checks the rendered file (`-c` binds nothing).
    #[test]
    fn haproxy_accepts_the_cfg() {
        let (cfg, _) = rendered();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, &cfg).unwrap();
        let out = match Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                harmony_test_support::skip("tool haproxy not installed: haproxy -c -f");
                return;
            }
            r => r.unwrap(),
        };
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "haproxy -c rejected:\n{cfg}\n{log}");
        assert!(!log.contains("WARNING"), "haproxy -c warned:\n{log}");
        // And a file it must reject, so the check above can fail.
        std::fs::write(&path, cfg.replace("balance roundrobin", "balance sideways")).unwrap();
        let out = Command::new("haproxy")
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }

    #[test]
    fn cfg_balances_to_every_api_server_with_a_tls_healthz_check() {
        let (cfg, _) = rendered();
        assert!(cfg.contains("    bind *:8443\n"));
        assert!(cfg.contains("    option httpchk GET /healthz\n"));
        assert!(cfg.contains("    http-check expect status 200\n"));
        assert!(cfg.contains("check check-ssl verify none"));
        let servers: Vec<&str> = cfg
            .lines()
            .filter(|l| l.trim_start().starts_with("server "))
            .map(str::trim)
            .collect();
        assert_eq!(
            servers,
            [
                "server apiserver-1 10.0.0.11:6443",
                "server apiserver-2 10.0.0.12:6443",
                "server apiserver-3 10.0.0.13:6443"
            ]
        );
        let v6 = super::cfg(8443, &["[fd00::11]:6443".parse().unwrap()]);
        assert!(v6.contains("server apiserver-1 [fd00::11]:6443"), "{v6}");
    }

    #[test]
    fn manifest_probes_the_frontend_and_mounts_the_cfg() {
        let (_, manifest) = rendered();
        let pod: serde_json::Value = serde_yaml_ng::from_str(&manifest).unwrap();
        assert_eq!(pod["metadata"]["name"], "haproxy");
        assert_eq!(pod["spec"]["hostNetwork"], true);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["livenessProbe"]["httpGet"]["port"], 8443);
        assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
        assert_eq!(c["volumeMounts"][0]["mountPath"], CFG_IN_CONTAINER);
        assert_eq!(c["volumeMounts"][0]["readOnly"], true);
        assert_eq!(pod["spec"]["volumes"][0]["hostPath"]["path"], CFG_PATH);
        assert_eq!(
            pod["spec"]["volumes"][0]["name"],
            c["volumeMounts"][0]["name"]
        );
    }
}
