//! Control planes through kubeadm (`harmony.cluster.control_plane`): the first node runs
//! `kubeadm init --config FILE --upload-certs` from a rendered InitConfiguration, the
//! others `kubeadm join --config FILE` from a JoinConfiguration with a `controlPlane`
//! section. Both carry the cluster's bootstrap token and certificate key: the file is
//! 0600, and kubeadm's output is kept only with those values replaced. Workers keep the
//! agent's own discovery ([`super::discovery`]).

use std::path::PathBuf;
use std::process::Command;

use ignition::node_settings::{ClusterSettings, ControlPlaneSettings, NodeSettings};
use serde::{Deserialize, Serialize};

use crate::target_root::TargetRoot;

/// Where packages put kubeadm.
pub const BINARY_PATHS: [&str; 2] = ["/usr/bin/kubeadm", "/usr/local/bin/kubeadm"];
/// The rendered kubeadm configuration (holds the token and the certificate key: 0600).
pub const CONFIG_PATH: &str = "/etc/kubernetes/harmony-kubeadm.yaml";
pub const API_VERSION: &str = "kubeadm.k8s.io/v1beta4";
/// How much of kubeadm's output the report keeps.
const OUTPUT_TAIL_BYTES: usize = 4096;
const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubeadmAction {
    /// `kubeadm init`: the cluster's first control plane.
    Init,
    /// `kubeadm join` with `controlPlane`: another control plane.
    JoinControlPlane,
}

impl KubeadmAction {
    pub fn of(cp: &ControlPlaneSettings) -> KubeadmAction {
        if cp.init {
            KubeadmAction::Init
        } else {
            KubeadmAction::JoinControlPlane
        }
    }

    /// kubeadm's arguments (its real flags).
    pub fn args(self) -> Vec<String> {
        match self {
            KubeadmAction::Init => vec![
                "init".into(),
                "--config".into(),
                CONFIG_PATH.into(),
                "--upload-certs".into(),
            ],
            KubeadmAction::JoinControlPlane => {
                vec!["join".into(), "--config".into(), CONFIG_PATH.into()]
            }
        }
    }
}

/// The kubeadm binary in the root, or what is missing.
pub fn binary(root: &TargetRoot) -> Result<&'static str, String> {
    BINARY_PATHS
        .iter()
        .copied()
        .find(|p| matches!(root.node(p), Ok(Some(_))))
        .ok_or_else(|| {
            format!(
                "harmony.cluster.control_plane: kubeadm not installed (looked at {}): a \
                 control plane is made by kubeadm; use an image that has it (the CentOS or \
                 Alpine Kubernetes recipes), or leave control_plane out to join kubelet only",
                BINARY_PATHS.join(", ")
            )
        })
}

/// `https://host:port` → `host:port`, as kubeadm's apiServerEndpoint takes it.
fn host_port(url: &str) -> &str {
    let rest = url.strip_prefix("https://").unwrap_or(url);
    rest.strip_suffix('/').unwrap_or(rest)
}

/// The kubeadm configuration for this node: InitConfiguration + ClusterConfiguration (+
/// the node's KubeletConfiguration and KubeProxyConfiguration, which kubeadm init makes
/// the cluster's), or a JoinConfiguration.
pub fn render(
    settings: &NodeSettings,
    cluster: &ClusterSettings,
    cp: &ControlPlaneSettings,
    kubelet_config: &str,
    kube_proxy_config: Option<&str>,
) -> String {
    let token = cluster.bootstrap_token.expose();
    let key = cp.certificate_key.expose();
    match KubeadmAction::of(cp) {
        KubeadmAction::Init => {
            let service_subnet = settings
                .firewall
                .service_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let mut y = format!(
                "# Rendered by harmony-agent from harmony.cluster (kubeadm init).\n\
                 apiVersion: {API_VERSION}\n\
                 kind: InitConfiguration\n\
                 bootstrapTokens:\n\
                 - token: \"{token}\"\n  \
                   description: \"harmony.cluster.bootstrap_token\"\n  \
                   usages: [signing, authentication]\n  \
                   groups: [\"system:bootstrappers:kubeadm:default-node-token\"]\n\
                 certificateKey: \"{key}\"\n\
                 ---\n\
                 apiVersion: {API_VERSION}\n\
                 kind: ClusterConfiguration\n\
                 controlPlaneEndpoint: \"{}\"\n\
                 networking:\n  serviceSubnet: \"{service_subnet}\"\n",
                cp.endpoint
            );
            for doc in std::iter::once(kubelet_config).chain(kube_proxy_config) {
                y.push_str("---\n");
                y.push_str(doc);
            }
            y
        }
        KubeadmAction::JoinControlPlane => {
            let endpoint = cluster.api_endpoints.first().map_or("", |e| host_port(e));
            let pins: Vec<String> = cluster
                .ca_cert_hashes
                .iter()
                .map(|h| format!("\"{h}\""))
                .collect();
            format!(
                "# Rendered by harmony-agent from harmony.cluster (kubeadm join, control plane).\n\
                 apiVersion: {API_VERSION}\n\
                 kind: JoinConfiguration\n\
                 discovery:\n  \
                   bootstrapToken:\n    \
                     apiServerEndpoint: \"{endpoint}\"\n    \
                     token: \"{token}\"\n    \
                     caCertHashes: [{}]\n\
                 controlPlane:\n  \
                   certificateKey: \"{key}\"\n",
                pins.join(", ")
            )
        }
    }
}

/// firstboot.json's `join` section for a control plane. No secret in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeadmReport {
    pub kubeadm: KubeadmAction,
    pub command: String,
    pub config: String,
    pub control_plane_endpoint: String,
    /// kubeadm's exit code; absent when it was not run (not the live root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub outcome: String,
    /// The end of kubeadm's output, the token and certificate key replaced.
    #[serde(default)]
    pub output_tail: String,
}

/// Run kubeadm (its binary and the config in `root`); Err with kubeadm's redacted output
/// when it fails.
pub fn run(
    root: &TargetRoot,
    binary_in_root: &str,
    action: KubeadmAction,
    secrets: &[&str],
) -> Result<(i32, String), String> {
    let host = |p: &str| -> Result<PathBuf, String> {
        root.host_path(p)
            .map_err(|e| format!("{p} in the root: {e}"))
    };
    let mut args = action.args();
    // The config as the running kubeadm sees it (the same path on the live root).
    args[2] = host(CONFIG_PATH)?.display().to_string();
    let out = Command::new(host(binary_in_root)?)
        .args(&args)
        .output()
        .map_err(|e| format!("{binary_in_root}: {e}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let tail = tail(&redact(&text, secrets));
    let code = out.status.code().unwrap_or(-1);
    if out.status.success() {
        Ok((code, tail))
    } else {
        Err(format!(
            "kubeadm {} failed ({}): {tail}",
            args.join(" "),
            out.status
        ))
    }
}

/// `text` with every secret replaced (kubeadm init prints the join command, token and
/// certificate key included).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_string(), |t, s| t.replace(s, REDACTED))
}

fn tail(text: &str) -> String {
    let start = text.len().saturating_sub(OUTPUT_TAIL_BYTES);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}
