//! What a Kubernetes node needs from its distribution, rendered for one recipe's
//! `kubernetes: {version: "1.NN"}`: the upstream package repositories, the packages
//! (kubelet, kubeadm, kubectl, cri-tools, containerd, CNI plugins), containerd's config for
//! the kubelet's cgroup driver, and the services to enable. Pure: the build step
//! (`steps::kubernetes`) writes the files and runs the install inside the image's root.
//!
//! - dnf (CentOS Stream, RHEL): pkgs.k8s.io's RPM repository pinned to one minor version,
//!   containerd from Docker's CentOS repository (`containerd.io`: CentOS ships none), the
//!   CNI plugins as `kubernetes-cni` from pkgs.k8s.io; systemd, so the systemd cgroup driver.
//! - apk (Alpine): everything from Alpine's community repository of the base's own release,
//!   kubelet/kubeadm/kubectl held to the minor version with apk's `~`; OpenRC, so cgroupfs.

mod containerd;
mod repositories;
mod version;

pub use containerd::{containerd_config, CgroupDriver};
pub use repositories::{
    alpine_repositories, docker_ce_repo, kubernetes_repo, APK_REPOSITORIES_PATH,
    DOCKER_CE_REPO_PATH, KUBERNETES_REPO_PATH,
};
pub use version::KubernetesVersion;

use crate::steps::agent::InitSystem;
use crate::steps::packages::PackageManager;

/// containerd's configuration file, read by `containerd` at start.
pub const CONTAINERD_CONFIG_PATH: &str = "/etc/containerd/config.toml";

/// What the Kubernetes step puts in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Repository definitions (absolute path, contents), written before the install.
    pub repositories: Vec<(String, String)>,
    /// Configuration (absolute path, contents), written after the install so that it
    /// replaces what the packages ship.
    pub configs: Vec<(String, String)>,
    /// Package names exactly as the repositories name them (apk: with `~MINOR` pins).
    pub packages: Vec<String>,
    /// Options for the package manager's install command.
    pub install_options: Vec<String>,
    /// Services enabled at boot, by the image's own tool (systemctl, rc-update).
    pub services: Vec<String>,
    pub cgroup_driver: CgroupDriver,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubernetesError {
    #[error(
        "kubernetes: the base's package manager is {0:?}; Kubernetes packages come from \
         upstream repositories for dnf (pkgs.k8s.io) and apk (Alpine community) only"
    )]
    UnsupportedPackageManager(PackageManager),
    #[error(
        "kubernetes: the image has no init system to run containerd and the kubelet \
         (looked for systemd and OpenRC; busybox init cannot supervise them)"
    )]
    UnsupportedInit,
    #[error("kubernetes: {0}")]
    Repositories(String),
}

/// Render for a base with package manager `pm` and init `init`. `apk_repositories` is the
/// base's `/etc/apk/repositories` (apk only: the community line is derived from its `main`).
pub fn render(
    version: &KubernetesVersion,
    pm: PackageManager,
    init: Option<InitSystem>,
    apk_repositories: Option<&str>,
) -> Result<Rendered, KubernetesError> {
    let cgroup_driver = match init {
        Some(InitSystem::Systemd) => CgroupDriver::Systemd,
        Some(InitSystem::OpenRc) => CgroupDriver::Cgroupfs,
        Some(InitSystem::BusyboxInit) | None => return Err(KubernetesError::UnsupportedInit),
    };
    let services = vec!["containerd".to_string(), "kubelet".to_string()];
    match pm {
        PackageManager::Dnf | PackageManager::Microdnf => Ok(Rendered {
            repositories: vec![
                (KUBERNETES_REPO_PATH.into(), kubernetes_repo(version)),
                (DOCKER_CE_REPO_PATH.into(), docker_ce_repo()),
            ],
            configs: vec![(
                CONTAINERD_CONFIG_PATH.into(),
                containerd_config(cgroup_driver, RPM_CNI_BIN_DIR),
            )],
            packages: [
                "kubelet",
                "kubeadm",
                "kubectl",
                "cri-tools",
                "kubernetes-cni",
                "containerd.io",
            ]
            .map(String::from)
            .to_vec(),
            // The repository excludes its packages from updates; installing them is the
            // one time they are wanted (as Kubernetes' own install instructions do).
            install_options: vec!["--disableexcludes=kubernetes".into()],
            services,
            cgroup_driver,
        }),
        PackageManager::Apk => {
            let current = apk_repositories.unwrap_or_default();
            let repositories =
                alpine_repositories(current).map_err(KubernetesError::Repositories)?;
            let pinned = |name: &str| format!("{name}~{version}");
            Ok(Rendered {
                repositories: vec![(APK_REPOSITORIES_PATH.into(), repositories)],
                configs: vec![(
                    CONTAINERD_CONFIG_PATH.into(),
                    containerd_config(cgroup_driver, ALPINE_CNI_BIN_DIR),
                )],
                packages: vec![
                    pinned("kubelet"),
                    pinned("kubeadm"),
                    pinned("kubectl"),
                    "cri-tools".into(),
                    "containerd".into(),
                    "cni-plugins".into(),
                    "kubelet-openrc".into(),
                    "containerd-openrc".into(),
                ],
                install_options: Vec::new(),
                services,
                cgroup_driver,
            })
        }
        PackageManager::Apt => Err(KubernetesError::UnsupportedPackageManager(pm)),
    }
}

/// Where pkgs.k8s.io's `kubernetes-cni` installs the plugins.
const RPM_CNI_BIN_DIR: &str = "/opt/cni/bin";
/// Where Alpine's `cni-plugins` installs them.
const ALPINE_CNI_BIN_DIR: &str = "/usr/libexec/cni";

#[cfg(test)]
mod tests;
