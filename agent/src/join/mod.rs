//! Joining the cluster: kubeadm's bootstrap-token discovery done natively (no kubeadm
//! binary on the node), then kubelet's bootstrap files, then kubelet started. kubelet
//! itself does the rest: it asks for its client certificate with the bootstrap token
//! (TLS bootstrapping) and registers the node.
//!
//! Order, and why: discover fully (both fetches, JWS, CA pin) → write every file in one
//! batch → start kubelet. Nothing is written unless discovery succeeded, so a node that
//! cannot join keeps no half-made kubelet configuration.

pub mod backoff;
mod ca_pin;
mod cluster_info;
pub mod dbus;
mod discovery;
mod jws;
pub mod kubeadm;
mod kubeconfig;
pub mod kubelet_files;
pub mod kubelet_start;
pub(crate) mod tls;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ignition::node_settings::NodeSettings;
use serde::{Deserialize, Serialize};

pub use backoff::Backoff;
pub use kubelet_start::{ServiceManager, StartOptions};

use crate::target_root::TargetRoot;

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "join: SECURITY: cluster-info from {endpoint} is not signed by bootstrap token \
         {token_id} (jws-kubeconfig-{token_id}: {problem}); refusing it and not asking \
         other endpoints"
    )]
    Signature {
        endpoint: String,
        token_id: String,
        problem: String,
    },
    #[error(
        "join: SECURITY: the CA in cluster-info from {endpoint} has public key pin(s) {}, \
         none of harmony.cluster.ca_cert_hashes; refusing it and not asking other endpoints",
        found.join(", ")
    )]
    CaPin {
        endpoint: String,
        found: Vec<String>,
    },
    #[error("join: SECURITY: {endpoint}: {problem}; not asking other endpoints")]
    Pinned { endpoint: String, problem: String },
    #[error("join: {endpoint} did not answer with a usable cluster-info: {problem}")]
    BadClusterInfo { endpoint: String, problem: String },
    #[error(
        "join: no API endpoint gave cluster-info in {rounds} round(s) over {waited:.1?}: {}",
        last.iter().map(|(e, why)| format!("{e}: {why}")).collect::<Vec<_>>().join("; ")
    )]
    Unreachable {
        rounds: u32,
        waited: Duration,
        last: Vec<(String, String)>,
    },
    #[error("join: harmony.cluster.bootstrap_token is not ID.SECRET")]
    Token,
    #[error("join: writing kubelet's bootstrap files: {0}")]
    Write(String),
    #[error("join: starting kubelet: {0}")]
    Start(String),
    #[error("join: harmony.cluster is not given: there is no cluster to join")]
    NoCluster,
    #[error("join: control plane: {0}")]
    Kubeadm(String),
}

impl JoinError {
    /// A security event: the answer was refused, not merely missing.
    pub fn is_security(&self) -> bool {
        matches!(
            self,
            JoinError::Signature { .. } | JoinError::CaPin { .. } | JoinError::Pinned { .. }
        )
    }
}

#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    pub backoff: Backoff,
    /// The root's /etc/hosts, read first for endpoint names; the resolv.conf beside it
    /// (the same /etc) is asked for the others. `None`: /etc/hosts only, no DNS.
    pub hosts_file: Option<PathBuf>,
    /// `None`: write the files but start nothing (a root that is not the running system).
    pub start: Option<StartOptions>,
}

impl JoinOptions {
    /// First boot's: the root's hosts file (and so its resolv.conf), the settings' discovery timeout; kubelet is
    /// started only on the live root.
    pub fn for_root(root: &Path, live: bool, settings: &NodeSettings) -> JoinOptions {
        let mut backoff = Backoff::default();
        if let Some(s) = settings
            .cluster
            .as_ref()
            .and_then(|c| c.discovery_timeout_seconds)
        {
            backoff.total = Duration::from_secs(s);
        }
        JoinOptions {
            backoff,
            hosts_file: Some(root.join("etc/hosts")),
            start: live.then(StartOptions::default),
        }
    }
}

/// firstboot.json's `join` section. No secrets: the token appears nowhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinReport {
    /// The endpoint whose cluster-info was used.
    pub endpoint: String,
    /// The API server cluster-info names (kubeadm's controlPlaneEndpoint).
    pub server: String,
    /// Where kubelet talks to: that server, or the node-local API proxy.
    pub kubelet_server: String,
    /// The entry of ca_cert_hashes the cluster CA matched.
    pub ca_pin: String,
    /// Rounds over the endpoints it took.
    pub rounds: u32,
    pub written: Vec<String>,
    pub service_manager: ServiceManager,
    pub kubelet: String,
    /// Why kubelet was not started though the join succeeded (it is not installed):
    /// also one of the report's warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The `join` section's words for node settings without `cluster:`.
pub const SKIPPED_NO_CLUSTER: &str = "skipped: no cluster settings";

/// firstboot.json's `join`: how the node joined, or why it did not try.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JoinSection {
    Joined(JoinReport),
    /// A control plane, through kubeadm.
    ControlPlane(kubeadm::KubeadmReport),
    /// [`SKIPPED_NO_CLUSTER`].
    Skipped(String),
}

/// What `harmony-agent plan` shows: the join, before any of it can be known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum JoinPlan {
    /// No `cluster:` in the settings: the node is configured, nothing is joined.
    Skipped { reason: String },
    /// The agent's own discovery, kubelet's bootstrap files, kubelet started.
    Discovery(DiscoveryPlan),
    /// A control plane: kubeadm init or join from the rendered config.
    Kubeadm(KubeadmPlan),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KubeadmPlan {
    pub kubeadm: kubeadm::KubeadmAction,
    pub binary: String,
    pub config: String,
    pub control_plane_endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoveryPlan {
    pub endpoints: Vec<String>,
    pub token_id: String,
    pub ca_cert_hashes: Vec<String>,
    pub writes: Vec<String>,
    pub service_manager: ServiceManager,
    /// `Err`: kubelet is not installed; the files are still written and this is warned.
    pub kubelet_installed: bool,
}

impl JoinPlan {
    /// `Err`: a control plane asked of an image without kubeadm.
    pub fn new(settings: &NodeSettings, root: &TargetRoot) -> Result<JoinPlan, String> {
        let Some(cluster) = &settings.cluster else {
            return Ok(JoinPlan::Skipped {
                reason: SKIPPED_NO_CLUSTER.to_string(),
            });
        };
        if let Some(cp) = &cluster.control_plane {
            return Ok(JoinPlan::Kubeadm(KubeadmPlan {
                kubeadm: kubeadm::KubeadmAction::of(cp),
                binary: kubeadm::binary(root)?.to_string(),
                config: kubeadm::CONFIG_PATH.to_string(),
                control_plane_endpoint: cp.endpoint.clone(),
            }));
        }
        let service_manager = ServiceManager::of(root);
        Ok(JoinPlan::Discovery(DiscoveryPlan {
            endpoints: cluster.api_endpoints.clone(),
            token_id: cluster.bootstrap_token.id().to_string(),
            ca_cert_hashes: cluster.ca_cert_hashes.clone(),
            writes: kubelet_files::PATHS.iter().map(|p| p.to_string()).collect(),
            service_manager,
            kubelet_installed: kubelet_start::installed(root, service_manager).is_ok(),
        }))
    }
}

impl fmt::Display for JoinPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinPlan::Skipped { reason } => write!(f, "join      {reason}"),
            JoinPlan::Discovery(d) => d.fmt(f),
            JoinPlan::Kubeadm(k) => write!(
                f,
                "join      control plane: write {} (0600) and run {} {} \
                 (controlPlaneEndpoint {}); kubeadm starts kubelet",
                k.config,
                k.binary,
                k.kubeadm.args().join(" "),
                k.control_plane_endpoint
            ),
        }
    }
}

impl fmt::Display for DiscoveryPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = match self.service_manager {
            _ if !self.kubelet_installed => {
                format!("warn `{}` (start nothing)", kubelet_start::NOT_INSTALLED)
            }
            ServiceManager::None => {
                "leave kubelet to the image's init (no systemd or OpenRC)".to_string()
            }
            m => format!("start kubelet ({})", m.name()),
        };
        write!(
            f,
            "join      discover cluster-info from {} with token {} and CA pin {}; \
             then write {} and {start}",
            self.endpoints.join(", "),
            self.token_id,
            self.ca_cert_hashes.join(" or "),
            self.writes.join(", "),
        )
    }
}

/// Discover, write kubelet's bootstrap files into `root`, start kubelet.
pub fn join(
    settings: &NodeSettings,
    root: &TargetRoot,
    opts: &JoinOptions,
) -> Result<JoinReport, JoinError> {
    join_with_clock(settings, root, opts, &crate::backoff::WallClock::start())
}

/// [`join`], with discovery's rounds paced by `clock` (tests: a `ManualClock`).
pub fn join_with_clock(
    settings: &NodeSettings,
    root: &TargetRoot,
    opts: &JoinOptions,
    clock: &dyn crate::backoff::Clock,
) -> Result<JoinReport, JoinError> {
    let cluster = settings.cluster.as_ref().ok_or(JoinError::NoCluster)?;
    let token = cluster.bootstrap_token.expose();
    let (token_id, token_secret) = token.split_once('.').ok_or(JoinError::Token)?;
    let found = discovery::discover(
        &discovery::Request {
            endpoints: &cluster.api_endpoints,
            token_id,
            token_secret,
            ca_pins: &cluster.ca_cert_hashes,
            backoff: &opts.backoff,
            hosts_file: opts.hosts_file.clone(),
            resolv_conf: opts
                .hosts_file
                .as_deref()
                .and_then(Path::parent)
                .map(|etc| etc.join("resolv.conf")),
        },
        clock,
    )?;
    let actions =
        kubelet_files::actions(root, &found.cluster, settings).map_err(JoinError::Write)?;
    let plan = crate::plan::Plan {
        actions,
        ..Default::default()
    };
    crate::apply::apply(&plan, root).map_err(|e| JoinError::Write(e.to_string()))?;
    let manager = ServiceManager::of(root);
    let (kubelet, warning) = match (kubelet_start::installed(root, manager), &opts.start) {
        (Err(missing), _) => {
            eprintln!("harmony-agent: join: warning: {missing}");
            (format!("not started: {missing}"), Some(missing))
        }
        (Ok(()), Some(start)) => (
            kubelet_start::start(manager, start).map_err(JoinError::Start)?,
            None,
        ),
        (Ok(()), None) => (
            format!(
                "not started: {} is not the running system",
                root.dir().display()
            ),
            None,
        ),
    };
    let kubelet_server = match settings.ha.as_ref().and_then(|ha| ha.local_proxy.as_ref()) {
        Some(lp) => format!("https://127.0.0.1:{}", lp.port),
        None => found.cluster.server.clone(),
    };
    Ok(JoinReport {
        kubelet_server,
        endpoint: found.endpoint,
        server: found.cluster.server,
        ca_pin: found.ca_pin,
        rounds: found.rounds,
        written: kubelet_files::PATHS.iter().map(|p| p.to_string()).collect(),
        service_manager: manager,
        kubelet,
        warning,
    })
}

/// A control plane through kubeadm: write the rendered config (0600) with the node's
/// other files, then run `kubeadm init` or `kubeadm join` on the live root.
pub fn control_plane(
    settings: &NodeSettings,
    root: &TargetRoot,
    opts: &JoinOptions,
) -> Result<kubeadm::KubeadmReport, JoinError> {
    let cluster = settings.cluster.as_ref().ok_or(JoinError::NoCluster)?;
    let cp = cluster
        .control_plane
        .as_ref()
        .ok_or_else(|| JoinError::Kubeadm("harmony.cluster.control_plane is not given".into()))?;
    let binary = kubeadm::binary(root).map_err(JoinError::Kubeadm)?;
    let action = kubeadm::KubeadmAction::of(cp);
    let kubelet_config = crate::node_role::kubelet::config_yaml(
        settings,
        crate::node_role::kubelet::CgroupDriver::for_root(root),
    );
    let kube_proxy_config = settings
        .proxy_mode()
        .map(|mode| crate::node_role::kube_proxy::config(settings, mode));
    let text = kubeadm::render(
        settings,
        cluster,
        cp,
        &kubelet_config,
        kube_proxy_config.as_deref(),
    );
    let mut actions = Vec::new();
    for dir in crate::plan::ancestors(kubeadm::CONFIG_PATH) {
        if !matches!(root.node(dir), Ok(Some(_))) {
            actions.push(crate::plan::Action::CreateDir {
                path: dir.to_string(),
                mode: 0o755,
                uid: 0,
                gid: 0,
            });
        }
    }
    actions.push(crate::plan::Action::WriteFile {
        path: kubeadm::CONFIG_PATH.to_string(),
        contents: text.into(),
        mode: 0o600,
        uid: 0,
        gid: 0,
    });
    let plan = crate::plan::Plan {
        actions,
        ..Default::default()
    };
    crate::apply::apply(&plan, root).map_err(|e| JoinError::Write(e.to_string()))?;
    let command = format!("{binary} {}", action.args().join(" "));
    let secrets = [
        cluster.bootstrap_token.expose(),
        cp.certificate_key.expose(),
    ];
    let (exit_code, outcome, output_tail) = match &opts.start {
        Some(_) => {
            eprintln!("harmony-agent: join: control plane: running {command}");
            let (code, tail) =
                kubeadm::run(root, binary, action, &secrets).map_err(JoinError::Kubeadm)?;
            (Some(code), "succeeded".to_string(), tail)
        }
        None => (
            None,
            format!(
                "not run: {} is not the running system",
                root.dir().display()
            ),
            String::new(),
        ),
    };
    Ok(kubeadm::KubeadmReport {
        kubeadm: action,
        command,
        config: kubeadm::CONFIG_PATH.to_string(),
        control_plane_endpoint: cp.endpoint.clone(),
        exit_code,
        outcome,
        output_tail,
    })
}
