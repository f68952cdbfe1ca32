use super::*;

fn v(text: &str) -> KubernetesVersion {
    KubernetesVersion::parse(text).unwrap()
}

#[test]
fn versions_are_minor_versions_pkgs_k8s_io_has() {
    assert_eq!(v("1.31").to_string(), "1.31");
    for bad in ["1.31.2", "v1.31", "1.", "2.1", "1.3a", "", "1.23"] {
        assert!(KubernetesVersion::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn centos_gets_pkgs_k8s_io_pinned_to_one_minor_and_dockers_containerd() {
    let r = render(
        &v("1.31"),
        PackageManager::Dnf,
        Some(InitSystem::Systemd),
        None,
    )
    .unwrap();
    let file = |path: &str| {
        r.repositories
            .iter()
            .chain(&r.configs)
            .find(|(p, _)| p == path)
            .map(|(_, c)| c.as_str())
            .unwrap_or_else(|| panic!("{path}: {r:?}"))
    };
    assert_eq!(
        file("/etc/yum.repos.d/kubernetes.repo"),
        "[kubernetes]\n\
         name=Kubernetes\n\
         baseurl=https://pkgs.k8s.io/core:/stable:/v1.31/rpm/\n\
         enabled=1\n\
         gpgcheck=1\n\
         gpgkey=https://pkgs.k8s.io/core:/stable:/v1.31/rpm/repodata/repomd.xml.key\n\
         exclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n"
    );
    let docker = file("/etc/yum.repos.d/docker-ce.repo");
    assert!(docker.starts_with("[docker-ce-stable]\n"), "{docker}");
    assert!(
        docker.contains(
            "\nbaseurl=https://download.docker.com/linux/centos/$releasever/$basearch/stable\n"
        ) && docker.contains("\ngpgcheck=1\ngpgkey=https://download.docker.com/linux/centos/gpg\n"),
        "{docker}"
    );
    // Every repository section is complete: one section each, the keys dnf needs.
    for repo in [file("/etc/yum.repos.d/kubernetes.repo"), docker] {
        assert_eq!(repo.matches("\n[").count(), 0, "{repo}");
        for key in [
            "name=",
            "baseurl=https://",
            "enabled=1",
            "gpgcheck=1",
            "gpgkey=https://",
        ] {
            assert_eq!(
                repo.lines().filter(|l| l.starts_with(key)).count(),
                1,
                "{key}: {repo}"
            );
        }
    }
    assert_eq!(
        r.packages,
        [
            "kubelet",
            "kubeadm",
            "kubectl",
            "cri-tools",
            "kubernetes-cni",
            "containerd.io"
        ]
    );
    assert_eq!(r.install_options, ["--disableexcludes=kubernetes"]);
    assert_eq!(r.services, ["containerd", "kubelet"]);
    assert_eq!(r.cgroup_driver, CgroupDriver::Systemd);

    let config = parse_toml(file("/etc/containerd/config.toml"));
    assert_eq!(config["version"].as_integer(), Some(2));
    let cri = &config["plugins"]["io.containerd.grpc.v1.cri"];
    let runc = &cri["containerd"]["runtimes"]["runc"];
    assert_eq!(runc["runtime_type"].as_str(), Some("io.containerd.runc.v2"));
    assert_eq!(runc["options"]["SystemdCgroup"].as_bool(), Some(true));
    assert_eq!(
        cri["containerd"]["default_runtime_name"].as_str(),
        Some("runc")
    );
    assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/opt/cni/bin"));
    assert_eq!(cri["cni"]["conf_dir"].as_str(), Some("/etc/cni/net.d"));
}

#[test]
fn alpine_gets_its_community_repository_and_cgroupfs() {
    let base = "https://dl-cdn.alpinelinux.org/alpine/v3.20/main\n";
    let r = render(
        &v("1.30"),
        PackageManager::Apk,
        Some(InitSystem::OpenRc),
        Some(base),
    )
    .unwrap();
    assert_eq!(
        r.repositories[0],
        (
            "/etc/apk/repositories".to_string(),
            "https://dl-cdn.alpinelinux.org/alpine/v3.20/main\n\
             https://dl-cdn.alpinelinux.org/alpine/v3.20/community\n"
                .to_string()
        )
    );
    assert_eq!(
        r.packages,
        [
            "kubelet~1.30",
            "kubeadm~1.30",
            "kubectl~1.30",
            "cri-tools",
            "containerd",
            "cni-plugins",
            "kubelet-openrc",
            "containerd-openrc"
        ]
    );
    assert!(r.install_options.is_empty());
    assert_eq!(r.cgroup_driver, CgroupDriver::Cgroupfs);
    let (path, text) = &r.configs[0];
    assert_eq!(path, "/etc/containerd/config.toml");
    let config = parse_toml(text);
    let cri = &config["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(false)
    );
    assert_eq!(cri["cni"]["bin_dir"].as_str(), Some("/usr/libexec/cni"));
}

#[test]
fn alpine_repositories_keep_what_is_there() {
    // The alpine image's own file already has community: nothing changes.
    let both = "https://dl-cdn.alpinelinux.org/alpine/v3.20/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.20/community\n";
    assert_eq!(alpine_repositories(both).unwrap(), both);
    // A commented-out community line does not count; a mirror is followed.
    let mirror =
        "http://mirror.lan/alpine/v3.19/main/\n#http://mirror.lan/alpine/v3.19/community\n";
    assert_eq!(
        alpine_repositories(mirror).unwrap(),
        format!("{mirror}http://mirror.lan/alpine/v3.19/community\n")
    );
    let err = alpine_repositories("# nothing\n").unwrap_err();
    assert!(err.contains("no `main` repository"), "{err}");
}

#[test]
fn bases_without_upstream_packages_or_a_supervisor_are_refused() {
    let err = render(
        &v("1.31"),
        PackageManager::Apt,
        Some(InitSystem::Systemd),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err,
        KubernetesError::UnsupportedPackageManager(PackageManager::Apt)
    );
    let err = render(
        &v("1.31"),
        PackageManager::Dnf,
        Some(InitSystem::BusyboxInit),
        None,
    )
    .unwrap_err();
    assert_eq!(err, KubernetesError::UnsupportedInit);
}

fn parse_toml(text: &str) -> toml::Table {
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
}
