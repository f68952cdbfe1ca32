//! The recipe's `kubernetes:`, one layer: upstream repositories written, kubelet, kubeadm,
//! kubectl, cri-tools, containerd and the CNI plugins installed with the image's own
//! package manager inside its root (rootless, like `packages:`), containerd's config for
//! the kubelet's cgroup driver, containerd and the kubelet enabled at boot.

use sha2::{Digest, Sha256};

use super::agent::{detect_init, InitSystem};
use super::packages::{detect, install_command, PackageManager};
use super::run_in_root::{run_in_root, IdMapping, RunError};
use super::StepOutput;
use crate::kubernetes::{render, KubernetesError, KubernetesVersion, APK_REPOSITORIES_PATH};
use crate::tree::diff::diff;
use crate::tree::{Entry, Kind, Meta, Tree, TreeError};

#[derive(Debug, thiserror::Error)]
pub enum KubernetesStepError {
    #[error(
        "kubernetes: the base image has no package manager Harmony knows \
         (looked for /usr/bin/dnf, /usr/bin/microdnf, /sbin/apk, /usr/bin/apt-get)"
    )]
    NoPackageManager,
    #[error(transparent)]
    Render(#[from] KubernetesError),
    #[error("kubernetes: writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: TreeError,
    },
    #[error("kubernetes: {source}")]
    Run {
        #[source]
        source: RunError,
    },
    #[error("kubernetes: the packages installed no {0}, so it cannot be enabled at boot")]
    NoService(String),
}

pub fn kubernetes_step(
    tree: &Tree,
    version: &KubernetesVersion,
) -> Result<StepOutput, KubernetesStepError> {
    let pm = detect(tree).ok_or(KubernetesStepError::NoPackageManager)?;
    let init = detect_init(tree);
    let apk_repositories = (pm == PackageManager::Apk)
        .then(|| tree.read_text(APK_REPOSITORIES_PATH))
        .flatten();
    let rendered = render(version, pm, init, apk_repositories)?;

    let mut with_repositories = tree.clone();
    for (path, text) in &rendered.repositories {
        write(&mut with_repositories, path, text)?;
    }
    // Options first: dnf reads `install --disableexcludes=kubernetes NAME…`.
    let arguments: Vec<String> = rendered
        .install_options
        .iter()
        .chain(&rendered.packages)
        .cloned()
        .collect();
    let argv = install_command(pm, &arguments);
    let mut installed = run_in_root(&with_repositories, &argv, &[], IdMapping::for_caller())
        .map_err(|source| KubernetesStepError::Run { source })?
        .tree;
    for (path, text) in &rendered.configs {
        write(&mut installed, path, text)?;
    }
    for service in &rendered.services {
        enable(&mut installed, init, service)?;
    }
    let changes = diff(tree, &installed);

    let mut digest = Sha256::new();
    digest.update(argv.join("\0"));
    for (path, text) in rendered.repositories.iter().chain(&rendered.configs) {
        digest.update(format!("\0{path}\0{text}"));
    }
    digest.update(rendered.services.join("\0"));
    Ok(StepOutput {
        name: "kubernetes",
        description: format!(
            "harmony kubernetes {version} ({pm:?}, cgroup driver {}): {}",
            rendered.cgroup_driver.name(),
            rendered.packages.join(" ")
        ),
        inputs_digest: hex::encode(digest.finalize()),
        changes,
    })
}

/// A root-owned 0644 file, its missing parents made 0755.
fn write(tree: &mut Tree, path: &str, text: &str) -> Result<(), KubernetesStepError> {
    put(tree, path, Entry::file(text.as_bytes().to_vec(), 0o644))
}

fn put(tree: &mut Tree, path: &str, entry: Entry) -> Result<(), KubernetesStepError> {
    let relative = path.trim_start_matches('/');
    let failed = |source| KubernetesStepError::Write {
        path: path.to_string(),
        source,
    };
    if let Some((parent, _)) = relative.rsplit_once('/') {
        tree.mkdir_all(parent, &Meta::new(0o755)).map_err(failed)?;
    }
    tree.insert(relative, entry).map_err(failed).map(|_| ())
}

/// Enabled the way `systemctl enable` (its `WantedBy=multi-user.target`) and
/// `rc-update add NAME default` would, checked against what the packages installed.
fn enable(
    installed: &mut Tree,
    init: Option<InitSystem>,
    service: &str,
) -> Result<(), KubernetesStepError> {
    let (target, link) = match init {
        Some(InitSystem::OpenRc) => (
            format!("/etc/init.d/{service}"),
            format!("/etc/runlevels/default/{service}"),
        ),
        _ => (
            format!("/usr/lib/systemd/system/{service}.service"),
            format!("/etc/systemd/system/multi-user.target.wants/{service}.service"),
        ),
    };
    if installed
        .get_resolved(target.trim_start_matches('/'))
        .is_none()
    {
        return Err(KubernetesStepError::NoService(target));
    }
    let link_entry = Entry {
        kind: Kind::Symlink(target),
        meta: Meta::new(0o777),
    };
    put(installed, &link, link_entry)
}

/// dnf and apk cannot be had here: stand-ins with their command lines (shell scripts in
/// the Debian busybox fixture) run through the same path as the real ones — detect,
/// command, user namespace, layer. They check the repositories are in place when they
/// run and install what the real packages install where the step looks.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::run_in_root::tests::busybox_root;
    use crate::tree::layer::Change;

    /// An Alpine root with OpenRC and only the main repository configured.
    fn alpine_openrc_root() -> Tree {
        let mut t = busybox_root();
        put_script(&mut t, "sbin/openrc", "#!/bin/sh\n");
        put(
            &mut t,
            "etc/apk/repositories",
            Entry::file(
                b"https://dl-cdn.alpinelinux.org/alpine/v3.20/main\n".to_vec(),
                0o644,
            ),
        )
        .unwrap();
        t
    }

    fn put_script(t: &mut Tree, path: &str, script: &str) {
        put(t, path, Entry::file(script.as_bytes().to_vec(), 0o755)).unwrap();
    }

    fn text(changes: &crate::tree::layer::LayerChanges, path: &str) -> String {
        match changes.0.get(path) {
            Some(Change::Put(Entry {
                kind: Kind::File(bytes),
                ..
            })) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("{path}: {other:?}"),
        }
    }

    fn link(changes: &crate::tree::layer::LayerChanges, path: &str) -> String {
        match changes.0.get(path) {
            Some(Change::Put(Entry {
                kind: Kind::Symlink(target),
                ..
            })) => target.clone(),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn a_dnf_systemd_base_gets_repositories_packages_config_and_units() {
        let mut t = busybox_root();
        put_script(&mut t, "usr/lib/systemd/systemd", "#!/bin/sh\n");
        let dnf = "#!/bin/sh\n\
            busybox grep -q '^baseurl=https://pkgs.k8s.io/core:/stable:/v1.31/rpm/$' /etc/yum.repos.d/kubernetes.repo || exit 3\n\
            busybox test -f /etc/yum.repos.d/docker-ce.repo || exit 4\n\
            echo \"$@\" >> /var/lib/dnf-args\n\
            [ \"$1\" = clean ] && exit 0\n\
            busybox mkdir -p /usr/lib/systemd/system /etc/containerd\n\
            : > /usr/lib/systemd/system/containerd.service\n\
            : > /usr/lib/systemd/system/kubelet.service\n\
            echo 'disabled_plugins = [\"cri\"]' > /etc/containerd/config.toml\n";
        put_script(&mut t, "usr/bin/dnf", dnf);
        // The install command cleans dnf's caches with rm.
        let rm = Entry {
            kind: Kind::Symlink("busybox".into()),
            meta: Meta::new(0o777),
        };
        put(&mut t, "usr/bin/rm", rm).unwrap();
        let step = kubernetes_step(&t, &KubernetesVersion::parse("1.31").unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        let c = &step.changes;
        assert!(text(c, "etc/yum.repos.d/kubernetes.repo")
            .contains("\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n"));
        assert!(text(c, "etc/yum.repos.d/docker-ce.repo").starts_with("[docker-ce-stable]\n"));
        assert_eq!(
            text(c, "var/lib/dnf-args"),
            "-y --setopt=install_weak_deps=False --setopt=tsflags=nodocs install \
             --disableexcludes=kubernetes kubelet kubeadm kubectl cri-tools kubernetes-cni \
             containerd.io\nclean all\n"
        );
        let config = text(c, "etc/containerd/config.toml");
        assert!(
            config.contains("SystemdCgroup = true") && !config.contains("disabled_plugins"),
            "{config}"
        );
        assert_eq!(
            link(
                c,
                "etc/systemd/system/multi-user.target.wants/containerd.service"
            ),
            "/usr/lib/systemd/system/containerd.service"
        );
        assert_eq!(
            link(
                c,
                "etc/systemd/system/multi-user.target.wants/kubelet.service"
            ),
            "/usr/lib/systemd/system/kubelet.service"
        );
    }

    #[test]
    fn an_apk_openrc_base_gets_community_pinned_packages_and_cgroupfs() {
        let mut t = alpine_openrc_root();
        let apk = "#!/bin/sh\n\
            busybox grep -q '/v3.20/community$' /etc/apk/repositories || exit 3\n\
            echo \"$@\" > /var/lib/apk-args\n\
            busybox mkdir -p /etc/init.d\n\
            : > /etc/init.d/containerd\n\
            : > /etc/init.d/kubelet\n";
        put_script(&mut t, "usr/sbin/apk", apk);
        let step = kubernetes_step(&t, &KubernetesVersion::parse("1.30").unwrap())
            .unwrap_or_else(|e| panic!("{e}"));
        let c = &step.changes;
        assert_eq!(
            text(c, "var/lib/apk-args"),
            "add --no-cache kubelet~1.30 kubeadm~1.30 kubectl~1.30 cri-tools containerd cni-plugins kubelet-openrc containerd-openrc\n"
        );
        assert!(text(c, "etc/containerd/config.toml").contains("SystemdCgroup = false"));
        assert_eq!(
            link(c, "etc/runlevels/default/kubelet"),
            "/etc/init.d/kubelet"
        );
        assert_eq!(
            link(c, "etc/runlevels/default/containerd"),
            "/etc/init.d/containerd"
        );
    }

    #[test]
    fn a_service_the_packages_did_not_install_is_an_error() {
        let mut t = alpine_openrc_root();
        put_script(&mut t, "usr/sbin/apk", "#!/bin/sh\n");
        let err = kubernetes_step(&t, &KubernetesVersion::parse("1.30").unwrap())
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            err,
            "kubernetes: the packages installed no /etc/init.d/containerd, so it cannot be enabled at boot"
        );
    }
}
