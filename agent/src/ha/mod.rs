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

use ignition::keepalived::{VrrpPassword, PASSWORD_SECRET};
use ignition::node_settings::{NodeSettings, VrrpAuthentication};
use ignition::secrets::Secret;

use crate::plan::{NodeFile, PlanError};
use crate::target_root::TargetRoot;

pub use crate::init_system::InitSystem;

/// One symlink to make (a service's enablement).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLink {
    pub path: String,
    pub target: String,
}

/// Where kubelet reads static pod manifests (kubeadm's staticPodPath).
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

/// keepalived.conf, its check script, haproxy.cfg and the two static pod manifests (and
/// the password fragment with `authentication: pass`); empty when the settings ask for no
/// VIP. `secret` gives a node secret as it will be once the config's own files are
/// written.
pub fn vip_files(
    settings: &NodeSettings,
    secret: &dyn Fn(&str) -> Result<Secret, String>,
) -> Result<Vec<NodeFile>, PlanError> {
    let Some(ha) = &settings.ha else {
        return Ok(Vec::new());
    };
    let Some(vip) = &ha.vip else {
        return Ok(Vec::new());
    };
    let password = match vip.authentication {
        VrrpAuthentication::None => None,
        VrrpAuthentication::Pass => {
            let value = secret(PASSWORD_SECRET).map_err(|e| PlanError::Conflict {
                path: "harmony.ha.vip.authentication".to_string(),
                problem: format!("`pass` needs the password: {e}"),
            })?;
            Some(
                VrrpPassword::new(value).map_err(|problem| PlanError::Conflict {
                    path: ignition::secrets::secret_path(PASSWORD_SECRET),
                    problem,
                })?,
            )
        }
    };
    let mut files = keepalived::files(vip, password.as_ref());
    files.extend(haproxy::files(vip, &ha.backends));
    Ok(files)
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

/// Everything `harmony.ha` asks of this node, for the plan: the VIP's files, and the
/// api-proxy service under the root's service manager. A local proxy on a root with
/// neither systemd nor OpenRC is an error: nothing would run it before kubelet.
pub fn plan_files(
    settings: &NodeSettings,
    root: &TargetRoot,
    secret: &dyn Fn(&str) -> Result<Secret, String>,
) -> Result<(Vec<NodeFile>, Vec<NodeLink>), PlanError> {
    let mut files = vip_files(settings, secret)?;
    let mut links = Vec::new();
    if settings
        .ha
        .as_ref()
        .is_some_and(|ha| ha.local_proxy.is_some())
    {
        let init = crate::init_system::detect(root)
            .map_err(|err| PlanError::Io {
                path: "/usr/lib/systemd/systemd".to_string(),
                err,
            })?
            .ok_or_else(|| PlanError::Conflict {
                path: "harmony.ha.local_proxy".to_string(),
                problem: "the image has neither systemd nor OpenRC to run the api-proxy \
                          service under"
                    .to_string(),
            })?;
        let (f, l) = local_proxy_files(settings, init);
        files.extend(f);
        links = l;
    }
    Ok((files, links))
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

#[cfg(test)]
mod tests {
    use super::*;

    const CLOUD_CONFIG: &str = "#cloud-config
harmony:
  cluster:
    api_endpoints: [\"https://10.0.0.10:8443\"]
    bootstrap_token: abcdef.0123456789abcdef
    ca_cert_hashes: [\"sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\"]
  role: control-plane
  ha:
    backends: [10.0.0.11:6443, 10.0.0.12:6443, 10.0.0.13:6443]
    vip: {address: 10.0.0.10, interface: eth0, virtual_router_id: 51}
    local_proxy: {}
";

    fn plan_in(root: &std::path::Path) -> Result<crate::plan::Plan, PlanError> {
        let cfg = crate::config_format::node_config(
            CLOUD_CONFIG.as_bytes(),
            None,
            &crate::fetch::NetFetcher::default(),
        )
        .unwrap();
        crate::plan::plan(&cfg, &TargetRoot::new(root))
    }

    #[test]
    fn the_plan_writes_the_vip_files_and_the_proxy_service() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("usr/lib/systemd")).unwrap();
        std::fs::write(dir.path().join("usr/lib/systemd/systemd"), b"").unwrap();
        let plan = plan_in(dir.path()).unwrap();
        let lines: Vec<String> = plan.actions.iter().map(ToString::to_string).collect();
        for want in [
            "file      /etc/keepalived/keepalived.conf mode 0644",
            "file      /etc/keepalived/check_apiserver.sh mode 0755",
            "file      /etc/haproxy/haproxy.cfg mode 0644",
            "file      /etc/kubernetes/manifests/keepalived.yaml mode 0600",
            "file      /etc/kubernetes/manifests/haproxy.yaml mode 0600",
            "file      /etc/systemd/system/harmony-api-proxy.service mode 0644",
            "symlink   /etc/systemd/system/multi-user.target.wants/harmony-api-proxy.service \
             -> /etc/systemd/system/harmony-api-proxy.service",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "{want} not planned:\n{}",
                lines.join("\n")
            );
        }
    }

    /// `authentication: pass` with the password the same config writes (0644 asked,
    /// 0600 written): keepalived.conf includes the fragment, the pod mounts it, and
    /// neither the plan's lines nor the report carry the value or a digest of it.
    #[test]
    fn vrrp_authentication_takes_the_node_secret_and_never_shows_it() {
        let with_secret = |write: &str| {
            let text = CLOUD_CONFIG
                .replace(
                    "virtual_router_id: 51}",
                    "virtual_router_id: 51, authentication: pass}",
                )
                .replace("    local_proxy: {}\n", "")
                + write;
            let cfg = crate::config_format::node_config(
                text.as_bytes(),
                None,
                &crate::fetch::NetFetcher::default(),
            )
            .unwrap();
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("etc")).unwrap();
            std::fs::write(dir.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
            std::fs::write(dir.path().join("etc/group"), "root:x:0:\n").unwrap();
            crate::plan::plan(&cfg, &TargetRoot::new(dir.path()))
        };
        let plan = with_secret(
            "write_files:\n  - {path: /etc/harmony/secrets/keepalived-password, permissions: '0644', content: \"kp-7q2x\\n\"}\n",
        )
        .unwrap();
        let lines: Vec<String> = plan.actions.iter().map(ToString::to_string).collect();
        for want in [
            "file      /etc/harmony/secrets/keepalived-password mode 0600 owner 0:0 (8 bytes, secret)",
            "file      /etc/harmony/secrets/keepalived-auth.conf mode 0600 owner 0:0 (18 bytes, secret)",
        ] {
            assert!(lines.iter().any(|l| l == want), "{want}:\n{}", lines.join("\n"));
        }
        let written = |path: &str| {
            plan.actions.iter().find_map(|a| match a {
                crate::plan::Action::WriteFile {
                    path: p, contents, ..
                } if p == path => Some(String::from_utf8(contents.to_vec().unwrap()).unwrap()),
                _ => None,
            })
        };
        assert_eq!(
            written(keepalived::AUTH_PATH).as_deref(),
            Some("auth_pass kp-7q2x\n")
        );
        let conf = written(keepalived::CONF_PATH).unwrap();
        assert!(
            conf.contains("includea /etc/harmony/secrets/keepalived-auth.conf")
                && !conf.contains("kp-7q2x"),
            "{conf}"
        );
        let pod = written("/etc/kubernetes/manifests/keepalived.yaml").unwrap();
        assert!(
            pod.contains("path: /etc/harmony/secrets/keepalived-auth.conf"),
            "{pod}"
        );
        let report = serde_json::to_string(&crate::report::written(&plan)).unwrap();
        assert!(!report.contains("kp-7q2x"), "{report}");
        let secret_entries: Vec<_> = crate::report::written(&plan)
            .into_iter()
            .filter(|w| w.path.starts_with("/etc/harmony/secrets/"))
            .collect();
        assert_eq!(secret_entries.len(), 2);
        assert!(secret_entries.iter().all(|w| w.sha256.is_none()));

        let missing = with_secret("").unwrap_err().to_string();
        assert!(
            missing.starts_with(
                "harmony.ha.vip.authentication: `pass` needs the password: secret \
                 /etc/harmony/secrets/keepalived-password is missing"
            ),
            "{missing}"
        );
        let long = with_secret(
            "write_files:\n  - {path: /etc/harmony/secrets/keepalived-password, content: ninechars}\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            long,
            "/etc/harmony/secrets/keepalived-password: is 9 characters long; VRRP passwords are at most 8"
        );
    }

    #[test]
    fn a_local_proxy_needs_a_service_manager() {
        let dir = tempfile::tempdir().unwrap();
        let err = plan_in(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("harmony.ha.local_proxy: the image has neither systemd nor OpenRC"),
            "{err}"
        );
    }
}
