use super::*;
use crate::FileEntry;

const TOKEN: &str = "abcdef.0123456789abcdef";
const PIN: &str = "sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";

/// A complete, valid document; tests change one thing in it.
fn full_yaml() -> String {
    format!(
        r#"
cluster:
  api_endpoints: ["https://api.k8s.example.com:6443", "https://10.0.0.11:6443"]
  bootstrap_token: {TOKEN}
  ca_cert_hashes: ["{PIN}"]
role: control-plane
node:
  labels:
    topology.kubernetes.io/zone: rack-1
    example.com/tier: infra
    gpu: ""
  taints: ["dedicated=infra:NoSchedule", "example.com/gpu:NoExecute"]
kubelet:
  max_pods: 250
  pod_cidr: 10.244.0.0/23
firewall:
  ssh_sources: [192.0.2.0/24, "2001:db8::/32"]
  cni: vxlan
  rules:
    - {{ports: "80", protocol: tcp, sources: [0.0.0.0/0]}}
    - {{ports: 30000-32767, protocol: tcp, sources: [10.0.0.0/8]}}
    - {{ports: 53, protocol: udp, sources: [10.0.0.0/8]}}
ipvs:
  enabled: true
  scheduler: wrr
  strict_arp: true
"#
    )
}

fn minimal_yaml() -> String {
    format!(
        "cluster:\n  api_endpoints: [\"https://api:6443\"]\n  bootstrap_token: {TOKEN}\n  \
         ca_cert_hashes: [\"{PIN}\"]\nrole: worker\n"
    )
}

/// The error for `full_yaml()` with `from` replaced by `to`.
fn error_with(from: &str, to: &str) -> String {
    let doc = full_yaml();
    assert!(doc.contains(from), "test bug: {from:?} not in the document");
    NodeSettings::from_yaml_str(&doc.replacen(from, to, 1))
        .expect_err(&format!("{from:?} -> {to:?} was accepted"))
        .to_string()
}

fn assert_error(from: &str, to: &str, expected: &str) {
    let err = error_with(from, to);
    assert!(
        err.contains(expected),
        "{from:?} -> {to:?}:\n  got {err}\n  want {expected}"
    );
}

#[test]
fn full_document_parses_with_every_field() {
    let s = NodeSettings::from_yaml_str(&full_yaml()).unwrap();
    assert_eq!(s.role, Role::ControlPlane);
    let cluster = s.cluster.as_ref().unwrap();
    assert_eq!(cluster.api_endpoints.len(), 2);
    assert_eq!(cluster.bootstrap_token.expose(), TOKEN);
    assert_eq!(cluster.bootstrap_token.id(), "abcdef");
    assert_eq!(s.node.labels["gpu"], "");
    assert_eq!(s.node.taints.len(), 2);
    assert_eq!(s.kubelet.max_pods, 250);
    assert_eq!(s.kubelet.pod_cidr.unwrap().to_string(), "10.244.0.0/23");
    assert_eq!(s.firewall.cni, Cni::Vxlan);
    assert_eq!(s.firewall.ssh_sources[1].to_string(), "2001:db8::/32");
    let bounds: Vec<_> = s
        .firewall
        .rules
        .iter()
        .map(|r| r.ports.bounds().unwrap())
        .collect();
    assert_eq!(bounds, [(80, 80), (30000, 32767), (53, 53)]);
    assert_eq!(s.firewall.rules[2].protocol, Protocol::Udp);
    assert_eq!(
        s.ipvs,
        IpvsSettings {
            enabled: true,
            scheduler: IpvsScheduler::Wrr,
            strict_arp: true
        }
    );
}

#[test]
fn defaults_for_everything_but_cluster_and_role() {
    let s = NodeSettings::from_yaml_str(&minimal_yaml()).unwrap();
    assert_eq!(s.role, Role::Worker);
    assert_eq!(s.kubelet.max_pods, 110);
    assert_eq!(s.kubelet.pod_cidr, None);
    assert_eq!(s.node, NodeMeta::default());
    assert_eq!(s.firewall.cni, Cni::None);
    assert!(s.firewall.ssh_sources.is_empty() && s.firewall.rules.is_empty());
    assert_eq!(s.ipvs, IpvsSettings::default());
    assert_eq!(s.ipvs.scheduler, IpvsScheduler::Rr);
}

#[test]
fn json_and_yaml_value_give_the_same_settings() {
    let from_yaml = NodeSettings::from_yaml_str(&full_yaml()).unwrap();
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&full_yaml()).unwrap();
    assert_eq!(NodeSettings::from_yaml_value(&value).unwrap(), from_yaml);
    let json = serde_json::to_string(&value).unwrap();
    assert_eq!(NodeSettings::from_json(&json).unwrap(), from_yaml);
    // A cloud-config hands over the value under its `harmony:` key.
    let cloud_config = format!(
        "#cloud-config\nhostname: n1\nharmony:\n{}",
        minimal_yaml()
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>()
    );
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&cloud_config).unwrap();
    let s = NodeSettings::from_yaml_value(&doc["harmony"]).unwrap();
    assert_eq!(s.role, Role::Worker);
}

#[test]
fn the_token_never_shows_in_debug_serialisation_or_errors() {
    let s = NodeSettings::from_yaml_str(&full_yaml()).unwrap();
    let debug = format!("{s:?}");
    assert!(!debug.contains("0123456789abcdef"), "{debug}");
    assert!(
        debug.contains("BootstrapToken(abcdef.<redacted>)"),
        "{debug}"
    );
    let json = serde_json::to_string(&s).unwrap();
    assert!(
        !json.contains("0123456789abcdef") && !json.contains("bootstrap_token"),
        "{json}"
    );
    assert!(json.contains("\"pod_cidr\":\"10.244.0.0/23\""), "{json}");
    let err = error_with(TOKEN, "abcdef.0123456789ABCDEF");
    assert!(!err.contains("0123456789"), "{err}");
    assert_eq!(
        err,
        "harmony.cluster.bootstrap_token: must match [a-z0-9]{6}.[a-z0-9]{16} \
         (the value is a secret and is not shown)"
    );
}

#[test]
fn unknown_keys_are_errors_with_their_path() {
    assert_error(
        "role: control-plane",
        "role: control-plane\nzone: a",
        "harmony.zone: unknown field `zone`, expected one of `cluster`, `role`",
    );
    assert_error(
        "  max_pods: 250",
        "  max_pods: 250\n  maxPods: 3",
        "harmony.kubelet.maxPods: unknown field `maxPods`",
    );
    assert_error(
        "  strict_arp: true",
        "  strict_arp: true\n  mode: x",
        "harmony.ipvs.mode: unknown field `mode`",
    );
    assert_error(
        "{ports: \"80\", protocol: tcp,",
        "{ports: \"80\", proto: tcp, protocol: tcp,",
        "harmony.firewall.rules[0].proto: unknown field `proto`",
    );
    assert_error(
        "  taints:",
        "  annotations: {}\n  taints:",
        "harmony.node.annotations: unknown field `annotations`",
    );
    assert_error(
        "  ca_cert_hashes:",
        "  ca_cert_hash: x\n  ca_cert_hashes:",
        "harmony.cluster.ca_cert_hash: unknown field `ca_cert_hash`",
    );
}

#[test]
fn missing_required_fields() {
    let no_role = minimal_yaml().replace("role: worker\n", "");
    let err = NodeSettings::from_yaml_str(&no_role)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "harmony: missing field `role`");
    let no_token = minimal_yaml().replace(&format!("  bootstrap_token: {TOKEN}\n"), "");
    let err = NodeSettings::from_yaml_str(&no_token)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "harmony.cluster: missing field `bootstrap_token`");
    let err = NodeSettings::from_yaml_str("cluster: [\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("harmony: not valid YAML: "), "{err}");
    let err = NodeSettings::from_json("{").unwrap_err().to_string();
    assert!(err.starts_with("harmony: not valid JSON: "), "{err}");
}

#[test]
fn api_endpoint_rules() {
    assert_error(
        "[\"https://api.k8s.example.com:6443\", \"https://10.0.0.11:6443\"]",
        "[]",
        "harmony.cluster.api_endpoints: at least one endpoint is required",
    );
    assert_error(
        "\"https://10.0.0.11:6443\"",
        "\"http://10.0.0.11:6443\"",
        "harmony.cluster.api_endpoints[1]: \"http://10.0.0.11:6443\" must start with https://",
    );
    assert_error(
        "\"https://10.0.0.11:6443\"",
        "\"https://10.0.0.11\"",
        "harmony.cluster.api_endpoints[1]: \"https://10.0.0.11\" must give a port",
    );
    assert_error(
        "\"https://10.0.0.11:6443\"",
        "\"https://API.k8s.example.com:6443\"",
        "harmony.cluster.api_endpoints[1]: \"https://API.k8s.example.com:6443\" is listed twice",
    );
}

#[test]
fn ca_pin_rules() {
    assert_error(
        &format!("[\"{PIN}\"]"),
        "[]",
        "harmony.cluster.ca_cert_hashes: at least one sha256:<hex> CA public key pin is required",
    );
    assert_error(
        PIN,
        "sha1:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c",
        "harmony.cluster.ca_cert_hashes[0]: \"sha1:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c\" is not sha256: followed by 64 hex digits",
    );
    assert_error(
        PIN,
        &PIN[..PIN.len() - 1],
        "harmony.cluster.ca_cert_hashes[0]",
    );
    assert_error(
        PIN,
        &PIN.replace('7', "g"),
        "is not sha256: followed by 64 hex digits",
    );
    // kubeadm decodes the hex case-insensitively.
    NodeSettings::from_yaml_str(
        &full_yaml().replace(PIN, &PIN.to_uppercase().replace("SHA256", "sha256")),
    )
    .unwrap();
}

#[test]
fn role_rules() {
    assert_error(
        "role: control-plane",
        "role: master",
        "harmony.role: unknown variant `master`, expected `control-plane` or `worker`",
    );
}

#[test]
fn label_rules() {
    assert_error(
        "example.com/tier: infra",
        "example.com/tier: has space",
        "harmony.node.labels.example.com/tier: value \"has space\" must be empty or 1-63 characters",
    );
    assert_error(
        "example.com/tier: infra",
        "Example.com/tier: infra",
        "harmony.node.labels.Example.com/tier: key \"Example.com/tier\": prefix",
    );
    assert_error(
        "example.com/tier: infra",
        "node-role.kubernetes.io/control-plane: \"\"",
        "harmony.node.labels.node-role.kubernetes.io/control-plane: key \"node-role.kubernetes.io/control-plane\" is in a Kubernetes-reserved namespace",
    );
    assert_error(
        "example.com/tier: infra",
        "example.com/tier: true",
        "harmony.node.labels.example.com/tier: invalid type: boolean `true`, expected a string",
    );
}

#[test]
fn taint_rules() {
    assert_error(
        "\"dedicated=infra:NoSchedule\"",
        "\"dedicated=infra:Never\"",
        "harmony.node.taints[0]: \"dedicated=infra:Never\": effect \"Never\" is not one of NoSchedule, PreferNoSchedule, NoExecute",
    );
    assert_error(
        "\"example.com/gpu:NoExecute\"",
        "\"dedicated=other:NoSchedule\"",
        "harmony.node.taints[1]: a taint with key \"dedicated\" and effect NoSchedule is already given",
    );
    assert_error(
        "\"dedicated=infra:NoSchedule\"",
        "\"dedicated\"",
        "harmony.node.taints[0]: \"dedicated\" is not a taint",
    );
    // The same key with another effect is a different taint.
    NodeSettings::from_yaml_str(&full_yaml().replace(
        "\"example.com/gpu:NoExecute\"",
        "\"dedicated=infra:NoExecute\"",
    ))
    .unwrap();
}

#[test]
fn max_pods_rules() {
    assert_error(
        "max_pods: 250",
        "max_pods: 300",
        "harmony.kubelet.max_pods: 300 exceeds 250, the most a node is run with",
    );
    assert_error(
        "max_pods: 250",
        "max_pods: 0",
        "harmony.kubelet.max_pods: must be at least 1",
    );
    assert_error(
        "max_pods: 250",
        "max_pods: -1",
        "harmony.kubelet.max_pods: invalid value: integer `-1`",
    );
    assert_error(
        "max_pods: 250",
        "max_pods: many",
        "harmony.kubelet.max_pods: invalid type: string \"many\"",
    );
}

#[test]
fn pod_cidr_must_hold_twice_max_pods() {
    // A /24 has 254 usable addresses: 127 pods at most, so 110 fits and 250 does not.
    assert_error(
        "pod_cidr: 10.244.0.0/23",
        "pod_cidr: 10.244.0.0/24",
        "harmony.kubelet.max_pods: 250 pods need 2 × 250 = 500 pod addresses, but \
         harmony.kubelet.pod_cidr 10.244.0.0/24 has 254 usable addresses (at most 127 pods;",
    );
    let doc = full_yaml()
        .replace("max_pods: 250", "max_pods: 127")
        .replace("/23", "/24");
    NodeSettings::from_yaml_str(&doc).unwrap();
    let doc = full_yaml()
        .replace("max_pods: 250", "max_pods: 128")
        .replace("/23", "/24");
    assert!(NodeSettings::from_yaml_str(&doc).is_err());
    assert_error(
        "pod_cidr: 10.244.0.0/23",
        "pod_cidr: 10.244.1.0/23",
        "harmony.kubelet.pod_cidr: \"10.244.1.0/23\" has host bits set; the network is 10.244.0.0/23",
    );
    assert_error(
        "pod_cidr: 10.244.0.0/23",
        "pod_cidr: 10.244.0.0",
        "harmony.kubelet.pod_cidr: \"10.244.0.0\" is not a CIDR",
    );
    // IPv6 ranges count every address: a /120 holds 128 pods, a /64 any number.
    assert_error(
        "pod_cidr: 10.244.0.0/23",
        "pod_cidr: \"fd00:10:244:1::/120\"",
        "harmony.kubelet.pod_cidr fd00:10:244:1::/120 has 256 usable addresses (at most 128 pods",
    );
    let doc = full_yaml().replace(
        "pod_cidr: 10.244.0.0/23",
        "pod_cidr: \"fd00:10:244:1::/64\"",
    );
    assert_eq!(
        NodeSettings::from_yaml_str(&doc).unwrap().kubelet.max_pods,
        250
    );
}

#[test]
fn firewall_rules() {
    assert_error(
        "cni: vxlan",
        "cni: flannel",
        "harmony.firewall.cni: unknown variant `flannel`, expected one of `vxlan`, `bgp`, `ipip`, `none`",
    );
    assert_error(
        "ssh_sources: [192.0.2.0/24,",
        "ssh_sources: [192.0.2.1/24,",
        "harmony.firewall.ssh_sources[0]: \"192.0.2.1/24\" has host bits set",
    );
    assert_error(
        "ports: \"80\"",
        "ports: \"0\"",
        "harmony.firewall.rules[0].ports: port 0 is out of range (1..=65535)",
    );
    assert_error(
        "ports: \"80\"",
        "ports: 70000",
        "harmony.firewall.rules[0].ports: port 70000 is out of range",
    );
    assert_error(
        "ports: 30000-32767",
        "ports: 32767-30000",
        "harmony.firewall.rules[1].ports: range \"32767-30000\" runs backwards",
    );
    assert_error(
        "ports: \"80\"",
        "ports: http",
        "harmony.firewall.rules[0].ports: \"http\" is not a port or range",
    );
    assert_error(
        "ports: \"80\"",
        "ports: [80]",
        "harmony.firewall.rules[0].ports: invalid type: sequence, expected a port (80)",
    );
    assert_error(
        "protocol: udp",
        "protocol: sctp",
        "harmony.firewall.rules[2].protocol: unknown variant `sctp`, expected `tcp` or `udp`",
    );
    assert_error(
        "sources: [0.0.0.0/0]",
        "sources: []",
        "harmony.firewall.rules[0].sources: at least one source is required",
    );
    assert_error(
        "sources: [0.0.0.0/0]",
        "sources: [anywhere]",
        "harmony.firewall.rules[0].sources[0]: \"anywhere\" is not a CIDR",
    );
}

#[test]
fn ipvs_rules() {
    assert_error(
        "scheduler: wrr",
        "scheduler: fifo",
        "harmony.ipvs.scheduler: unknown variant `fifo`, expected one of `rr`, `wrr`, `lc`, `wlc`, `lblc`, `lblcr`, `sh`, `dh`, `sed`, `nq`",
    );
    assert_error(
        "enabled: true",
        "enabled: yes",
        "harmony.ipvs.enabled: invalid type: string \"yes\", expected a boolean",
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let doc = full_yaml()
        .replace("max_pods: 250", "max_pods: 300")
        .replace("\"80\"", "\"0\"");
    let err = NodeSettings::from_yaml_str(&doc).unwrap_err();
    let paths: Vec<_> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "kubelet.max_pods",
            "kubelet.max_pods",
            "firewall.rules[0].ports"
        ]
    );
    assert!(
        err.to_string()
            .contains("; harmony.kubelet.max_pods: 300 pods need"),
        "{err}"
    );
}

#[test]
fn found_in_an_ignition_node_config() {
    let mut cfg = NodeConfig::default();
    assert_eq!(NodeSettings::from_node_config(&cfg), Ok(None));
    cfg.files.push(FileEntry {
        path: "/etc/motd".into(),
        contents: Some(crate::Contents::from("hi")),
        ..Default::default()
    });
    cfg.files.push(FileEntry {
        path: NODE_YAML_PATH.into(),
        ..Default::default()
    });
    assert_eq!(NodeSettings::from_node_config(&cfg), Ok(None));
    // Contents and an appended fragment are read together, in order.
    let text = minimal_yaml();
    let (head, tail) = text.split_at(text.find("role:").unwrap());
    cfg.files[1].contents = Some(head.into());
    cfg.files[1].append = vec![tail.into()];
    let s = NodeSettings::from_node_config(&cfg).unwrap().unwrap();
    assert_eq!(s.role, Role::Worker);
    cfg.files[1].append = vec![b"kubelet: {max_pods: 999}\n".to_vec().into()];
    let err = NodeSettings::from_node_config(&cfg)
        .unwrap_err()
        .to_string();
    assert!(err.contains("harmony: missing field `role`"), "{err}");
    cfg.files[1].append.clear();
    cfg.files[1].contents = Some(vec![0xffu8, 0xfe].into());
    let err = NodeSettings::from_node_config(&cfg)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "harmony: /etc/harmony/node.yaml is not UTF-8 text");
}

#[test]
fn pod_pids_limit_defaults_and_rules() {
    let s = NodeSettings::from_yaml_str(&minimal_yaml()).unwrap();
    assert_eq!(s.kubelet.pod_pids_limit, DEFAULT_POD_PIDS_LIMIT);
    let with = |v: &str| {
        NodeSettings::from_yaml_str(&format!(
            "{}kubelet: {{pod_pids_limit: {v}}}\n",
            minimal_yaml()
        ))
    };
    assert_eq!(with("-1").unwrap().kubelet.pod_pids_limit, -1);
    assert_eq!(with("1024").unwrap().kubelet.pod_pids_limit, 1024);
    let err = with("8").unwrap_err().to_string();
    assert!(
        err.starts_with("harmony.kubelet.pod_pids_limit: 8 is too small"),
        "{err}"
    );
    assert!(with("0").is_err());
    assert!(with("-2").is_err());
}

#[test]
fn label_lists_from_a_platform() {
    let labels = parse_label_list(" example.com/rack=r1 , zone=eu-1,gpu=").unwrap();
    assert_eq!(
        labels.into_iter().collect::<Vec<_>>(),
        [
            ("example.com/rack".to_string(), "r1".to_string()),
            ("gpu".to_string(), String::new()),
            ("zone".to_string(), "eu-1".to_string()),
        ]
    );
    assert!(parse_label_list("").unwrap().is_empty());
    for (bad, why) in [
        ("novalue", "\"novalue\" is not key=value"),
        ("a=1,a=2", "label \"a\" is given twice"),
        (
            "node-role.kubernetes.io/master=",
            "Kubernetes-reserved namespace",
        ),
        ("bad key=1", "label \"bad key\""),
        ("k=not ok", "label \"k\""),
    ] {
        let err = parse_label_list(bad).unwrap_err();
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn discovery_timeout_is_optional_and_bounded() {
    let s = NodeSettings::from_yaml_str(&minimal_yaml()).unwrap();
    assert_eq!(s.cluster.unwrap().discovery_timeout_seconds, None);
    let with = |t: &str| {
        minimal_yaml().replacen(
            "  ca_cert_hashes:",
            &format!("  discovery_timeout_seconds: {t}\n  ca_cert_hashes:"),
            1,
        )
    };
    let s = NodeSettings::from_yaml_str(&with("30")).unwrap();
    assert_eq!(s.cluster.unwrap().discovery_timeout_seconds, Some(30));
    for bad in ["0", "3601"] {
        let err = NodeSettings::from_yaml_str(&with(bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "harmony.cluster.discovery_timeout_seconds: {bad} is not 1..=3600 seconds"
            )),
            "{err}"
        );
    }
}

#[test]
fn without_cluster_the_node_is_configured_and_joins_nothing() {
    let s = NodeSettings::from_yaml_str(
        "role: worker\nkubelet: {max_pods: 50}\nfirewall: {ssh_sources: [10.0.0.0/8]}\n\
         kube_proxy: {mode: nftables}\n",
    )
    .unwrap();
    assert_eq!(s.cluster, None);
    assert_eq!(s.kubelet.max_pods, 50);
    assert_eq!(s.proxy_mode(), Some(ProxyMode::Nftables));
    // Serialised (report, plan) without a `cluster` key.
    let yaml = serde_yaml_ng::to_string(&s).unwrap();
    assert!(!yaml.contains("cluster"), "{yaml}");
}

#[test]
fn kube_proxy_mode_and_the_older_ipvs_switch() {
    let with = |extra: &str| NodeSettings::from_yaml_str(&format!("{}{extra}", minimal_yaml()));
    assert_eq!(with("").unwrap().proxy_mode(), None);
    assert_eq!(
        with("ipvs: {enabled: true}\n").unwrap().proxy_mode(),
        Some(ProxyMode::Ipvs)
    );
    for (mode, want) in [
        ("ipvs", ProxyMode::Ipvs),
        ("nftables", ProxyMode::Nftables),
        ("iptables", ProxyMode::Iptables),
    ] {
        let s = with(&format!("kube_proxy: {{mode: {mode}}}\n")).unwrap();
        assert_eq!(s.proxy_mode(), Some(want));
    }
    // Both saying IPVS agree; disagreeing is refused, naming both settings.
    assert!(with("kube_proxy: {mode: ipvs}\nipvs: {enabled: true, scheduler: lc}\n").is_ok());
    let err = with("kube_proxy: {mode: nftables}\nipvs: {enabled: true}\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("harmony.ipvs.enabled: true asks for kube-proxy's IPVS mode, but harmony.kube_proxy.mode is nftables"),
        "{err}"
    );
    let err = with("kube_proxy: {mode: userspace}\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("harmony.kube_proxy.mode: unknown variant `userspace`, expected one of `ipvs`, `nftables`, `iptables`"),
        "{err}"
    );
    let err = with("kube_proxy: {}\n").unwrap_err().to_string();
    assert!(
        err.contains("harmony.kube_proxy: missing field `mode`"),
        "{err}"
    );
}

#[test]
fn control_plane_settings_are_checked_and_the_key_never_shown() {
    let key = "0f".repeat(32);
    let with = |role: &str, cp: &str| {
        NodeSettings::from_yaml_str(&minimal_yaml().replace(
            "role: worker\n",
            &format!("  control_plane: {cp}\n{role}\n"),
        ))
    };
    let s = with(
        "role: control-plane",
        &format!("{{init: true, endpoint: \"10.0.0.100:6443\", certificate_key: \"{key}\"}}"),
    )
    .unwrap();
    let cp = s.cluster.as_ref().unwrap().control_plane.as_ref().unwrap();
    assert!(cp.init);
    assert_eq!(cp.certificate_key.expose(), key);
    assert!(!format!("{s:?}").contains(&key));
    assert!(!serde_json::to_string(&s).unwrap().contains(&key));
    // `init` defaults to false: a node that joins the first.
    let s = with(
        "role: control-plane",
        &format!("{{endpoint: \"api.example.com:6443\", certificate_key: \"{key}\"}}"),
    )
    .unwrap();
    assert!(!s.cluster.unwrap().control_plane.unwrap().init);
    let err = with(
        "role: worker",
        "{endpoint: \"https://10.0.0.100:6443\", certificate_key: \"secretvalue\"}",
    )
    .unwrap_err()
    .to_string();
    for want in [
        "harmony.cluster.control_plane: is for control-plane nodes",
        "harmony.cluster.control_plane.endpoint: \"https://10.0.0.100:6443\" must be host:port",
        "harmony.cluster.control_plane.certificate_key: must be 64 hex digits",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    assert!(!err.contains("secretvalue"), "{err}");
}
