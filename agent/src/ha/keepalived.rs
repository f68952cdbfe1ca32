//! keepalived: holds the VIP on the highest-priority control-plane node whose API answers
//! through haproxy. kubeadm's configuration, rendered by the renderer the builder's
//! catalog uses too (`ignition::keepalived`, with its authentication policy): VRRP `PASS`
//! only when `authentication: pass` asks for it, with the node's secret; no `weight` on
//! the check.

use ignition::keepalived::{render, Conf, TrackScript, VrrpPassword};
use ignition::node_settings::VipSettings;
use serde_json::json;

use super::{url_host, NodeFile, MANIFESTS_DIR};

pub const CONF_PATH: &str = "/etc/keepalived/keepalived.conf";
pub const CHECK_PATH: &str = "/etc/keepalived/check_apiserver.sh";
/// The `auth_pass` line made from the secret: a secret file itself (0600, its digest
/// withheld from the report), mounted into the pod at the same path.
pub const AUTH_PATH: &str = "/etc/harmony/secrets/keepalived-auth.conf";
/// The image kubeadm's guide uses, and the path it reads its configuration from.
pub const IMAGE: &str = "osixia/keepalived:2.0.20";
const CONF_IN_CONTAINER: &str = "/usr/local/etc/keepalived/keepalived.conf";

/// `password` is the node's `keepalived-password` when `authentication: pass`.
pub fn files(vip: &VipSettings, password: Option<&VrrpPassword>) -> Vec<NodeFile> {
    let auth = password.map(|_| AUTH_PATH);
    let mut files = vec![
        NodeFile {
            path: CONF_PATH.to_string(),
            mode: 0o644,
            contents: conf(vip, CHECK_PATH, auth).into_bytes(),
        },
        NodeFile {
            path: CHECK_PATH.to_string(),
            mode: 0o755,
            contents: check_script(vip).into_bytes(),
        },
        NodeFile {
            path: format!("{MANIFESTS_DIR}/keepalived.yaml"),
            mode: 0o600,
            contents: manifest(auth.is_some()).into_bytes(),
        },
    ];
    if let Some(p) = password {
        files.push(NodeFile {
            path: AUTH_PATH.to_string(),
            mode: ignition::secrets::SECRET_MODE,
            contents: p.fragment().into_bytes(),
        });
    }
    files
}

/// `check` is where the check script lives: [`CHECK_PATH`] on a node; a test points it at
/// a script it wrote, since keepalived disables a track script it cannot find. `auth` is
/// where the password fragment is, when there is one.
fn conf(vip: &VipSettings, check: &str, auth: Option<&str>) -> String {
    render(&Conf {
        rendered_from: "harmony-agent from harmony.ha.vip (kubeadm's HA pattern)",
        router_id: "harmony_api_vip",
        instance: "API_VIP",
        state: vip.state,
        interface: &vip.interface,
        virtual_router_id: vip.virtual_router_id,
        priority: vip.priority,
        address: vip.address,
        check: TrackScript {
            name: "check_apiserver",
            script: check,
            interval: 3,
            fall: 10,
            rise: 2,
        },
        auth_fragment: auth,
    })
}

/// The API through this node's haproxy, and through the VIP when this node holds it.
fn check_script(vip: &VipSettings) -> String {
    let host = url_host(vip.address);
    let port = vip.port;
    format!(
        "#!/bin/sh
# Rendered by harmony-agent from harmony.ha.vip. keepalived runs this every 3 s; 10
# failures in a row put this node in FAULT, and it gives the VIP up.
fail() {{
    echo \"*** $*\" >&2
    exit 1
}}
get() {{
    curl --silent --fail --max-time 2 --insecure -o /dev/null \"$1\" || fail \"GET $1\"
}}
get https://localhost:{port}/healthz
if ip addr | grep -q \" {address}/\"; then
    get https://{host}:{port}/healthz
fi
",
        address = vip.address,
    )
}

fn manifest(with_auth: bool) -> String {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "keepalived", "namespace": "kube-system"},
        "spec": {
            "hostNetwork": true,
            "priorityClassName": "system-node-critical",
            "containers": [{
                "name": "keepalived",
                "image": IMAGE,
                "securityContext": {
                    "capabilities": {"add": ["NET_ADMIN", "NET_BROADCAST", "NET_RAW"]}
                },
                "volumeMounts": [
                    {"name": "config", "mountPath": CONF_IN_CONTAINER, "readOnly": true},
                    {"name": "check", "mountPath": CHECK_PATH, "readOnly": true}
                ]
            }],
            "volumes": [
                {"name": "config", "hostPath": {"path": CONF_PATH, "type": "File"}},
                {"name": "check", "hostPath": {"path": CHECK_PATH, "type": "File"}}
            ]
        }
    });
    if with_auth {
        let spec = &mut pod["spec"];
        if let Some(mounts) = spec["containers"][0]["volumeMounts"].as_array_mut() {
            mounts.push(json!({"name": "auth", "mountPath": AUTH_PATH, "readOnly": true}));
        }
        if let Some(volumes) = spec["volumes"].as_array_mut() {
            volumes.push(json!({"name": "auth", "hostPath": {"path": AUTH_PATH, "type": "File"}}));
        }
    }
    format!(
        "# Rendered by harmony-agent from harmony.ha.vip: a static pod kubelet runs.\n{}",
        serde_yaml_ng::to_string(&pod).expect("a JSON value serialises as YAML")
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::process::Command;

    use super::*;
    use crate::ha::test_settings::control_plane;

    /// keepalived.conf as `block path → [statement]`: blocks are `name args {`, closed
    /// by `}`; statements are the other non-comment lines. Fails on unbalanced braces.
    fn blocks(conf: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut stack: Vec<String> = Vec::new();
        for line in conf.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('!') || line.starts_with('#') {
                continue;
            }
            if let Some(head) = line.strip_suffix('{') {
                stack.push(head.trim().to_string());
                out.entry(stack.join(" / ")).or_default();
            } else if line == "}" {
                stack.pop().expect("a '}' closes no block");
            } else {
                assert!(!stack.is_empty(), "statement outside a block: {line}");
                out.entry(stack.join(" / "))
                    .or_default()
                    .push(line.to_string());
            }
        }
        assert!(stack.is_empty(), "unclosed blocks: {stack:?}");
        out
    }

    #[test]
    fn conf_holds_the_vip_and_tracks_the_check() {
        let vip = control_plane().ha.unwrap().vip.unwrap();
        let text = conf(&vip, CHECK_PATH, None);
        let b = blocks(&text);
        assert_eq!(
            b["vrrp_script check_apiserver"],
            [
                format!("script \"{CHECK_PATH}\""),
                "interval 3".into(),
                "fall 10".into(),
                "rise 2".into()
            ]
        );
        let inst = &b["vrrp_instance API_VIP"];
        for want in [
            "state MASTER",
            "interface eth0",
            "virtual_router_id 51",
            "priority 101",
        ] {
            assert!(inst.iter().any(|s| s == want), "{want} missing: {inst:?}");
        }
        assert_eq!(
            b["vrrp_instance API_VIP / virtual_ipaddress"],
            ["10.0.0.10"]
        );
        assert_eq!(
            b["vrrp_instance API_VIP / track_script"],
            ["check_apiserver"]
        );
        assert!(!text.contains("auth_pass") && !text.contains("weight"));
        let mut backup = vip.clone();
        backup.state = ignition::node_settings::VrrpState::Backup;
        assert!(
            blocks(&conf(&backup, CHECK_PATH, None))["vrrp_instance API_VIP"]
                .contains(&"state BACKUP".into())
        );
    }

    /// The real keepalived checks the file, with the check script beside it (root-owned,
    /// 0755, in a directory only root can write: what `enable_script_security` demands).
    /// Any warning it prints about the file fails the test: keepalived still exits 0 when
    /// it disables a track script it cannot run, which would leave the VIP unguarded.
    #[test]
    fn keepalived_accepts_the_conf() {
        use std::os::unix::fs::PermissionsExt;
        let vip = control_plane().ha.unwrap().vip.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let check = dir.path().join("check_apiserver.sh");
        std::fs::write(&check, check_script(&vip)).unwrap();
        std::fs::set_permissions(&check, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("keepalived.conf");
        std::fs::write(&path, conf(&vip, check.to_str().unwrap(), None)).unwrap();
        let Some(test) = harmony_test_support::keepalived::config_test(&path) else {
            return;
        };
        assert!(test.accepted, "keepalived -t -f: {}", test.said);
        assert!(
            !test.said.contains("Disabling") && !test.said.contains("WARNING"),
            "keepalived -t -f warned: {}",
            test.said
        );
    }

    #[test]
    fn check_script_is_valid_sh_and_uses_the_haproxy_port() {
        let mut vip = control_plane().ha.unwrap().vip.unwrap();
        let script = check_script(&vip);
        assert!(script.contains("get https://localhost:8443/healthz"));
        assert!(script.contains("grep -q \" 10.0.0.10/\""));
        assert!(script.contains("get https://10.0.0.10:8443/healthz"));
        vip.address = "fd00::10".parse().unwrap();
        let v6 = check_script(&vip);
        assert!(v6.contains("get https://[fd00::10]:8443/healthz"), "{v6}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check.sh");
        std::fs::write(&path, &script).unwrap();
        let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "sh -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn manifest_mounts_what_was_rendered() {
        let pod: serde_json::Value = serde_yaml_ng::from_str(&manifest(false)).unwrap();
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["namespace"], "kube-system");
        assert_eq!(pod["spec"]["hostNetwork"], true);
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["image"], IMAGE);
        let caps = c["securityContext"]["capabilities"]["add"].to_string();
        assert!(
            caps.contains("NET_ADMIN") && caps.contains("NET_RAW"),
            "{caps}"
        );
        let host_paths: BTreeMap<String, String> = pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["hostPath"]["path"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let mounts: BTreeMap<String, String> = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    host_paths[m["name"].as_str().unwrap()].clone(),
                    m["mountPath"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(mounts[CONF_PATH], CONF_IN_CONTAINER);
        assert_eq!(mounts[CHECK_PATH], CHECK_PATH);
        let paths: Vec<_> = files(&control_plane().ha.unwrap().vip.unwrap(), None)
            .into_iter()
            .map(|f| (f.path, f.mode))
            .collect();
        assert_eq!(
            paths,
            [
                (CONF_PATH.to_string(), 0o644),
                (CHECK_PATH.to_string(), 0o755),
                (
                    "/etc/kubernetes/manifests/keepalived.yaml".to_string(),
                    0o600
                )
            ]
        );
    }
}
