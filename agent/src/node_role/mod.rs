//! The node role: what turns the generic image into a cluster node, from the `harmony:`
//! node settings. Planned in full before anything changes: files (firewall ruleset,
//! kubelet and kube-proxy configs, module and sysctl lists, log settings) become plan
//! actions like any other file, and what must touch the running kernel (module loads,
//! sysctl writes, loading the ruleset, tightening /var/log) becomes [`LiveStep`]s that
//! first boot runs after the files are applied. One file per concern.

pub mod firewall;
pub mod live;

use std::fmt;

use ignition::node_settings::NodeSettings;
use serde::Serialize;

/// A file the role writes (root-owned; replaces what is there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFile {
    pub path: String,
    pub contents: Vec<u8>,
    pub mode: u32,
}

/// A change to the running system, made at first boot after the files are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum LiveStep {
    /// Check the ruleset with `nft -c -f`, then load it with `nft -f`.
    LoadFirewall { path: String },
}

impl LiveStep {
    /// Short name for the report.
    pub fn name(&self) -> String {
        match self {
            LiveStep::LoadFirewall { path } => format!("load-firewall {path}"),
        }
    }
}

/// One line for `harmony-agent plan`, in the column layout of the plan's actions.
impl fmt::Display for LiveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveStep::LoadFirewall { path } => write!(
                f,
                "live      load firewall {path} (nft -c -f, then nft -f: replaces table {} {} only)",
                firewall::FAMILY,
                firewall::TABLE
            ),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeRole {
    pub files: Vec<RoleFile>,
    pub live: Vec<LiveStep>,
}

/// Everything the settings ask of this node, without touching anything.
pub fn plan(settings: &NodeSettings) -> NodeRole {
    let mut role = NodeRole::default();
    role.files.push(RoleFile {
        path: firewall::PATH.to_string(),
        contents: firewall::render(settings).into_bytes(),
        mode: 0o600,
    });
    role.live.push(LiveStep::LoadFirewall {
        path: firewall::PATH.to_string(),
    });
    role
}
