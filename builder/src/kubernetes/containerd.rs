//! `/etc/containerd/config.toml`: the CRI plugin with runc set to the kubelet's cgroup
//! driver (they must agree, or pods fail to start), and where the CNI plugins are.
//! Config version 2 is containerd 1.x's format; containerd 2.x reads it too.

/// How the kubelet and the runtime manage cgroups: systemd's on a systemd host (kubeadm's
/// default), cgroupfs where there is no systemd (OpenRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    Systemd,
    Cgroupfs,
}

impl CgroupDriver {
    /// The name KubeletConfiguration's `cgroupDriver` uses.
    pub fn name(self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        }
    }
}

pub fn containerd_config(driver: CgroupDriver, cni_bin_dir: &str) -> String {
    let systemd_cgroup = driver == CgroupDriver::Systemd;
    format!(
        "# Written by harmony for the recipe's `kubernetes:`: the CRI plugin on (packaged\n\
         # configs may disable it), runc with the kubelet's cgroup driver ({driver}).\n\
         version = 2\n\
         \n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n\
         \x20 default_runtime_name = \"runc\"\n\
         \n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n\
         \x20 runtime_type = \"io.containerd.runc.v2\"\n\
         \n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n\
         \x20 SystemdCgroup = {systemd_cgroup}\n\
         \n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n\
         \x20 bin_dir = \"{cni_bin_dir}\"\n\
         \x20 conf_dir = \"/etc/cni/net.d\"\n",
        driver = driver.name(),
    )
}
