//! Applying plans into scratch roots: bytes, modes, owners, links, idempotence.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::*;

fn plan_for(root: &TargetRoot, json: &str) -> Plan {
    let doc = format!(r#"{{"ignition":{{"version":"3.4.0"}}{json}}}"#);
    let cfg = ignition::node_config(doc.as_bytes(), &ignition::NoRemoteFetcher).unwrap();
    crate::plan::plan(&cfg, root).unwrap()
}

const CONFIG: &str = r#","storage":{
    "files":[{"path":"/etc/motd","overwrite":true,"contents":{"source":"data:,hello%0A"},"mode":420},
             {"path":"/usr/local/bin/tool","overwrite":true,"contents":{"source":"data:,%23!/bin/sh%0A"},"mode":3565,"user":{"id":1000},"group":{"id":1000}}],
    "directories":[{"path":"/srv/data","mode":488}],
    "links":[{"path":"/etc/localtime","target":"/usr/share/zoneinfo/UTC"},{"path":"/etc/motd.hard","target":"/etc/motd","hard":true}]},
  "systemd":{"units":[{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"},{"name":"bad.service","mask":true}]}"#;

#[test]
fn writes_what_the_plan_says_and_again_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = TargetRoot::new(d.path());
    let p = plan_for(&root, CONFIG);
    assert!(apply(&p, &root).unwrap().iter().all(|c| *c));
    let at = |p: &str| d.path().join(p);
    assert_eq!(fs::read(at("etc/motd")).unwrap(), b"hello\n");
    let tool = fs::metadata(at("usr/local/bin/tool")).unwrap();
    // 3565 = 0o6755: setuid and setgid survive the chown because chmod comes after it.
    assert_eq!(tool.permissions().mode() & 0o7777, 0o6755);
    assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
    assert_eq!(
        fs::metadata(at("usr/local")).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        fs::metadata(at("srv/data")).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    assert_eq!(
        fs::read_link(at("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(
        fs::metadata(at("etc/motd.hard")).unwrap().ino(),
        fs::metadata(at("etc/motd")).unwrap().ino()
    );
    assert_eq!(
        fs::read_link(at(
            "etc/systemd/system/multi-user.target.wants/hello.service"
        ))
        .unwrap(),
        Path::new("/etc/systemd/system/hello.service")
    );
    assert_eq!(
        fs::read_link(at("etc/systemd/system/bad.service")).unwrap(),
        Path::new("/dev/null")
    );
    let mtime = fs::metadata(at("etc/motd")).unwrap().mtime_nsec();

    // The same plan again, and a fresh plan of the same config: no change at all.
    assert!(apply(&p, &root).unwrap().iter().all(|c| !*c));
    let again = plan_for(&root, CONFIG);
    assert!(apply(&again, &root).unwrap().iter().all(|c| !*c));
    assert_eq!(fs::metadata(at("etc/motd")).unwrap().mtime_nsec(), mtime);
    let leftovers: Vec<_> = fs::read_dir(at("etc"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("harmony-tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn overwrite_replaces_a_directory_with_a_file() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc/thing/sub")).unwrap();
    let root = TargetRoot::new(d.path());
    let p = plan_for(
        &root,
        r#","storage":{"files":[{"path":"/etc/thing","overwrite":true,"contents":{"source":"data:,f"}}]}"#,
    );
    apply(&p, &root).unwrap();
    assert_eq!(fs::read(d.path().join("etc/thing")).unwrap(), b"f");
    // The Remove guards on the kind it expected: a second run leaves the new file alone.
    assert!(apply(&p, &root).unwrap().iter().all(|c| !*c));
    assert_eq!(fs::read(d.path().join("etc/thing")).unwrap(), b"f");
}
