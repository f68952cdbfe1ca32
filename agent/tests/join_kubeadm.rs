//! Control planes through kubeadm, with a stand-in `kubeadm` in the root that records
//! its arguments and the config file it was given (no kubeadm can be had here): the
//! first node runs `kubeadm init --config FILE --upload-certs` from an
//! InitConfiguration, the others `kubeadm join --config FILE` from a JoinConfiguration;
//! the file is 0600, and neither the token nor the certificate key reach the report.

// Test helpers may unwrap (the workspace denies it in production code).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use harmony_agent::firstboot::{run, FirstbootOptions};
use harmony_agent::sources::HostPaths;
use harmony_agent::target_root::TargetRoot;

const TOKEN: &str = "abcdef.0123456789abcdef";
const PIN: &str = "sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708";
const KEY: &str = "3c0b6a2c1f9e8d7c6b5a49382716a5b4c3d2e1f00112233445566778899aabbc";

/// Records `$@` and the `--config` file beside itself, and prints what kubeadm init
/// prints: the join command with the token and the certificate key.
const STAND_IN: &str = r#"#!/bin/sh
here=$(dirname "$0")
printf '%s\n' "$@" > "$here/kubeadm.args"
while [ $# -gt 0 ]; do
  [ "$1" = --config ] && cp "$2" "$here/kubeadm.config" && config=$2
  shift
done
token=$(sed -n 's/.*token: "\(.*\)"/\1/p' "$config" | head -n1)
key=$(sed -n 's/.*certificateKey: "\(.*\)"/\1/p' "$config")
echo "You can now join any number of control-plane nodes running:"
echo "  kubeadm join 10.0.0.100:6443 --token $token --control-plane --certificate-key $key"
"#;

fn user_data(init: bool) -> String {
    format!(
        "#cloud-config\nharmony:\n  role: control-plane\n  kube_proxy: {{mode: nftables}}\n  \
         cluster:\n    api_endpoints: [\"https://10.0.0.11:6443\", \"https://10.0.0.12:6443\"]\n    \
         bootstrap_token: {TOKEN}\n    ca_cert_hashes: [\"{PIN}\"]\n    control_plane:\n      \
         init: {init}\n      endpoint: \"10.0.0.100:6443\"\n      certificate_key: \"{KEY}\"\n"
    )
}

/// A root with the stand-in at /usr/bin/kubeadm; first boot with `user_data`, kubeadm
/// run as on the live root. Returns the report as stored.
fn first_boot(dir: &Path, init: bool) -> serde_json::Value {
    let (root, host) = (dir.join("root"), dir.join("host"));
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    let kubeadm = root.join("usr/bin/kubeadm");
    std::fs::write(&kubeadm, STAND_IN).unwrap();
    std::fs::set_permissions(&kubeadm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("user-data");
    std::fs::write(&config, user_data(init)).unwrap();
    // On a tree (not the running system) first boot writes the config, runs nothing.
    let report = run(&FirstbootOptions {
        root: root.clone(),
        host: HostPaths::new(&host),
        platform: Some("file".into()),
        config_file: Some(config.clone()),
        command_timeout: Duration::from_secs(10),
    })
    .unwrap();
    assert_eq!(
        report.status,
        harmony_agent::report::Status::Success,
        "{:?}",
        report.error
    );
    serde_json::from_slice(&std::fs::read(root.join("var/lib/harmony/firstboot.json")).unwrap())
        .unwrap()
}

fn settings(init: bool) -> ignition::node_settings::NodeSettings {
    let cfg = harmony_agent::config_format::node_config(
        user_data(init).as_bytes(),
        None,
        &harmony_agent::fetch::NetFetcher::default(),
    )
    .unwrap();
    ignition::node_settings::NodeSettings::from_node_config(&cfg)
        .unwrap()
        .unwrap()
}

/// The join step as first boot runs it on the live root (kubeadm started).
fn live_join(root: &Path, init: bool) -> harmony_agent::join::kubeadm::KubeadmReport {
    let opts = harmony_agent::join::JoinOptions {
        start: Some(Default::default()),
        ..Default::default()
    };
    harmony_agent::join::control_plane(&settings(init), &TargetRoot::new(root), &opts).unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn the_first_control_plane_runs_kubeadm_init_with_the_rendered_init_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // First boot on a tree: the config is written, kubeadm not run, the report says so.
    let stored = first_boot(dir.path(), true);
    let j = &stored["join"];
    assert_eq!(j["kubeadm"], "init", "{stored}");
    assert!(j["outcome"].as_str().unwrap().starts_with("not run"), "{j}");
    let root = dir.path().join("root");
    let config = root.join("etc/kubernetes/harmony-kubeadm.yaml");
    assert_eq!(mode(&config), 0o600);
    assert!(!root.join("usr/bin/kubeadm.args").exists());

    // On the live root kubeadm runs with its real flags and the config file.
    let report = live_join(&root, true);
    let args = std::fs::read_to_string(root.join("usr/bin/kubeadm.args")).unwrap();
    let config_host = config.display().to_string();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["init", "--config", config_host.as_str(), "--upload-certs"]
    );
    let given = std::fs::read_to_string(root.join("usr/bin/kubeadm.config")).unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&given)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "InitConfiguration",
            "ClusterConfiguration",
            "KubeletConfiguration",
            "KubeProxyConfiguration"
        ]
    );
    let init = &docs[0];
    assert_eq!(init["apiVersion"], "kubeadm.k8s.io/v1beta4");
    assert_eq!(init["certificateKey"], KEY);
    assert_eq!(init["bootstrapTokens"][0]["token"], TOKEN);
    assert_eq!(
        init["bootstrapTokens"][0]["groups"][0],
        "system:bootstrappers:kubeadm:default-node-token"
    );
    let cluster = &docs[1];
    assert_eq!(cluster["apiVersion"], "kubeadm.k8s.io/v1beta4");
    assert_eq!(cluster["controlPlaneEndpoint"], "10.0.0.100:6443");
    assert_eq!(cluster["networking"]["serviceSubnet"], "10.96.0.0/12");
    assert_eq!(docs[3]["mode"], "nftables");

    // kubeadm's output is kept, its secrets are not.
    assert_eq!(report.exit_code, Some(0));
    assert!(
        report.output_tail.contains("--token <redacted>"),
        "{}",
        report.output_tail
    );
    assert!(report.output_tail.contains("--certificate-key <redacted>"));
    let json = serde_json::to_string(&report).unwrap();
    let text = serde_json::to_string(&stored).unwrap();
    for secret in [KEY, "0123456789abcdef"] {
        assert!(!json.contains(secret) && !text.contains(secret), "{json}");
    }
}

#[test]
fn the_other_control_planes_join_with_the_same_pins_and_the_certificate_key() {
    let dir = tempfile::tempdir().unwrap();
    let stored = first_boot(dir.path(), false);
    assert_eq!(stored["join"]["kubeadm"], "join-control-plane", "{stored}");
    let root = dir.path().join("root");
    live_join(&root, false);
    let args = std::fs::read_to_string(root.join("usr/bin/kubeadm.args")).unwrap();
    let config = root.join("etc/kubernetes/harmony-kubeadm.yaml");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["join", "--config", config.display().to_string().as_str()]
    );
    let given: serde_yaml_ng::Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root.join("usr/bin/kubeadm.config")).unwrap(),
    )
    .unwrap();
    assert_eq!(given["apiVersion"], "kubeadm.k8s.io/v1beta4");
    assert_eq!(given["kind"], "JoinConfiguration");
    let token = &given["discovery"]["bootstrapToken"];
    assert_eq!(token["apiServerEndpoint"], "10.0.0.11:6443");
    assert_eq!(token["token"], TOKEN);
    assert_eq!(token["caCertHashes"][0], PIN);
    assert_eq!(given["controlPlane"]["certificateKey"], KEY);
}

#[test]
fn a_control_plane_without_kubeadm_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = harmony_agent::config_format::node_config(
        user_data(true).as_bytes(),
        None,
        &harmony_agent::fetch::NetFetcher::default(),
    )
    .unwrap();
    let err = harmony_agent::plan::plan(&cfg, &TargetRoot::new(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "harmony.cluster.control_plane: kubeadm not installed (looked at /usr/bin/kubeadm"
        ),
        "{err}"
    );
    // With kubeadm, `plan` shows what will run, without the secrets.
    std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
    std::fs::write(dir.path().join("usr/bin/kubeadm"), STAND_IN).unwrap();
    let plan = harmony_agent::plan::plan(&cfg, &TargetRoot::new(dir.path())).unwrap();
    let line = plan.join.as_ref().unwrap().to_string();
    assert_eq!(
        line,
        "join      control plane: write /etc/kubernetes/harmony-kubeadm.yaml (0600) and run \
         /usr/bin/kubeadm init --config /etc/kubernetes/harmony-kubeadm.yaml --upload-certs \
         (controlPlaneEndpoint 10.0.0.100:6443); kubeadm starts kubelet"
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert!(!json.contains(KEY) && !json.contains("0123456789abcdef"));
}
