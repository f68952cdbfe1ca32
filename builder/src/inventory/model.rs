//! The inventory as written (`harmony inventory render INVENTORY.yaml`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryDoc {
    pub site: SiteDoc,
    pub subnet: SubnetDoc,
    pub cluster: ClusterDoc,
    pub nodes: Vec<NodeDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteDoc {
    /// Vaquero site id (`sites/ID/`), a DNS label.
    pub id: String,
    pub name: Option<String>,
    /// The Vaquero agent serving this site, as nodes reach it.
    pub agent: Option<AgentDoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDoc {
    pub addr: String,
    #[serde(default = "default_agent_port")]
    pub port: u16,
    #[serde(default = "default_scheme")]
    pub scheme: String,
}

fn default_agent_port() -> u16 {
    24602
}

fn default_scheme() -> String {
    "http".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetDoc {
    pub id: String,
    pub cidr: String,
    pub gateway: Option<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub ntp: Vec<String>,
    pub domain_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDoc {
    pub api_endpoints: Vec<String>,
    pub bootstrap_token: String,
    pub ca_cert_hashes: Vec<String>,
    /// The cluster's pod network; each node gets one `/node_pod_prefix` of it.
    pub pod_cidr: String,
    /// Default 24 (room for 2 × 110 pods).
    pub node_pod_prefix: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeDoc {
    pub name: String,
    /// Required for metal nodes.
    pub mac: Option<String>,
    pub ip: String,
    pub role: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default = "default_platform")]
    pub platform: String,
}

fn default_platform() -> String {
    "metal".into()
}
