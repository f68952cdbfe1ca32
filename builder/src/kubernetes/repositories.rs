//! Package repository definitions, exactly as their upstreams publish them.

use super::KubernetesVersion;

pub const KUBERNETES_REPO_PATH: &str = "/etc/yum.repos.d/kubernetes.repo";
pub const DOCKER_CE_REPO_PATH: &str = "/etc/yum.repos.d/docker-ce.repo";
pub const APK_REPOSITORIES_PATH: &str = "/etc/apk/repositories";

/// pkgs.k8s.io's RPM repository for one minor version (kubelet, kubeadm, kubectl,
/// cri-tools, kubernetes-cni), as kubernetes.io's "Installing kubeadm" writes it.
pub fn kubernetes_repo(version: &KubernetesVersion) -> String {
    let base = format!("https://pkgs.k8s.io/core:/stable:/v{version}/rpm/");
    format!(
        "[kubernetes]\n\
         name=Kubernetes\n\
         baseurl={base}\n\
         enabled=1\n\
         gpgcheck=1\n\
         gpgkey={base}repodata/repomd.xml.key\n\
         exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n"
    )
}

/// Docker's CentOS repository, stable channel only (`containerd.io`), as
/// `https://download.docker.com/linux/centos/docker-ce.repo` defines it.
pub fn docker_ce_repo() -> String {
    "[docker-ce-stable]\n\
     name=Docker CE Stable - $basearch\n\
     baseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable\n\
     enabled=1\n\
     gpgcheck=1\n\
     gpgkey=https://download.docker.com/linux/centos/gpg\n"
        .to_string()
}

/// The base's `/etc/apk/repositories` with its release's `community` repository enabled:
/// the same mirror and branch as its `main` line. Lines already there are kept as they are.
pub fn alpine_repositories(current: &str) -> Result<String, String> {
    let active = |l: &&str| !l.trim().is_empty() && !l.trim_start().starts_with('#');
    let main = current
        .lines()
        .filter(active)
        .find_map(|l| l.trim().trim_end_matches('/').strip_suffix("/main"))
        .ok_or_else(|| {
            "/etc/apk/repositories names no `main` repository to find the release's \
             community repository beside"
                .to_string()
        })?;
    let community = format!("{main}/community");
    if current
        .lines()
        .filter(active)
        .any(|l| l.trim().trim_end_matches('/') == community)
    {
        return Ok(current.to_string());
    }
    let mut text = current.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&community);
    text.push('\n');
    Ok(text)
}
