//! First boot end to end against a fake root and a fake fw_cfg in sysfs.

use super::*;

struct Fake {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host: PathBuf,
}

fn fake(config: Option<&str>) -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let host = dir.path().join("host");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir_all(host.join("proc")).unwrap();
    std::fs::write(
        host.join("proc/cmdline"),
        "console=ttyS0 ignition.platform.id=qemu\n",
    )
    .unwrap();
    let entry = host.join("sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config");
    std::fs::create_dir_all(&entry).unwrap();
    if let Some(c) = config {
        std::fs::write(entry.join("raw"), c).unwrap();
    }
    Fake {
        _dir: dir,
        root,
        host,
    }
}

fn opts(f: &Fake) -> FirstbootOptions {
    FirstbootOptions {
        root: f.root.clone(),
        host: HostPaths::new(&f.host),
        platform: None,
        config_file: None,
        command_timeout: DEFAULT_COMMAND_TIMEOUT,
    }
}

fn stored(f: &Fake) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(f.root.join("var/lib/harmony/firstboot.json")).unwrap())
        .unwrap()
}

const GOOD: &str = r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","mode":420,"contents":{"source":"data:,hi"}}],"directories":[{"path":"/srv/data","mode":488}],"links":[{"path":"/etc/localtime","target":"/usr/share/zoneinfo/UTC"}]},"systemd":{"units":[{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]}}"#;

#[test]
fn first_run_succeeds_second_is_already_done() {
    let f = fake(Some(GOOD));
    let r = run(&opts(&f)).unwrap();
    assert_eq!(r.status, Status::Success);
    assert_eq!(std::fs::read(f.root.join("etc/motd")).unwrap(), b"hi");
    let j = stored(&f);
    let raw = std::fs::read_to_string(f.root.join("var/lib/harmony/firstboot.json")).unwrap();
    assert!(raw.starts_with(r#"{"status":"success","platform":"qemu","source":"fw_cfg:opt/com.coreos/config","config_sha256":""#), "{raw}");
    assert_eq!(j["status"], "success");
    assert_eq!(j["platform"], "qemu");
    assert_eq!(j["source"], "fw_cfg:opt/com.coreos/config");
    assert_eq!(
        j["config_sha256"],
        hex::encode(Sha256::digest(GOOD.as_bytes()))
    );
    assert_eq!(j["error"], serde_json::Value::Null);
    assert!(j["started_at"].as_str().unwrap().ends_with('Z'));
    let written = j["written"].as_array().unwrap();
    assert!(written.iter().any(|w| w["path"] == "/etc/motd"));
    assert!(
        raw.contains(&format!(
            r#"{{"path":"/etc/motd","type":"file","mode":"0644","uid":0,"gid":0,"sha256":"{}"}}"#,
            hex::encode(Sha256::digest(b"hi"))
        )),
        "{raw}"
    );
    assert!(
        raw.contains(r#"{"path":"/srv/data","type":"directory","mode":"0750","uid":0,"gid":0}"#),
        "{raw}"
    );
    assert!(raw.contains(r#"{"path":"/etc/localtime","type":"link","target":"/usr/share/zoneinfo/UTC","hard":false}"#), "{raw}");
    assert!(
        raw.ends_with(concat!(
            r#""units":[{"name":"hello.service","enabled":true,"masked":false}],"warnings":[],"#,
            r#""commands":[],"secure_boot":false,"verity_root_hash":null,"image":null}"#
        )),
        "{raw}"
    );

    std::fs::write(f.root.join("etc/motd"), "changed by hand").unwrap();
    let again = run(&opts(&f)).unwrap();
    assert_eq!(again.status, Status::AlreadyDone);
    assert_eq!(
        std::fs::read(f.root.join("etc/motd")).unwrap(),
        b"changed by hand"
    );
    assert_eq!(stored(&f)["status"], "success");
}

#[test]
fn invalid_config_writes_only_the_report_and_retries() {
    let f = fake(Some(
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,hi"}},{"path":"etc/x"}]}}"#,
    ));
    let r = run(&opts(&f)).unwrap();
    assert_eq!(r.status, Status::Failed);
    assert_eq!(
        r.error.as_deref(),
        Some("config from fw_cfg:opt/com.coreos/config: Ignition config: storage.files[1].path: path \"etc/x\" is not absolute")
    );
    assert!(!f.root.join("etc/motd").exists());
    let names: Vec<_> = walk(&f.root);
    assert_eq!(
        names,
        [
            "etc",
            "var",
            "var/lib",
            "var/lib/harmony",
            "var/lib/harmony/firstboot.json"
        ]
    );
    assert_eq!(stored(&f)["status"], "failed");
    // Not stamped as done: the next boot tries again (and fails again here).
    assert_eq!(run(&opts(&f)).unwrap().status, Status::Failed);
}

/// The report carries command output tails and URLs: readable by root only, even when a
/// world-readable report from an older agent is already there.
#[test]
fn the_report_is_readable_by_root_only() {
    use std::os::unix::fs::PermissionsExt;
    let f = fake(Some(GOOD));
    let report = f.root.join("var/lib/harmony/firstboot.json");
    std::fs::create_dir_all(report.parent().unwrap()).unwrap();
    std::fs::write(&report, "{}").unwrap();
    std::fs::set_permissions(&report, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(&opts(&f)).unwrap();
    let mode = std::fs::metadata(&report).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[test]
fn no_config_is_success_with_null_source() {
    let f = fake(None);
    let r = run(&opts(&f)).unwrap();
    assert_eq!(r.status, Status::Success);
    let j = stored(&f);
    assert_eq!(j["source"], serde_json::Value::Null);
    assert_eq!(j["config_sha256"], serde_json::Value::Null);
    assert_eq!(j["written"].to_string(), "[]");
    assert_eq!(j["units"].to_string(), "[]");
}

fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

const USER_DATA: &str = "#cloud-config
write_files:
  - path: /etc/harmony/note.txt
    content: |
      from cloud-config
    permissions: '0640'
packages: [vim]
bootcmd:
  - echo early
runcmd:
  - [touch, /run/harmony-runcmd-ran]
";

/// A NoCloud vfat seed made by cloud-init's own tool, as the only disk of a fake host.
fn nocloud_host(dir: &Path, user_data: &str, meta_data: &str) -> PathBuf {
    nocloud_host_with_network(dir, user_data, meta_data, None)
}

/// [`nocloud_host`] with a `network-config` in the seed (`cloud-localds -N`).
fn nocloud_host_with_network(
    dir: &Path,
    user_data: &str,
    meta_data: &str,
    network_config: Option<&str>,
) -> PathBuf {
    let host = dir.join("host");
    std::fs::create_dir_all(host.join("sys/class/block/vdb")).unwrap();
    std::fs::create_dir_all(host.join("dev")).unwrap();
    std::fs::write(dir.join("user-data"), user_data).unwrap();
    std::fs::write(dir.join("meta-data"), meta_data).unwrap();
    let mut localds = std::process::Command::new("cloud-localds");
    localds.args(["-f", "vfat"]);
    if let Some(n) = network_config {
        std::fs::write(dir.join("network-config"), n).unwrap();
        localds.arg("-N").arg(dir.join("network-config"));
    }
    let status = localds
        .arg(host.join("dev/vdb"))
        .arg(dir.join("user-data"))
        .arg(dir.join("meta-data"))
        .status()
        .expect("cloud-localds (cloud-image-utils) is installed");
    assert!(status.success());
    host
}

#[test]
fn cloud_config_from_a_nocloud_seed_is_applied_with_warnings_and_commands_reported() {
    let dir = tempfile::tempdir().unwrap();
    let host = nocloud_host(
        dir.path(),
        USER_DATA,
        "instance-id: iid-harmony-1\nlocal-hostname: seed-node\n",
    );
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    // cloud-config's files belong to root:root by name.
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let o = FirstbootOptions {
        root: root.clone(),
        host: HostPaths::new(&host),
        platform: None,
        config_file: None,
        command_timeout: DEFAULT_COMMAND_TIMEOUT,
    };
    let r = run(&o).unwrap();
    assert_eq!(r.status, Status::Success, "{r:?}");
    assert_eq!(r.platform.as_deref(), Some("nocloud"));
    assert_eq!(r.source.as_deref(), Some("nocloud:/dev/vdb (vfat)"));
    assert_eq!(
        r.config_sha256,
        Some(hex::encode(Sha256::digest(USER_DATA.as_bytes())))
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/harmony/note.txt")).unwrap(),
        "from cloud-config\n"
    );
    let note = r
        .written
        .iter()
        .find(|w| w.path == "/etc/harmony/note.txt")
        .unwrap();
    assert_eq!(note.mode.as_deref(), Some("0640"));
    // The host name comes from meta-data's local-hostname (user-data names none).
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "seed-node\n"
    );
    let paths: Vec<_> = r.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["packages"], "{:?}", r.warnings);
    // The meta-data's identity is in the report.
    assert_eq!(r.instance_id.as_deref(), Some("iid-harmony-1"));
    assert_eq!(r.hostname.as_deref(), Some("seed-node"));
    // Not the live root: the commands are listed, skipped, and say why.
    let cmds: Vec<_> = r
        .commands
        .iter()
        .map(|c| (c.name.as_str(), c.stage.as_str(), c.outcome))
        .collect();
    assert_eq!(
        cmds,
        [
            ("bootcmd", "early", report::CommandOutcome::Skipped),
            ("runcmd", "late", report::CommandOutcome::Skipped)
        ]
    );
    assert_eq!(
        r.commands[1].error.as_deref(),
        Some(
            format!(
                "commands run only at first boot on the live root, not on {}",
                root.display()
            )
            .as_str()
        )
    );
    assert!(!Path::new("/run/harmony-runcmd-ran").exists());
    let raw = std::fs::read_to_string(root.join("var/lib/harmony/firstboot.json")).unwrap();
    assert!(
        raw.contains(r#""warnings":[{"path":"packages","message":"#),
        "{raw}"
    );
    assert!(
        raw.contains(
            r#""commands":[{"name":"bootcmd","stage":"early","outcome":"skipped","error":"#
        ),
        "{raw}"
    );
}

#[test]
fn invalid_cloud_config_names_the_key_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let host = nocloud_host(
        dir.path(),
        "#cloud-config\nwrite_files:\n  - path: /etc/a\n    content: x\n  - path: /etc/b\n    encoding: rot13\n    content: x\n",
        "instance-id: iid-2\n",
    );
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let r = run(&FirstbootOptions {
        root: root.clone(),
        host: HostPaths::new(&host),
        platform: None,
        config_file: None,
        command_timeout: DEFAULT_COMMAND_TIMEOUT,
    })
    .unwrap();
    assert_eq!(r.status, Status::Failed);
    let err = r.error.unwrap();
    assert!(
        err.starts_with(
            "config from nocloud:/dev/vdb (vfat): cloud-init user-data: write_files[1].encoding: "
        ),
        "{err}"
    );
    assert!(!root.join("etc/a").exists());
}

#[test]
fn node_settings_without_a_cluster_configure_the_node_and_skip_the_join() {
    let f = fake(Some(
        "#cloud-config\nharmony:\n  role: worker\n  kubelet: {max_pods: 42}\n  \
         kube_proxy: {mode: nftables}\n",
    ));
    let r = run(&opts(&f)).unwrap();
    assert_eq!(r.status, Status::Success, "{:?}", r.error);
    let j = stored(&f);
    assert_eq!(j["join"], "skipped: no cluster settings", "{j}");
    let kubelet = std::fs::read_to_string(f.root.join("var/lib/kubelet/config.yaml")).unwrap();
    assert!(kubelet.contains("\nmaxPods: 42\n"), "{kubelet}");
    let proxy = std::fs::read_to_string(f.root.join("etc/kubernetes/kube-proxy.yaml")).unwrap();
    assert!(proxy.ends_with("\nmode: nftables\n"), "{proxy}");
    assert!(f.root.join("etc/nftables.d/harmony.nft").is_file());
    // Nothing of a join: no bootstrap kubeconfig.
    assert!(!f
        .root
        .join("etc/kubernetes/bootstrap-kubelet.conf")
        .exists());
}

#[test]
fn a_network_config_is_reported_as_not_applied_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let host = nocloud_host_with_network(
        dir.path(),
        "#cloud-config\nhostname: net-node\n",
        "instance-id: iid-net\n",
        Some("version: 2\nethernets:\n  eth0:\n    addresses: [192.0.2.10/24]\n"),
    );
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    let r = run(&FirstbootOptions {
        root: root.clone(),
        host: HostPaths::new(&host),
        platform: None,
        config_file: None,
        command_timeout: DEFAULT_COMMAND_TIMEOUT,
    })
    .unwrap();
    assert_eq!(r.status, Status::Success, "{:?}", r.error);
    assert_eq!(r.hostname.as_deref(), Some("net-node"));
    assert_eq!(r.instance_id.as_deref(), Some("iid-net"));
    let w = r
        .warnings
        .iter()
        .find(|w| w.path == "network-config")
        .expect("a warning for the network config");
    assert!(
        w.message
            .starts_with("network config not applied: version 2 from nocloud:/dev/vdb (vfat)"),
        "{}",
        w.message
    );
    let raw = std::fs::read_to_string(root.join("var/lib/harmony/firstboot.json")).unwrap();
    assert!(
        raw.contains(r#""instance_id":"iid-net","hostname":"net-node""#),
        "{raw}"
    );
}
