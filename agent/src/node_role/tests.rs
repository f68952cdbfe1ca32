//! The role as the plan carries it: which files, which live steps, in which order.

use ignition::node_settings::NODE_YAML_PATH;
use ignition::{FileEntry, NodeConfig};

use super::*;
use crate::plan::{plan, plan_with_platform, Action};

const CLUSTER: &str = "cluster:\n  api_endpoints: [\"https://api:6443\"]\n  \
    bootstrap_token: abcdef.0123456789abcdef\n  ca_cert_hashes: \
    [\"sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\"]\n";

fn config(settings: &str) -> NodeConfig {
    config_without_cluster(&format!("{CLUSTER}{settings}"))
}

fn config_without_cluster(settings: &str) -> NodeConfig {
    let mut cfg = NodeConfig::default();
    cfg.files.push(FileEntry {
        path: NODE_YAML_PATH.to_string(),
        overwrite: true,
        contents: Some(settings.into()),
        append: Vec::new(),
        mode: Some(0o600),
        user: None,
        group: None,
    });
    cfg
}

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::write(d.path().join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(d.path().join("etc/group"), "root:x:0:\n").unwrap();
    d
}

fn file(actions: &[Action], path: &str) -> (String, u32) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::WriteFile {
                path: p,
                contents,
                mode,
                ..
            } if p == path => Some((
                String::from_utf8(contents.to_vec().unwrap()).unwrap(),
                *mode,
            )),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{path} not planned"))
}

const WORKER: &str = "role: worker\nnode:\n  labels: {example.com/rack: r1}\n  \
    taints: [\"dedicated=infra:NoSchedule\"]\nkubelet: {max_pods: 200, pod_cidr: 10.244.8.0/23}\n\
    ipvs: {enabled: true, scheduler: wrr, strict_arp: true}\n";

#[test]
fn a_worker_with_ipvs_plans_every_file_and_step() {
    let d = root();
    let p = plan(&config(WORKER), &TargetRoot::new(d.path())).unwrap();
    let (kubelet, mode) = file(&p.actions, kubelet::CONFIG_PATH);
    assert_eq!(mode, 0o644);
    assert_eq!(
        kubelet,
        "# Rendered by harmony-agent from harmony.kubelet: this node's kubelet settings.\n\
         apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         cgroupDriver: cgroupfs\nmaxPods: 200\npodPidsLimit: 4096\npodCIDR: \"10.244.8.0/23\"\n\
         authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\n  \
         x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\nauthorization:\n  mode: Webhook\n\
         readOnlyPort: 0\nrotateCertificates: true\nstaticPodPath: /etc/kubernetes/manifests\n"
    );
    assert!(file(&p.actions, kubelet::FLAGS_PATH).0.ends_with(
        "KUBELET_EXTRA_ARGS=\"--node-labels=example.com/rack=r1 \
         --register-with-taints=dedicated=infra:NoSchedule\"\n"
    ));
    assert_eq!(
        file(&p.actions, "/etc/modules-load.d/harmony-ipvs.conf").0,
        "# Rendered by harmony-agent: kube-proxy's ipvs mode (harmony.kube_proxy).\n\
         ip_vs\nip_vs_rr\nip_vs_wrr\nip_vs_sh\nnf_conntrack\n"
    );
    assert!(file(&p.actions, kube_proxy::CONFIG_PATH)
        .0
        .contains("mode: ipvs\nipvs:\n  scheduler: wrr\n  strictARP: true\n"));
    assert!(file(&p.actions, sysctl::PATH)
        .0
        .contains("net.ipv4.ip_forward = 1\n"));
    let (fw, fw_mode) = file(&p.actions, firewall::PATH);
    assert_eq!(fw_mode, 0o600);
    assert!(fw.contains("ip daddr 10.96.0.0/12 counter accept"));

    let steps: Vec<String> = p.live.iter().map(|s| s.name()).collect();
    assert_eq!(
        steps,
        [
            "tighten-log-permissions /var/log",
            "load-modules node",
            "load-modules ipvs",
            "set-sysctls",
            "load-firewall /etc/nftables.d/harmony.nft",
        ]
    );
    assert_eq!(
        p.live[2].to_string(),
        "live      load kernel modules for ipvs: ip_vs, ip_vs_rr, ip_vs_wrr, ip_vs_sh, \
         nf_conntrack (and dependencies)"
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["live"][2]["step"], "load-modules");
    assert_eq!(json["live"][2]["modules"][0], "ip_vs");
}

#[test]
fn without_ipvs_no_ipvs_files_and_systemd_gets_its_driver() {
    let d = root();
    std::fs::create_dir_all(d.path().join("usr/lib/systemd")).unwrap();
    std::fs::write(d.path().join("usr/lib/systemd/systemd"), b"").unwrap();
    let p = plan(&config("role: control-plane\n"), &TargetRoot::new(d.path())).unwrap();
    assert!(!p
        .actions
        .iter()
        .any(|a| a.path().contains("harmony-ipvs") || a.path() == kube_proxy::CONFIG_PATH));
    assert!(file(&p.actions, kubelet::CONFIG_PATH)
        .0
        .contains("\ncgroupDriver: systemd\n"));
    assert!(file(&p.actions, log_permissions::TMPFILES_PATH)
        .0
        .contains("z /var/log 0750"));
    assert_eq!(
        file(&p.actions, kubelet::FLAGS_PATH).0,
        "# Rendered by harmony-agent from harmony.node (labels, taints) and the platform's labels.\n\
         KUBELET_EXTRA_ARGS=\"\"\n"
    );
    assert_eq!(p.live.len(), 4);
}

#[test]
fn no_settings_no_role() {
    let d = root();
    let p = plan(&NodeConfig::default(), &TargetRoot::new(d.path())).unwrap();
    assert!(p.live.is_empty() && p.actions.is_empty());
}

#[test]
fn platform_labels_join_the_settings_and_a_conflict_is_an_error() {
    let d = root();
    let platform = PlatformLabels {
        origin: "guestinfo:guestinfo.harmony.labels".to_string(),
        labels: [("zone".to_string(), "eu-1".to_string())].into(),
    };
    let p = plan_with_platform(&config(WORKER), &TargetRoot::new(d.path()), &platform).unwrap();
    assert!(file(&p.actions, kubelet::FLAGS_PATH)
        .0
        .contains("--node-labels=example.com/rack=r1,zone=eu-1 "));
    let clash = PlatformLabels {
        origin: "guestinfo:guestinfo.harmony.labels".to_string(),
        labels: [("example.com/rack".to_string(), "r2".to_string())].into(),
    };
    let err = plan_with_platform(&config(WORKER), &TargetRoot::new(d.path()), &clash)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "node role: label \"example.com/rack\" is \"r1\" in harmony.node.labels but \"r2\" in \
         guestinfo:guestinfo.harmony.labels: give it in one place"
    );
}

#[test]
fn bad_settings_in_node_yaml_fail_the_plan_naming_the_field() {
    let d = root();
    let err = plan(
        &config("role: worker\nkubelet: {max_pods: 250, pod_cidr: 10.244.0.0/24}\n"),
        &TargetRoot::new(d.path()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("/etc/harmony/node.yaml: harmony.kubelet.max_pods: 250 pods need"),
        "{err}"
    );
}

#[test]
fn off_the_live_root_only_the_log_step_runs() {
    let d = root();
    std::fs::create_dir_all(d.path().join("var/log")).unwrap();
    std::fs::write(d.path().join("var/log/messages"), b"x").unwrap();
    std::fs::set_permissions(
        d.path().join("var/log/messages"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let p = plan(&config(WORKER), &TargetRoot::new(d.path())).unwrap();
    live::check(&p.live, d.path(), d.path(), false).unwrap();
    let reports = live::run(&p.live, d.path(), d.path(), false);
    let outcomes: Vec<_> = reports.iter().map(|r| r.outcome).collect();
    use live::StepOutcome::{Done, Skipped};
    assert_eq!(outcomes, [Done, Skipped, Skipped, Skipped, Skipped]);
    assert_eq!(reports[0].detail, "2 modes tightened");
    assert!(reports
        .iter()
        .all(|r| r.warning().is_none() && r.failure().is_none()));
}

#[test]
fn later_boots_run_the_live_steps_again_from_node_yaml() {
    let d = root();
    assert!(
        live::again_at_boot(d.path(), d.path(), false).is_empty(),
        "no settings"
    );
    std::fs::create_dir_all(d.path().join("etc/harmony")).unwrap();
    std::fs::create_dir_all(d.path().join("var/log")).unwrap();
    std::fs::write(
        d.path().join("etc/harmony/node.yaml"),
        format!("{CLUSTER}{WORKER}"),
    )
    .unwrap();
    let steps: Vec<String> = live::again_at_boot(d.path(), d.path(), false)
        .iter()
        .map(|s| format!("{} {:?}", s.step, s.outcome))
        .collect();
    assert_eq!(
        steps,
        [
            "tighten-log-permissions /var/log Done",
            "load-modules node Skipped",
            "load-modules ipvs Skipped",
            "set-sysctls Skipped",
            "load-firewall /etc/nftables.d/harmony.nft Skipped",
        ]
    );
    std::fs::write(d.path().join("etc/harmony/node.yaml"), "role: nonsense\n").unwrap();
    let bad = live::again_at_boot(d.path(), d.path(), false);
    assert_eq!(bad[0].outcome, live::StepOutcome::Failed);
    assert!(
        bad[0].detail.starts_with("/etc/harmony/node.yaml: harmony"),
        "{}",
        bad[0].detail
    );
}

#[test]
fn nftables_mode_without_a_cluster_configures_the_node() {
    let d = root();
    let cfg = config_without_cluster(
        "role: worker\nkubelet: {max_pods: 60}\nfirewall: {ssh_sources: [10.0.0.0/8]}\n\
         kube_proxy: {mode: nftables}\n",
    );
    let p = plan(&cfg, &TargetRoot::new(d.path())).unwrap();
    assert!(file(&p.actions, kubelet::CONFIG_PATH)
        .0
        .contains("\nmaxPods: 60\n"));
    assert!(file(&p.actions, kube_proxy::CONFIG_PATH)
        .0
        .ends_with("kind: KubeProxyConfiguration\nmode: nftables\n"));
    assert!(
        file(&p.actions, "/etc/modules-load.d/harmony-nftables.conf")
            .0
            .contains("\nnft_numgen\n")
    );
    let (fw, _) = file(&p.actions, firewall::PATH);
    assert!(fw.contains("10.0.0.0/8"), "{fw}");
    // Not IPVS: ClusterIPs are not local addresses, the input chain does not let them in.
    assert!(!fw.contains("IPVS ClusterIPs"), "{fw}");
    let steps: Vec<String> = p.live.iter().map(|s| s.name()).collect();
    assert_eq!(
        steps,
        [
            "tighten-log-permissions /var/log",
            "load-modules node",
            "load-modules nftables",
            "set-sysctls",
            "load-firewall /etc/nftables.d/harmony.nft",
        ]
    );
    // The join is planned as skipped.
    let join = p.join.as_ref().expect("join plan");
    assert_eq!(join.to_string(), "join      skipped: no cluster settings");
}
