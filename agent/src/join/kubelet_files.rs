//! What kubelet needs to TLS-bootstrap into the cluster, as kubeadm leaves it: the
//! bootstrap kubeconfig (holds the token: 0600), the cluster CA, and kubelet's flags.
//! All are written in one batch by the agent's apply (temp files, one sync, renames),
//! and only after discovery has fully succeeded.

use ignition::node_settings::NodeSettings;

use super::kubeconfig::{self, DiscoveredCluster};
use crate::plan::Action;
use crate::target_root::TargetRoot;

pub const BOOTSTRAP_KUBECONFIG: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
pub const CA_CERT: &str = "/etc/kubernetes/pki/ca.crt";
pub const FLAGS_ENV: &str = "/var/lib/kubelet/kubeadm-flags.env";
/// Written by kubelet itself once its client certificate is issued.
pub const KUBELET_KUBECONFIG: &str = "/etc/kubernetes/kubelet.conf";
/// The KubeletConfiguration (maxPods, …): written by the node role, not here.
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";

/// The paths written, in order.
pub const PATHS: [&str; 3] = [BOOTSTRAP_KUBECONFIG, CA_CERT, FLAGS_ENV];

/// `KUBELET_KUBEADM_ARGS`, the variable kubeadm's kubelet drop-in (Debian, RPM) and
/// Alpine's kubelet service script both read from this file. Labels and taints are the
/// node role's (`KUBELET_EXTRA_ARGS` in /etc/default/kubelet), not repeated here.
pub fn flags_env() -> Vec<u8> {
    format!(
        "KUBELET_KUBEADM_ARGS=\"--bootstrap-kubeconfig={BOOTSTRAP_KUBECONFIG} \
         --kubeconfig={KUBELET_KUBECONFIG} --config={KUBELET_CONFIG}\"\n"
    )
    .into_bytes()
}

/// The bootstrap kubeconfig; with `harmony.ha.local_proxy`, pointed at the node-local
/// API proxy (kubelet never fails over by itself) under the proxy's tls-server-name.
pub fn bootstrap_kubeconfig(
    cluster: &DiscoveredCluster,
    settings: &NodeSettings,
) -> Result<Vec<u8>, String> {
    let token = settings
        .cluster
        .as_ref()
        .ok_or("harmony.cluster is not given: no bootstrap token")?
        .bootstrap_token
        .expose();
    let conf = kubeconfig::bootstrap_kubelet_conf(cluster, token);
    match settings.ha.as_ref().and_then(|ha| ha.local_proxy.as_ref()) {
        None => Ok(conf),
        Some(lp) => {
            let text = String::from_utf8(conf).map_err(|e| e.to_string())?;
            crate::ha::kubeconfig::via_local_proxy(&text, lp.port, &lp.tls_server_name)
                .map(String::into_bytes)
                .map_err(|e| format!("{BOOTSTRAP_KUBECONFIG}: {e}"))
        }
    }
}

/// The actions that write the files: missing parent directories (0755), then the files.
pub fn actions(
    root: &TargetRoot,
    cluster: &DiscoveredCluster,
    settings: &NodeSettings,
) -> Result<Vec<Action>, String> {
    let files = [
        (
            BOOTSTRAP_KUBECONFIG,
            bootstrap_kubeconfig(cluster, settings)?,
            0o600,
        ),
        (CA_CERT, cluster.ca_pem.clone(), 0o644),
        (FLAGS_ENV, flags_env(), 0o644),
    ];
    let mut actions = Vec::new();
    let mut planned_dirs = Vec::new();
    for (path, contents, mode) in files {
        for dir in crate::plan::ancestors(path) {
            let exists = root
                .node(dir)
                .map_err(|e| format!("{dir} in the target root: {e}"))?
                .is_some();
            if planned_dirs.contains(&dir) || exists {
                continue;
            }
            planned_dirs.push(dir);
            actions.push(Action::CreateDir {
                path: dir.to_string(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
        }
        actions.push(Action::WriteFile {
            path: path.to_string(),
            contents: contents.into(),
            mode,
            uid: 0,
            gid: 0,
        });
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_name_the_bootstrap_files() {
        assert_eq!(
            String::from_utf8(flags_env()).unwrap(),
            "KUBELET_KUBEADM_ARGS=\"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
             --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml\"\n"
        );
    }

    fn settings(extra: &str) -> NodeSettings {
        NodeSettings::from_yaml_str(&format!(
            "cluster:\n  api_endpoints: [\"https://10.0.0.10:6443\"]\n  \
             bootstrap_token: abcdef.0123456789abcdef\n  ca_cert_hashes: [\"sha256:{}\"]\n\
             role: worker\n{extra}",
            "ab".repeat(32)
        ))
        .unwrap()
    }

    #[test]
    fn with_a_local_proxy_kubelet_talks_to_127_0_0_1() {
        use base64::Engine;
        let pem = include_str!("testdata/ca-ec.crt");
        let cluster = kubeconfig::parse_cluster(&format!(
            "clusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://10.0.0.100:6443\n",
            base64::engine::general_purpose::STANDARD.encode(pem)
        ))
        .unwrap();
        let direct = bootstrap_kubeconfig(&cluster, &settings("")).unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&direct).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://10.0.0.100:6443"
        );
        let proxied = bootstrap_kubeconfig(
            &cluster,
            &settings("ha:\n  backends: [\"10.0.0.11:6443\", \"10.0.0.12:6443\"]\n  local_proxy: {port: 6444}\n"),
        )
        .unwrap();
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&proxied).unwrap();
        let c = &v["clusters"][0]["cluster"];
        assert_eq!(c["server"], "https://127.0.0.1:6444");
        assert_eq!(c["tls-server-name"], "kubernetes");
        assert_eq!(
            c["certificate-authority-data"],
            base64::engine::general_purpose::STANDARD
                .encode(pem)
                .as_str()
        );
        assert_eq!(v["users"][0]["user"]["token"], "abcdef.0123456789abcdef");
    }

    #[test]
    fn only_missing_directories_are_created() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/kubernetes")).unwrap();
        std::fs::create_dir_all(dir.path().join("var/lib")).unwrap();
        let cluster = DiscoveredCluster {
            server: "https://a:6443".into(),
            ca_pem: b"pem".to_vec(),
            ca_certs: vec![],
        };
        let actions = actions(&TargetRoot::new(dir.path()), &cluster, &settings("")).unwrap();
        let lines: Vec<String> = actions
            .iter()
            .map(|a| match a {
                Action::CreateDir { path, mode, .. } => format!("dir {path} {mode:o}"),
                Action::WriteFile { path, mode, .. } => format!("file {path} {mode:o}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            lines,
            [
                "file /etc/kubernetes/bootstrap-kubelet.conf 600",
                "dir /etc/kubernetes/pki 755",
                "file /etc/kubernetes/pki/ca.crt 644",
                "dir /var/lib/kubelet 755",
                "file /var/lib/kubelet/kubeadm-flags.env 644",
            ]
        );
    }
}
