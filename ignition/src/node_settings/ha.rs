//! `harmony.ha`: how this node reaches the Kubernetes API when one API server is lost.
//! Two independent answers, either or both:
//!
//! - `vip` (control-plane nodes): keepalived holds a virtual IP and haproxy on it balances
//!   to the API servers — kubeadm's HA pattern, as static pods.
//! - `local_proxy` (any node): `harmony-agent api-proxy` on 127.0.0.1 balances to the API
//!   servers, and kubelet talks to it — no VIP, no L2 adjacency needed.
//!
//! The API servers are listed once, as `IP:port`: addresses rather than names because the
//! static agent cannot use NSS, and haproxy would resolve a name only once at start.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::k8s_syntax::dns_subdomain;
use super::{Role, SettingsProblem};

pub const DEFAULT_VIP_PORT: u16 = 8443;
pub const DEFAULT_VRRP_PRIORITY: u8 = 100;
/// Not 6443: on a control-plane node the local kube-apiserver holds that port.
pub const DEFAULT_LOCAL_PROXY_PORT: u16 = 6444;
/// A SAN every kubeadm API server certificate carries.
pub const DEFAULT_TLS_SERVER_NAME: &str = "kubernetes";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaSettings {
    /// Every kube-apiserver, `IP:port` (`10.0.0.11:6443`, `[fd00::11]:6443`).
    pub backends: Vec<SocketAddr>,
    #[serde(default)]
    pub vip: Option<VipSettings>,
    #[serde(default)]
    pub local_proxy: Option<LocalProxySettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipSettings {
    pub address: IpAddr,
    /// The interface VRRP runs on and the VIP is added to, e.g. `eth0`.
    pub interface: String,
    /// Same on every control-plane node of this cluster, unique in the subnet (1..=255).
    pub virtual_router_id: u8,
    /// 1..=254; the highest live node holds the VIP.
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default)]
    pub state: VrrpState,
    /// haproxy's frontend; must differ from the API servers' port (same host).
    #[serde(default = "default_vip_port")]
    pub port: u16,
    /// VRRP authentication, off by default (see `crate::keepalived` for the policy).
    #[serde(default)]
    pub authentication: VrrpAuthentication,
}

/// `pass`: VRRP `PASS` with the node's secret `keepalived-password`, which the same
/// config writes to /etc/harmony/secrets/keepalived-password (0600).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VrrpAuthentication {
    #[default]
    None,
    Pass,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VrrpState {
    Master,
    #[default]
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalProxySettings {
    /// The proxy listens on 127.0.0.1:port; kubelet's kubeconfig points there.
    #[serde(default = "default_local_proxy_port")]
    pub port: u16,
    /// The name kubelet checks the API server's certificate against, since 127.0.0.1 is
    /// not one of its SANs.
    #[serde(default = "default_tls_server_name")]
    pub tls_server_name: String,
}

impl Default for LocalProxySettings {
    fn default() -> Self {
        LocalProxySettings {
            port: DEFAULT_LOCAL_PROXY_PORT,
            tls_server_name: DEFAULT_TLS_SERVER_NAME.to_string(),
        }
    }
}

fn default_priority() -> u8 {
    DEFAULT_VRRP_PRIORITY
}
fn default_vip_port() -> u16 {
    DEFAULT_VIP_PORT
}
fn default_local_proxy_port() -> u16 {
    DEFAULT_LOCAL_PROXY_PORT
}
fn default_tls_server_name() -> String {
    DEFAULT_TLS_SERVER_NAME.to_string()
}

/// Linux interface names: 1..=15 bytes, no '/', ':' or whitespace, not `.` or `..`.
fn interface_name(name: &str) -> Option<String> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    (!ok).then(|| {
        format!("{name:?} is not a network interface name (1-15 characters, no '/', ':' or spaces)")
    })
}

fn unusable(ip: IpAddr) -> Option<&'static str> {
    if ip.is_unspecified() {
        Some("is the unspecified address")
    } else if ip.is_multicast() {
        Some("is a multicast address")
    } else {
        None
    }
}

pub(super) fn problems(ha: &HaSettings, role: Role, out: &mut Vec<SettingsProblem>) {
    let mut add = |path: String, problem: String| out.push(SettingsProblem { path, problem });
    if ha.backends.is_empty() {
        add(
            "ha.backends".into(),
            "at least one API server (IP:port) is required".into(),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, b) in ha.backends.iter().enumerate() {
        let path = format!("ha.backends[{i}]");
        if let Some(why) = unusable(b.ip()) {
            add(path, format!("{b} {why}"));
        } else if b.port() == 0 {
            add(path, format!("{b}: port 0 is not a port"));
        } else if !seen.insert(*b) {
            add(path, format!("{b} is listed twice"));
        }
    }
    let api_ports: BTreeSet<u16> = ha.backends.iter().map(|b| b.port()).collect();
    if ha.vip.is_none() && ha.local_proxy.is_none() {
        add(
            "ha".into(),
            "gives neither vip (keepalived + haproxy on control-plane nodes) nor local_proxy \
             (a load balancer on 127.0.0.1 on any node): nothing to do"
                .into(),
        );
    }
    if let Some(v) = &ha.vip {
        if role != Role::ControlPlane {
            add(
                "ha.vip".into(),
                "keepalived and haproxy run on control-plane nodes only; this node's role is \
                 worker (use ha.local_proxy)"
                    .into(),
            );
        }
        if let Some(why) = unusable(v.address).or(v.address.is_loopback().then_some("is loopback"))
        {
            add("ha.vip.address".into(), format!("{} {why}", v.address));
        } else if ha.backends.iter().any(|b| b.ip() == v.address) {
            add(
                "ha.vip.address".into(),
                format!(
                    "{} is also an API server's address: the VIP must be an address no \
                     node owns",
                    v.address
                ),
            );
        }
        if let Some(why) = interface_name(&v.interface) {
            add("ha.vip.interface".into(), why);
        }
        if v.virtual_router_id == 0 {
            add(
                "ha.vip.virtual_router_id".into(),
                "must be 1..=255".to_string(),
            );
        }
        // 255 is reserved for the router that owns the address (RFC 5798 5.2.4).
        if !(1..=254).contains(&v.priority) {
            add(
                "ha.vip.priority".into(),
                format!("{} is not 1..=254", v.priority),
            );
        }
        if v.port == 0 {
            add("ha.vip.port".into(), "port 0 is not a port".into());
        } else if api_ports.contains(&v.port) {
            add(
                "ha.vip.port".into(),
                format!(
                    "{} is the API servers' port: haproxy runs beside kube-apiserver on this \
                     node and needs a port of its own (default {DEFAULT_VIP_PORT})",
                    v.port
                ),
            );
        }
    }
    if let Some(l) = &ha.local_proxy {
        if l.port == 0 {
            add("ha.local_proxy.port".into(), "port 0 is not a port".into());
        } else if role == Role::ControlPlane && api_ports.contains(&l.port) {
            add(
                "ha.local_proxy.port".into(),
                format!(
                    "{} is the API servers' port, which kube-apiserver holds on this \
                     control-plane node (default {DEFAULT_LOCAL_PROXY_PORT})",
                    l.port
                ),
            );
        } else if ha.vip.as_ref().is_some_and(|v| v.port == l.port) {
            add(
                "ha.local_proxy.port".into(),
                format!("{} is also ha.vip.port", l.port),
            );
        }
        if let Some(why) = dns_subdomain(&l.tls_server_name) {
            add("ha.local_proxy.tls_server_name".into(), why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_settings::NodeSettings;

    const HEAD: &str = "cluster:\n  api_endpoints: [\"https://10.0.0.10:8443\"]\n  \
        bootstrap_token: abcdef.0123456789abcdef\n  ca_cert_hashes: \
        [\"sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\"]\n";

    /// A control-plane document with every `ha` field; tests change one thing in it.
    const FULL: &str = "role: control-plane
ha:
  backends: [10.0.0.11:6443, 10.0.0.12:6443, \"[fd00::13]:6443\"]
  vip:
    address: 10.0.0.10
    interface: eth0
    virtual_router_id: 51
    priority: 101
    state: master
    port: 8443
  local_proxy:
    port: 6444
    tls_server_name: kubernetes
";

    fn parse(doc: &str) -> Result<NodeSettings, String> {
        NodeSettings::from_yaml_str(&format!("{HEAD}{doc}")).map_err(|e| e.to_string())
    }

    fn error_with(from: &str, to: &str) -> String {
        assert!(
            FULL.contains(from),
            "test bug: {from:?} not in the document"
        );
        parse(&FULL.replacen(from, to, 1)).expect_err(&format!("{from:?} -> {to:?} was accepted"))
    }

    fn assert_error(from: &str, to: &str, expected: &str) {
        let err = error_with(from, to);
        assert!(
            err.contains(expected),
            "{from:?} -> {to:?}:\n  got {err}\n  want {expected}"
        );
    }

    #[test]
    fn full_section_parses() {
        let ha = parse(FULL).unwrap().ha.unwrap();
        assert_eq!(ha.backends.len(), 3);
        assert_eq!(ha.backends[2].to_string(), "[fd00::13]:6443");
        let vip = ha.vip.unwrap();
        assert_eq!(vip.address.to_string(), "10.0.0.10");
        assert_eq!((vip.virtual_router_id, vip.priority), (51, 101));
        assert_eq!(vip.state, VrrpState::Master);
        assert_eq!(ha.local_proxy.unwrap(), LocalProxySettings::default());
    }

    #[test]
    fn defaults_and_absence() {
        assert_eq!(parse("role: worker\n").unwrap().ha, None);
        let s = parse(
            "role: control-plane\nha:\n  backends: [10.0.0.11:6443]\n  vip: \
             {address: 10.0.0.10, interface: eth0, virtual_router_id: 7}\n",
        )
        .unwrap();
        let vip = s.ha.unwrap().vip.unwrap();
        assert_eq!(vip.priority, DEFAULT_VRRP_PRIORITY);
        assert_eq!(vip.state, VrrpState::Backup);
        assert_eq!(vip.port, DEFAULT_VIP_PORT);
        let s =
            parse("role: worker\nha:\n  backends: [10.0.0.11:6443]\n  local_proxy: {}\n").unwrap();
        assert_eq!(
            s.ha.unwrap().local_proxy.unwrap(),
            LocalProxySettings {
                port: 6444,
                tls_server_name: "kubernetes".into()
            }
        );
    }

    #[test]
    fn shape_errors_name_their_path() {
        assert_error(
            "10.0.0.12:6443",
            "api.example.com:6443",
            "harmony.ha.backends[1]: invalid socket address",
        );
        assert_error(
            "10.0.0.12:6443",
            "10.0.0.12",
            "harmony.ha.backends[1]: invalid socket address",
        );
        assert_error(
            "virtual_router_id: 51",
            "virtual_router_id: 256",
            "harmony.ha.vip.virtual_router_id",
        );
        assert_error(
            "state: master",
            "state: MASTER",
            "harmony.ha.vip.state: unknown variant `MASTER`",
        );
        assert_error(
            "port: 6444",
            "prot: 6444",
            "harmony.ha.local_proxy.prot: unknown field `prot`",
        );
        assert_error(
            "address: 10.0.0.10",
            "address: vip.example.com",
            "harmony.ha.vip.address",
        );
    }

    #[test]
    fn rules() {
        assert_error(
            "[10.0.0.11:6443, 10.0.0.12:6443, \"[fd00::13]:6443\"]",
            "[]",
            "harmony.ha.backends: at least one",
        );
        assert_error(
            "10.0.0.12:6443",
            "10.0.0.11:6443",
            "harmony.ha.backends[1]: 10.0.0.11:6443 is listed twice",
        );
        assert_error(
            "10.0.0.12:6443",
            "0.0.0.0:6443",
            "harmony.ha.backends[1]: 0.0.0.0:6443 is the unspecified address",
        );
        assert_error(
            "10.0.0.12:6443",
            "10.0.0.12:0",
            "harmony.ha.backends[1]: 10.0.0.12:0: port 0",
        );
        assert_error(
            "role: control-plane",
            "role: worker",
            "harmony.ha.vip: keepalived and haproxy run on control-plane nodes only",
        );
        assert_error(
            "address: 10.0.0.10",
            "address: 10.0.0.11",
            "harmony.ha.vip.address: 10.0.0.11 is also an API server's address",
        );
        assert_error(
            "address: 10.0.0.10",
            "address: 127.0.0.1",
            "harmony.ha.vip.address: 127.0.0.1 is loopback",
        );
        assert_error(
            "address: 10.0.0.10",
            "address: 224.0.0.18",
            "is a multicast address",
        );
        assert_error(
            "interface: eth0",
            "interface: eth0:1",
            "harmony.ha.vip.interface: \"eth0:1\" is not a network interface name",
        );
        assert_error(
            "virtual_router_id: 51",
            "virtual_router_id: 0",
            "harmony.ha.vip.virtual_router_id: must be 1..=255",
        );
        assert_error(
            "priority: 101",
            "priority: 255",
            "harmony.ha.vip.priority: 255 is not 1..=254",
        );
        assert_error(
            "priority: 101",
            "priority: 0",
            "harmony.ha.vip.priority: 0 is not 1..=254",
        );
        assert_error(
            "port: 8443",
            "port: 6443",
            "harmony.ha.vip.port: 6443 is the API servers' port",
        );
        assert_error("port: 8443", "port: 0", "harmony.ha.vip.port: port 0");
        assert_error(
            "port: 6444",
            "port: 6443",
            "harmony.ha.local_proxy.port: 6443 is the API servers' port",
        );
        assert_error(
            "port: 6444",
            "port: 8443",
            "harmony.ha.local_proxy.port: 8443 is also ha.vip.port",
        );
        assert_error(
            "port: 6444",
            "port: 0",
            "harmony.ha.local_proxy.port: port 0",
        );
        assert_error(
            "tls_server_name: kubernetes",
            "tls_server_name: Kubernetes",
            "harmony.ha.local_proxy.tls_server_name: \"Kubernetes\" is not a DNS subdomain",
        );
        let nothing = parse("role: worker\nha:\n  backends: [10.0.0.11:6443]\n").unwrap_err();
        assert!(
            nothing.contains("harmony.ha: gives neither vip"),
            "{nothing}"
        );
        // A worker may use the API servers' port locally: no kube-apiserver runs there.
        parse("role: worker\nha:\n  backends: [10.0.0.11:6443]\n  local_proxy: {port: 6443}\n")
            .unwrap();
    }

    #[test]
    fn every_ha_problem_at_once() {
        let doc = FULL
            .replacen("priority: 101", "priority: 255", 1)
            .replacen("interface: eth0", "interface: \"\"", 1)
            .replacen("port: 6444", "port: 8443", 1);
        let err = parse(&doc).unwrap_err();
        for want in ["ha.vip.priority", "ha.vip.interface", "ha.local_proxy.port"] {
            assert!(err.contains(want), "{want} missing from {err}");
        }
    }

    #[test]
    fn round_trips_through_serialisation() {
        let s = parse(FULL).unwrap();
        let yaml = serde_yaml_ng::to_string(&s).unwrap();
        assert!(
            yaml.contains("ha:") && !yaml.contains("bootstrap_token"),
            "{yaml}"
        );
        // Without the section, the serialised settings do not grow an `ha: null`.
        assert!(!serde_yaml_ng::to_string(&parse("role: worker\n").unwrap())
            .unwrap()
            .contains("\nha:"));
    }

    #[test]
    fn interface_names() {
        for ok in ["eth0", "ens192", "bond0.100", "br-k8s", "a23456789012345"] {
            assert_eq!(interface_name(ok), None, "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "eth0:1",
            "has space",
            "a234567890123456",
        ] {
            assert!(interface_name(bad).is_some(), "{bad:?}");
        }
    }
}
