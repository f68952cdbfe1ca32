//! Pods per node and how the node registers: the kubelet's per-node
//! KubeletConfiguration (maxPods, podPidsLimit, cgroup driver, pod CIDR) and its
//! `--node-labels` / `--register-with-taints` flags.
//!
//! The cgroup driver follows the image's init: kubelet and the container runtime must
//! agree with the manager of the cgroup tree, which is systemd where systemd runs and
//! nobody (cgroupfs) on OpenRC or busybox init (kubeadm's default, systemd, is wrong there).

use std::collections::BTreeMap;

use ignition::node_settings::NodeSettings;

use crate::init_system::InitSystem;
use crate::target_root::TargetRoot;

pub const CONFIG_PATH: &str = "/var/lib/kubelet/config.yaml";
/// Read by kubeadm's kubelet drop-in (`EnvironmentFile=-/etc/default/kubelet`) and by
/// Harmony's own kubelet start.
pub const FLAGS_PATH: &str = "/etc/default/kubelet";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Systemd,
    Cgroupfs,
}

impl CgroupDriver {
    /// systemd when the root has it (as the builder's init detection decides).
    pub fn for_root(root: &TargetRoot) -> CgroupDriver {
        if let Ok(Some(InitSystem::Systemd)) = crate::init_system::detect(root) {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        }
    }

    fn name(self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        }
    }
}

/// The KubeletConfiguration file: the per-node values, and the secure defaults kubeadm
/// would write (no anonymous access, webhook authn/authz, no read-only port).
pub fn config_yaml(s: &NodeSettings, driver: CgroupDriver) -> String {
    let k = &s.kubelet;
    let mut y = String::from(
        "# Rendered by harmony-agent from harmony.kubelet: this node's kubelet settings.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n",
    );
    y.push_str(&format!("cgroupDriver: {}\n", driver.name()));
    y.push_str(&format!("maxPods: {}\n", k.max_pods));
    y.push_str(&format!("podPidsLimit: {}\n", k.pod_pids_limit));
    if let Some(cidr) = &k.pod_cidr {
        y.push_str(&format!("podCIDR: \"{cidr}\"\n"));
    }
    y.push_str(
        "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n  \
         x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n\
         authorization:\n  mode: Webhook\n\
         readOnlyPort: 0\n\
         rotateCertificates: true\n\
         staticPodPath: /etc/kubernetes/manifests\n",
    );
    y
}

/// The settings' labels and the platform's (VMware guestinfo), as one map. A key given
/// by both with different values is an error: neither silently wins.
pub fn labels(
    s: &NodeSettings,
    platform: &BTreeMap<String, String>,
    platform_origin: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut all = s.node.labels.clone();
    for (k, v) in platform {
        match all.get(k) {
            Some(mine) if mine != v => {
                return Err(format!(
                    "label {k:?} is {mine:?} in harmony.node.labels but {v:?} in \
                     {platform_origin}: give it in one place"
                ))
            }
            _ => {
                all.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(all)
}

/// `/etc/default/kubelet`. Labels and taints were validated against Kubernetes' syntax,
/// which has no blanks or quotes, so the value needs no escaping.
pub fn flags_file(labels: &BTreeMap<String, String>, taints: &[String]) -> String {
    let mut args = Vec::new();
    if !labels.is_empty() {
        let list: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.push(format!("--node-labels={}", list.join(",")));
    }
    if !taints.is_empty() {
        args.push(format!("--register-with-taints={}", taints.join(",")));
    }
    format!(
        "# Rendered by harmony-agent from harmony.node (labels, taints) and the platform's labels.\n\
         KUBELET_EXTRA_ARGS=\"{}\"\n",
        args.join(" ")
    )
}
