//! Harmony's node settings: what makes a host a node (role, labels, taints, kubelet
//! limits, firewall, kube-proxy mode) and, with `cluster:`, what it needs to join its
//! cluster (API endpoints, bootstrap token, CA pins). Without `cluster:` the node is
//! configured and the join is skipped (the first control plane before its cluster
//! exists, a host that runs no kubelet).
//!
//! One schema, two carriers: the value of a `harmony:` key in a cloud-config, and the
//! file `/etc/harmony/node.yaml` written by an Ignition config (the same mapping, at the
//! top level of the file). Parsing is strict (unknown keys are errors) and every error
//! names its path from `harmony`, e.g. `harmony.kubelet.max_pods: 300 exceeds …`.
//! Applying the settings is not this module's business.

mod cidr;
mod ha;
mod k8s_syntax;
mod validate;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Contents, NodeConfig};

pub use cidr::Cidr;
pub use ha::{HaSettings, LocalProxySettings, VipSettings, VrrpAuthentication, VrrpState};

/// Where an Ignition config puts the settings.
pub const NODE_YAML_PATH: &str = "/etc/harmony/node.yaml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// Absent: configure the node, join nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSettings>,
    pub role: Role,
    #[serde(default)]
    pub node: NodeMeta,
    #[serde(default)]
    pub kubelet: KubeletSettings,
    #[serde(default)]
    pub firewall: FirewallSettings,
    /// IPVS tuning (`scheduler`, `strict_arp`); `enabled: true` is the older way to say
    /// `kube_proxy.mode: ipvs`.
    #[serde(default)]
    pub ipvs: IpvsSettings,
    /// The kube-proxy mode this node is prepared for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy: Option<KubeProxySettings>,
    /// How the node reaches the API when one API server is lost (see `ha.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha: Option<HaSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// `https://host:port`, at least one.
    pub api_endpoints: Vec<String>,
    /// Never serialised: the report and logs show the settings without it.
    #[serde(skip_serializing)]
    pub bootstrap_token: BootstrapToken,
    /// `sha256:<64 hex>` pins of the cluster CA's public key, at least one.
    pub ca_cert_hashes: Vec<String>,
    /// How long the join keeps asking unreachable endpoints for cluster-info (kubeadm's
    /// `discovery.timeout`), 1..=3600 s; default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_timeout_seconds: Option<u64>,
    /// A control plane made by kubeadm (role control-plane): `init: true` on the first
    /// node, absent or false on the others, which join it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane: Option<ControlPlaneSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlPlaneSettings {
    /// This node runs `kubeadm init`: the cluster's first control plane.
    #[serde(default)]
    pub init: bool,
    /// kubeadm's controlPlaneEndpoint: the VIP or load balancer, `host:port`.
    pub endpoint: String,
    /// kubeadm's certificate key: 64 hex digits (an AES-256 key) that encrypts the
    /// control-plane certificates init uploads and the others download. Never serialised.
    #[serde(skip_serializing)]
    pub certificate_key: CertificateKey,
}

/// `kubeadm certs certificate-key`'s output. A secret, like [`BootstrapToken`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct CertificateKey(String);

impl CertificateKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CertificateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertificateKey(<redacted>)")
    }
}

/// A kubeadm bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`). A secret: its Debug hides the
/// value and it has no Display; read it with [`BootstrapToken::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct BootstrapToken(String);

impl BootstrapToken {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public half, `[a-z0-9]{6}`, safe to log (it names the token's Secret).
    pub fn id(&self) -> &str {
        self.0.split_once('.').map_or("", |(id, _)| id)
    }
}

impl fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    ControlPlane,
    Worker,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeMeta {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `key=value:Effect` or `key:Effect`, as `kubectl taint` writes them.
    #[serde(default)]
    pub taints: Vec<String>,
}

pub const DEFAULT_MAX_PODS: u32 = 110;
pub const MAX_MAX_PODS: u32 = 250;
/// Kubelet's own default is no limit, which lets one pod's fork bomb take every PID of
/// the node; 4096 leaves any sane workload room.
pub const DEFAULT_POD_PIDS_LIMIT: i64 = 4096;
pub const MIN_POD_PIDS_LIMIT: i64 = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletSettings {
    #[serde(default = "default_max_pods")]
    pub max_pods: u32,
    #[serde(default)]
    pub pod_cidr: Option<Cidr>,
    /// Most processes one pod may run (kubelet's podPidsLimit); -1: no limit.
    #[serde(default = "default_pod_pids_limit")]
    pub pod_pids_limit: i64,
}

fn default_max_pods() -> u32 {
    DEFAULT_MAX_PODS
}

fn default_pod_pids_limit() -> i64 {
    DEFAULT_POD_PIDS_LIMIT
}

impl Default for KubeletSettings {
    fn default() -> Self {
        KubeletSettings {
            max_pods: DEFAULT_MAX_PODS,
            pod_cidr: None,
            pod_pids_limit: DEFAULT_POD_PIDS_LIMIT,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallSettings {
    /// Where SSH may come from; empty: from nowhere.
    #[serde(default)]
    pub ssh_sources: Vec<Cidr>,
    #[serde(default)]
    pub cni: Cni,
    #[serde(default)]
    pub rules: Vec<FirewallRule>,
    /// The cluster's Service range(s). Used in IPVS mode, where every ClusterIP is a local
    /// address of the node and pod→service traffic passes the input chain. Default:
    /// kubeadm's 10.96.0.0/12.
    #[serde(default = "default_service_cidrs")]
    pub service_cidrs: Vec<Cidr>,
}

fn default_service_cidrs() -> Vec<Cidr> {
    vec![Cidr::parse(DEFAULT_SERVICE_CIDR).expect("the default is a valid CIDR")]
}

/// kubeadm's default `networking.serviceSubnet`.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";

impl Default for FirewallSettings {
    fn default() -> Self {
        FirewallSettings {
            ssh_sources: Vec::new(),
            cni: Cni::default(),
            rules: Vec::new(),
            service_cidrs: default_service_cidrs(),
        }
    }
}

/// The pod network's encapsulation, which decides the node-to-node ports to open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    Vxlan,
    Bgp,
    Ipip,
    #[default]
    None,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallRule {
    pub ports: PortRange,
    pub protocol: Protocol,
    /// Required: "from anywhere" is written as `0.0.0.0/0` / `::/0`, on purpose.
    pub sources: Vec<Cidr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// `"80"`, `80` or `"30000-32767"`; checked (1..=65535, low ≤ high) by validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PortRange {
    Number(u64),
    Text(String),
}

/// By hand rather than `untagged`, whose error ("did not match any variant") says nothing.
impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port (80) or a range (\"30000-32767\")")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<PortRange, E> {
                Ok(PortRange::Number(n))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<PortRange, E> {
                Ok(PortRange::Text(s.to_string()))
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl PortRange {
    /// The inclusive range, or why it is not one.
    pub fn bounds(&self) -> Result<(u16, u16), String> {
        let port = |s: &str| -> Result<u16, String> {
            match s.trim().parse::<u64>() {
                Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
                Ok(n) => Err(format!("port {n} is out of range (1..=65535)")),
                Err(_) => Err(format!(
                    "{s:?} is not a port or range (\"80\" or \"30000-32767\")"
                )),
            }
        };
        match self {
            PortRange::Number(n) => port(&n.to_string()).map(|p| (p, p)),
            PortRange::Text(t) => match t.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (port(lo)?, port(hi)?);
                    if lo > hi {
                        return Err(format!("range {t:?} runs backwards"));
                    }
                    Ok((lo, hi))
                }
                None => port(t).map(|p| (p, p)),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpvsSettings {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub scheduler: IpvsScheduler,
    #[serde(default)]
    pub strict_arp: bool,
}

impl Default for IpvsSettings {
    fn default() -> Self {
        IpvsSettings {
            enabled: false,
            scheduler: IpvsScheduler::Rr,
            strict_arp: false,
        }
    }
}

/// The schedulers kube-proxy's config validation accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvsScheduler {
    #[default]
    Rr,
    Wrr,
    Lc,
    Wlc,
    Lblc,
    Lblcr,
    Sh,
    Dh,
    Sed,
    Nq,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeProxySettings {
    pub mode: ProxyMode,
}

/// kube-proxy's `mode`. nftables is GA since Kubernetes 1.33 and the way forward; IPVS is
/// deprecated upstream (KEP-5495); iptables is kube-proxy's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    Ipvs,
    Nftables,
    Iptables,
}

impl ProxyMode {
    pub fn name(self) -> &'static str {
        match self {
            ProxyMode::Ipvs => "ipvs",
            ProxyMode::Nftables => "nftables",
            ProxyMode::Iptables => "iptables",
        }
    }
}

/// Every problem found in one settings document, each with its path from `harmony`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct SettingsError {
    pub problems: Vec<SettingsProblem>,
}

/// `path` is relative to the settings mapping (`kubelet.max_pods`); Display adds `harmony.`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("harmony{}{path}: {problem}", if path.is_empty() || path.starts_with('[') { "" } else { "." })]
pub struct SettingsProblem {
    pub path: String,
    pub problem: String,
}

impl SettingsError {
    fn one(path: impl Into<String>, problem: impl Into<String>) -> SettingsError {
        SettingsError {
            problems: vec![SettingsProblem {
                path: path.into(),
                problem: problem.into(),
            }],
        }
    }
}

impl NodeSettings {
    /// The value of a cloud-config's `harmony:` key.
    pub fn from_yaml_value(value: &serde_yaml_ng::Value) -> Result<NodeSettings, SettingsError> {
        let settings: NodeSettings =
            serde_path_to_error::deserialize(value.clone()).map_err(shape_error)?;
        settings.validated()
    }

    /// A YAML document holding the settings mapping (the contents of node.yaml).
    pub fn from_yaml_str(text: &str) -> Result<NodeSettings, SettingsError> {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| SettingsError::one("", format!("not valid YAML: {e}")))?;
        NodeSettings::from_yaml_value(&value)
    }

    /// The same mapping as JSON.
    pub fn from_json(text: &str) -> Result<NodeSettings, SettingsError> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| SettingsError::one("", format!("not valid JSON: {e}")))?;
        let settings: NodeSettings =
            serde_path_to_error::deserialize(value).map_err(shape_error)?;
        settings.validated()
    }

    /// The settings an Ignition config writes to [`NODE_YAML_PATH`]: `Ok(None)` when it
    /// writes no such file (or gives it no contents). Appended fragments count, in order.
    pub fn from_node_config(cfg: &NodeConfig) -> Result<Option<NodeSettings>, SettingsError> {
        let Some(file) = cfg.files.iter().find(|f| f.path == NODE_YAML_PATH) else {
            return Ok(None);
        };
        if file.contents.is_none() && file.append.is_empty() {
            return Ok(None);
        }
        let whole = Contents::concat(file.contents.iter().chain(&file.append))
            .map_err(|e| SettingsError::one("", format!("{NODE_YAML_PATH}: {e}")))?;
        // Read whole into memory, so held to a document's cap.
        let cap = crate::limits::MAX_DOCUMENT_BYTES;
        if whole.len() > cap {
            return Err(SettingsError::one(
                "",
                format!("{NODE_YAML_PATH} is larger than {cap} bytes"),
            ));
        }
        let whole = whole
            .to_vec()
            .map_err(|e| SettingsError::one("", format!("{NODE_YAML_PATH}: {e}")))?;
        let text = String::from_utf8(whole)
            .map_err(|_| SettingsError::one("", format!("{NODE_YAML_PATH} is not UTF-8 text")))?;
        NodeSettings::from_yaml_str(&text).map(Some)
    }

    /// The kube-proxy mode to prepare: `kube_proxy.mode`, else IPVS when `ipvs.enabled`
    /// (validation refuses the two disagreeing), else none: nothing is written for
    /// kube-proxy, whose cluster-wide ConfigMap decides.
    pub fn proxy_mode(&self) -> Option<ProxyMode> {
        match (&self.kube_proxy, self.ipvs.enabled) {
            (Some(k), _) => Some(k.mode),
            (None, true) => Some(ProxyMode::Ipvs),
            (None, false) => None,
        }
    }

    fn validated(self) -> Result<NodeSettings, SettingsError> {
        let problems = validate::problems(&self);
        if problems.is_empty() {
            Ok(self)
        } else {
            Err(SettingsError { problems })
        }
    }
}

/// Node labels written as kubelet's `--node-labels` takes them, `key=value,key2=value2`
/// (blanks around items ignored, an empty text is no labels), checked by the rules of
/// `harmony.node.labels`. For labels a platform hands over (VMware guestinfo); the error
/// says what is wrong with which item, the caller names where the text came from.
pub fn parse_label_list(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not key=value"))?;
        if let Some(why) = k8s_syntax::qualified_name(key)
            .or_else(|| k8s_syntax::kubelet_may_set(key))
            .or_else(|| k8s_syntax::label_value(value))
        {
            return Err(format!("label {key:?}: {why}"));
        }
        if labels.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("label {key:?} is given twice"));
        }
    }
    Ok(labels)
}

fn shape_error<E: fmt::Display>(e: serde_path_to_error::Error<E>) -> SettingsError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    SettingsError::one(path, e.into_inner().to_string())
}

#[cfg(test)]
mod tests;
