//! What kubelet needs to TLS-bootstrap into the cluster, as kubeadm leaves it: the
//! bootstrap kubeconfig (holds the token: 0600), the cluster CA, and kubelet's flags.
//! All are written in one batch by the agent's apply (temp files, one sync, renames),
//! and only after discovery has fully succeeded.

use std::collections::BTreeMap;

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
/// Alpine's kubelet service script both read from this file.
pub fn flags_env(labels: &BTreeMap<String, String>) -> Vec<u8> {
    let mut args = vec![
        format!("--bootstrap-kubeconfig={BOOTSTRAP_KUBECONFIG}"),
        format!("--kubeconfig={KUBELET_KUBECONFIG}"),
        format!("--config={KUBELET_CONFIG}"),
    ];
    if !labels.is_empty() {
        // Keys and values are label syntax (validated with the settings): no quoting needed.
        let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.push(format!("--node-labels={}", pairs.join(",")));
    }
    format!("KUBELET_KUBEADM_ARGS=\"{}\"\n", args.join(" ")).into_bytes()
}

/// The actions that write the files: missing parent directories (0755), then the files.
pub fn actions(
    root: &TargetRoot,
    cluster: &DiscoveredCluster,
    token: &str,
    labels: &BTreeMap<String, String>,
) -> std::io::Result<Vec<Action>> {
    let files = [
        (
            BOOTSTRAP_KUBECONFIG,
            kubeconfig::bootstrap_kubelet_conf(cluster, token),
            0o600,
        ),
        (CA_CERT, cluster.ca_pem.clone(), 0o644),
        (FLAGS_ENV, flags_env(labels), 0o644),
    ];
    let mut actions = Vec::new();
    let mut planned_dirs = Vec::new();
    for (path, contents, mode) in files {
        let mut ancestors: Vec<&str> = Vec::new();
        let mut cur = path;
        while let Some(i) = cur.rfind('/') {
            cur = &cur[..i];
            if cur.is_empty() {
                break;
            }
            ancestors.push(cur);
        }
        for dir in ancestors.into_iter().rev() {
            if planned_dirs.contains(&dir) || root.node(dir)?.is_some() {
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
            contents,
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
    fn flags_name_the_bootstrap_files_and_labels() {
        let labels = BTreeMap::from([
            ("topology.kubernetes.io/zone".to_string(), "a".to_string()),
            ("tier".to_string(), "web".to_string()),
        ]);
        assert_eq!(
            String::from_utf8(flags_env(&labels)).unwrap(),
            "KUBELET_KUBEADM_ARGS=\"--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \
             --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
             --node-labels=tier=web,topology.kubernetes.io/zone=a\"\n"
        );
        assert!(!String::from_utf8(flags_env(&BTreeMap::new()))
            .unwrap()
            .contains("node-labels"));
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
        let actions = actions(
            &TargetRoot::new(dir.path()),
            &cluster,
            "abcdef.0123456789abcdef",
            &BTreeMap::new(),
        )
        .unwrap();
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
