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
    assert!(raw.ends_with(r#""units":[{"name":"hello.service","enabled":true,"masked":false}]}"#));

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
        Some("config from fw_cfg:opt/com.coreos/config: storage.files[1].path: path \"etc/x\" is not absolute")
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
