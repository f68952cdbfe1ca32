//! The node role: what turns the generic image into a cluster node, from the `harmony:`
//! node settings. Planned in full before anything changes: files (firewall ruleset,
//! kubelet and kube-proxy configs, module and sysctl lists, log settings) become plan
//! actions like any other file, and what must touch the running system (tightening
//! /var/log, module loads, sysctl writes, loading the ruleset) becomes [`LiveStep`]s
//! that first boot runs after the files are applied. One file per concern.

pub mod firewall;
pub mod ipvs;
pub mod kernel_modules;
pub mod kube_proxy;
pub mod kubelet;
pub mod live;
pub mod log_permissions;
pub mod sysctl;

use std::collections::BTreeMap;
use std::fmt;

use ignition::node_settings::NodeSettings;
use serde::Serialize;

use crate::plan::NodeFile;
use crate::target_root::TargetRoot;

/// A change made at first boot after the files are written, in this order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum LiveStep {
    /// Take group-write and other bits from everything under `dir` (files ≤ 0640,
    /// directories ≤ 0750). Runs on any root, not only the live one.
    TightenLogPermissions { dir: String },
    /// Load these modules (and their dependencies) into the running kernel.
    LoadModules {
        purpose: String,
        modules: Vec<String>,
    },
    /// Write these values to /proc/sys.
    SetSysctls { values: Vec<(String, String)> },
    /// Check the ruleset with `nft -c -f`, then load it with `nft -f`.
    LoadFirewall { path: String },
}

impl LiveStep {
    /// Short name for the report.
    pub fn name(&self) -> String {
        match self {
            LiveStep::TightenLogPermissions { dir } => format!("tighten-log-permissions {dir}"),
            LiveStep::LoadModules { purpose, .. } => format!("load-modules {purpose}"),
            LiveStep::SetSysctls { .. } => "set-sysctls".to_string(),
            LiveStep::LoadFirewall { path } => format!("load-firewall {path}"),
        }
    }
}

/// One line for `harmony-agent plan`, in the column layout of the plan's actions.
impl fmt::Display for LiveStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveStep::TightenLogPermissions { dir } => write!(
                f,
                "live      tighten {dir}: files at most {:04o}, directories at most {:04o}",
                log_permissions::FILE_MODE_MAX,
                log_permissions::DIR_MODE_MAX
            ),
            LiveStep::LoadModules { purpose, modules } => write!(
                f,
                "live      load kernel modules for {purpose}: {} (and dependencies)",
                modules.join(", ")
            ),
            LiveStep::SetSysctls { values } => {
                let v: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "live      set sysctls {}", v.join(" "))
            }
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
    pub files: Vec<NodeFile>,
    pub live: Vec<LiveStep>,
}

/// Labels the platform hands over (VMware `guestinfo.harmony.labels`), and where from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformLabels {
    pub origin: String,
    pub labels: BTreeMap<String, String>,
}

/// Everything the settings ask of this node, without touching anything. The error
/// names the setting in conflict.
pub fn plan(
    settings: &NodeSettings,
    platform: &PlatformLabels,
    root: &TargetRoot,
) -> Result<NodeRole, String> {
    let mut role = NodeRole::default();
    let mut file = |path: &str, contents: String, mode: u32| {
        role.files.push(NodeFile::new(path, contents, mode))
    };

    // Pods per node, labels and taints.
    let driver = kubelet::CgroupDriver::for_root(root);
    file(
        kubelet::CONFIG_PATH,
        kubelet::config_yaml(settings, driver),
        0o644,
    );
    let labels = kubelet::labels(settings, &platform.labels, &platform.origin)?;
    file(
        kubelet::FLAGS_PATH,
        kubelet::flags_file(&labels, &settings.node.taints),
        0o644,
    );

    // Forwarding, bridge netfilter, conntrack; kube-proxy's mode.
    let node_modules: Vec<String> = sysctl::MODULES.map(String::from).to_vec();
    file(
        sysctl::MODULES_LOAD_PATH,
        format!(
            "# Rendered by harmony-agent: what the node's sysctls need.\n{}\n",
            node_modules.join("\n")
        ),
        0o644,
    );
    file(sysctl::PATH, sysctl::file(), 0o644);
    let proxy = settings
        .proxy_mode()
        .map(|mode| (mode, kube_proxy::modules(settings, mode)));
    if let Some((mode, modules)) = &proxy {
        file(
            &kube_proxy::modules_load_path(*mode),
            kube_proxy::modules_load_file(*mode, modules),
            0o644,
        );
        file(
            kube_proxy::CONFIG_PATH,
            kube_proxy::config(settings, *mode),
            0o644,
        );
    }

    // Logs.
    role.files.extend(log_permissions::files(root));

    // The firewall: readable by root only (it is the node's policy, not a secret, but
    // nothing else needs it).
    role.files.push(NodeFile::new(
        firewall::PATH,
        firewall::render(settings),
        0o600,
    ));

    role.live.push(LiveStep::TightenLogPermissions {
        dir: log_permissions::LOG_DIR.to_string(),
    });
    role.live.push(LiveStep::LoadModules {
        purpose: "node".to_string(),
        modules: node_modules,
    });
    if let Some((mode, modules)) = proxy {
        role.live.push(LiveStep::LoadModules {
            purpose: mode.name().to_string(),
            modules,
        });
    }
    role.live.push(LiveStep::SetSysctls {
        values: sysctl::VALUES
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    });
    role.live.push(LiveStep::LoadFirewall {
        path: firewall::PATH.to_string(),
    });
    Ok(role)
}

#[cfg(test)]
mod tests;
