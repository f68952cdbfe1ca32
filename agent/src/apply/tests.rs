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

#[test]
fn users_groups_homes_and_keys_then_a_second_apply_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let at = |p: &str| d.path().join(p);
    fs::create_dir_all(at("etc/skel/.config")).unwrap();
    fs::write(at("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(at("etc/group"), "root:x:0:\nusers:x:100:\n").unwrap();
    fs::write(at("etc/shadow"), "root:*:1::::::\n").unwrap();
    fs::set_permissions(at("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(at("etc/skel/.profile"), "PS1='$ '\n").unwrap();
    let root = TargetRoot::new(d.path());
    let config = r#","passwd":{
        "groups":[{"name":"wheel","gid":10}],
        "users":[{"name":"core","groups":["wheel"],"sshAuthorizedKeys":["ssh-ed25519 AAAA a","ssh-rsa BBBB b"]},
                 {"name":"svc","system":true,"noCreateHome":true}]},
      "storage":{"files":[{"path":"/home/core/notes","contents":{"source":"data:,hi"},"user":{"name":"core"},"group":{"name":"wheel"}}]}"#;
    let p = plan_for(&root, config);
    assert_eq!(
        p.accounts,
        [
            "add group wheel gid 10",
            "add user core uid 1000 gid 100 home /home/core shell /bin/bash groups wheel",
            "add user svc uid 999 gid 100 home /home/svc shell /bin/bash",
        ]
    );
    apply(&p, &root).unwrap();
    let passwd = fs::read_to_string(at("etc/passwd")).unwrap();
    assert!(passwd
        .ends_with("core:x:1000:100::/home/core:/bin/bash\nsvc:x:999:100::/home/svc:/bin/bash\n"));
    assert_eq!(
        fs::read_to_string(at("etc/group")).unwrap(),
        "root:x:0:\nusers:x:100:\nwheel:*:10:core\n"
    );
    let shadow = fs::metadata(at("etc/shadow")).unwrap();
    assert_eq!(shadow.permissions().mode() & 0o7777, 0o640);
    let mode_owner = |p: &str| {
        let m = fs::symlink_metadata(at(p)).unwrap();
        (m.permissions().mode() & 0o7777, m.uid(), m.gid())
    };
    assert_eq!(mode_owner("home"), (0o755, 0, 0));
    assert_eq!(mode_owner("home/core"), (0o755, 1000, 100));
    assert_eq!(mode_owner("home/core/.profile"), (0o644, 1000, 100));
    assert_eq!(mode_owner("home/core/.config"), (0o755, 1000, 100));
    assert_eq!(mode_owner("home/core/.ssh"), (0o700, 1000, 100));
    assert_eq!(
        mode_owner("home/core/.ssh/authorized_keys.d"),
        (0o700, 1000, 100)
    );
    assert_eq!(
        mode_owner("home/core/.ssh/authorized_keys.d/ignition"),
        (0o600, 1000, 100)
    );
    assert_eq!(mode_owner("home/core/notes"), (0o644, 1000, 10));
    assert_eq!(
        fs::read_to_string(at("home/core/.ssh/authorized_keys.d/ignition")).unwrap(),
        "ssh-ed25519 AAAA a\nssh-rsa BBBB b\n"
    );
    assert!(!at("home/svc").exists());

    let again = plan_for(&root, config);
    assert!(again.accounts.is_empty(), "{:?}", again.accounts);
    assert!(apply(&again, &root).unwrap().iter().all(|c| !*c));
}

#[test]
fn reapply_without_overwrite_is_a_no_op_and_appends_once() {
    let d = tempfile::tempdir().unwrap();
    let at = |p: &str| d.path().join(p);
    fs::create_dir_all(at("etc")).unwrap();
    fs::write(at("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    let root = TargetRoot::new(d.path());
    let config = r#","storage":{"files":[
        {"path":"/etc/motd","contents":{"source":"data:,hi%0A"},"append":[{"source":"data:,more%0A"}],"mode":384},
        {"path":"/etc/hosts","append":[{"source":"data:,10.0.0.1%20node%0A"}]},
        {"path":"/var/log/new","append":[{"source":"data:,a"},{"source":"data:,b"}]}]}"#;
    apply(&plan_for(&root, config), &root).unwrap();
    let after_first: Vec<Vec<u8>> = ["etc/motd", "etc/hosts", "var/log/new"]
        .iter()
        .map(|p| fs::read(at(p)).unwrap())
        .collect();
    assert_eq!(after_first[0], b"hi\nmore\n");
    assert_eq!(after_first[1], b"127.0.0.1 localhost\n10.0.0.1 node\n");
    assert_eq!(after_first[2], b"ab");
    for _ in 0..2 {
        let again = plan_for(&root, config);
        assert!(apply(&again, &root).unwrap().iter().all(|c| !*c));
    }
    for (p, before) in ["etc/motd", "etc/hosts", "var/log/new"]
        .iter()
        .zip(&after_first)
    {
        assert_eq!(&fs::read(at(p)).unwrap(), before, "{p}");
    }
    // Changed by hand since: the append is made again, as the config asks.
    fs::write(at("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
    apply(&plan_for(&root, config), &root).unwrap();
    assert_eq!(fs::read(at("etc/hosts")).unwrap(), after_first[1]);
    // A different file where the config wants one, without overwrite: Ignition's error.
    fs::write(at("etc/motd"), "hi\n").unwrap();
    let doc = format!(r#"{{"ignition":{{"version":"3.4.0"}}{config}}}"#);
    let cfg = ignition::node_config(doc.as_bytes(), &ignition::NoRemoteFetcher).unwrap();
    assert_eq!(
        crate::plan::plan(&cfg, &root).unwrap_err().to_string(),
        "/etc/motd: a file exists here and overwrite is false"
    );
    // Same bytes but another mode is a different file too.
    fs::write(at("etc/motd"), "hi\nmore\n").unwrap();
    fs::set_permissions(at("etc/motd"), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(crate::plan::plan(&cfg, &root).is_err());
}
