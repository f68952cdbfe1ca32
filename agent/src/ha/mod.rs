//! The files that keep the Kubernetes API reachable when one API server is lost, rendered
//! from `harmony.ha` (see `ignition::node_settings::HaSettings`):
//!
//! - [`vip_files`]: keepalived + haproxy as static pods on control-plane nodes, kubeadm's
//!   HA pattern (kubernetes/kubeadm docs/ha-considerations.md, "Option 2").
//! - [`local_proxy_files`]: the service that runs `harmony-agent api-proxy` on
//!   127.0.0.1, for any node; [`kubeconfig::via_local_proxy`] points a kubeconfig at it.
//!
//! Pure: settings in, files out. The plan decides whether and how they are written.

mod haproxy;
mod keepalived;
pub mod kubeconfig;
mod proxy_service;

use ignition::node_settings::NodeSettings;

pub use proxy_service::{detect_init, InitSystem};

/// One file to write: where, with which mode, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFile {
    pub path: String,
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// One symlink to make (a service's enablement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLink {
    pub path: String,
    pub target: String,
}

/// Where kubelet reads static pod manifests (kubeadm's staticPodPath).
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

/// keepalived.conf, its check script, haproxy.cfg and the two static pod manifests; empty
/// when the settings ask for no VIP.
pub fn vip_files(settings: &NodeSettings) -> Vec<NodeFile> {
    let Some(ha) = &settings.ha else {
        return Vec::new();
    };
    let Some(vip) = &ha.vip else {
        return Vec::new();
    };
    let mut files = keepalived::files(vip);
    files.extend(haproxy::files(vip, &ha.backends));
    files
}

/// The api-proxy service for `init` (with its enablement links); empty when the settings
/// ask for no local proxy.
pub fn local_proxy_files(
    settings: &NodeSettings,
    init: InitSystem,
) -> (Vec<NodeFile>, Vec<NodeLink>) {
    match settings.ha.as_ref().and_then(|ha| {
        ha.local_proxy
            .as_ref()
            .map(|lp| (lp, ha.backends.as_slice()))
    }) {
        Some((lp, backends)) => proxy_service::files(lp.port, backends, init),
        None => (Vec::new(), Vec::new()),
    }
}

/// `host` for a URL: IPv6 addresses in brackets.
fn url_host(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
pub(crate) mod test_settings {
    use ignition::node_settings::NodeSettings;

    /// A control-plane node with a VIP and a local proxy over three API servers.
    pub fn control_plane() -> NodeSettings {
        NodeSettings::from_yaml_str(
            "cluster:
  api_endpoints: [\"https://10.0.0.10:8443\"]
  bootstrap_token: abcdef.0123456789abcdef
  ca_cert_hashes: [\"sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\"]
role: control-plane
ha:
  backends: [10.0.0.11:6443, 10.0.0.12:6443, 10.0.0.13:6443]
  vip: {address: 10.0.0.10, interface: eth0, virtual_router_id: 51, priority: 101, state: master}
  local_proxy: {port: 6444}
",
        )
        .unwrap()
    }
}
