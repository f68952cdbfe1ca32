//! Planning against scratch roots: order, implicit parents, conflicts, units.

use super::*;

fn cfg(json: &str) -> NodeConfig {
    let doc = format!(r#"{{"ignition":{{"version":"3.4.0"}}{json}}}"#);
    ignition::node_config(doc.as_bytes(), &ignition::NoRemoteFetcher).unwrap()
}

fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("etc")).unwrap();
    std::fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(d.path().join("etc/group"), "root:x:0:\ncore:x:1000:\n").unwrap();
    d
}

fn lines(p: &Plan) -> Vec<String> {
    p.actions.iter().map(|a| a.to_string()).collect()
}

#[test]
fn parents_first_then_entries_in_order() {
    let d = root();
    let p = plan(
        &cfg(r#","storage":{"files":[{"path":"/srv/app/conf","contents":{"source":"data:,x"},"mode":384,"user":{"name":"core"}}],"directories":[{"path":"/srv/app","mode":488}],"links":[{"path":"/etc/localtime","target":"/usr/share/zoneinfo/UTC"}]}"#),
        &TargetRoot::new(d.path()),
    )
    .unwrap();
    assert_eq!(
        lines(&p),
        [
            "directory /srv mode 0755 owner 0:0",
            "directory /srv/app mode 0750 owner 0:0",
            "file      /srv/app/conf mode 0600 owner 1000:0 (1 bytes, sha256 2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881)",
            "symlink   /etc/localtime -> /usr/share/zoneinfo/UTC owner 0:0",
        ]
    );
}

#[test]
fn conflicts_are_found_before_anything_is_written() {
    let d = root();
    std::fs::write(d.path().join("etc/motd"), "old").unwrap();
    let r = TargetRoot::new(d.path());
    let e = plan(
        &cfg(r#","storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,new"}}]}"#),
        &r,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/motd: a file exists here and overwrite is false"
    );
    let e = plan(&cfg(r#","storage":{"files":[{"path":"/etc/motd/x"}]}"#), &r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/motd/x: its parent /etc/motd is a file, not a directory"
    );
    let e = plan(
        &cfg(r#","storage":{"directories":[{"path":"/etc/motd"}]}"#),
        &r,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/etc/motd: a file exists here and overwrite is false"
    );
    let e = plan(
        &cfg(r#","storage":{"files":[{"path":"/x","user":{"name":"nobody"}}]}"#),
        &r,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/x: user \"nobody\" is not in the target root's /etc/passwd"
    );
    let e = plan(
        &cfg(r#","storage":{"links":[{"path":"/h","target":"/missing","hard":true}]}"#),
        &r,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/h: hard link target /missing does not exist"
    );
    let e = plan(
        &cfg(r#","passwd":{"users":[{"name":"a"},{"name":"b","groups":["wheel"]}]}"#),
        &r,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "passwd.users[1]: \"b\": group \"wheel\" does not exist in the root's /etc/group"
    );
}

#[test]
fn existing_files_kept_appended_or_overwritten() {
    let d = root();
    std::fs::write(d.path().join("etc/motd"), "old\n").unwrap();
    let r = TargetRoot::new(d.path());
    let p = plan(
        &cfg(
            r#","storage":{"files":[{"path":"/etc/motd","append":[{"source":"data:,more%0A"}]}]}"#,
        ),
        &r,
    )
    .unwrap();
    assert!(
        matches!(&p.actions[0], Action::WriteFile { contents, .. } if contents == b"old\nmore\n")
    );
    let p = plan(&cfg(r#","storage":{"files":[{"path":"/etc","overwrite":true,"contents":{"source":"data:,f"}}]}"#), &r).unwrap();
    assert_eq!(
        p.actions[0],
        Action::Remove {
            path: "/etc".into(),
            existing: ExistingKind::Directory
        }
    );
}

#[test]
fn units_enable_mask_disable() {
    let d = root();
    let lib = d.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::write(lib.join("sshd.service"), "[Service]\nExecStart=/sbin/sshd\n[Install]\nWantedBy=multi-user.target\nAlias=ssh.service\n").unwrap();
    std::fs::write(lib.join("getty@.service"), "[Service]\nExecStart=/sbin/getty\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n").unwrap();
    let wants = d.path().join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/system/old.service",
        wants.join("old.service"),
    )
    .unwrap();
    let p = plan(
        &cfg(r#","systemd":{"units":[
            {"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nRequiredBy=b.target\n","dropins":[{"name":"x.conf","contents":"[Service]\nNice=1\n"}]},
            {"name":"sshd.service","enabled":true},
            {"name":"getty@.service","enabled":true},
            {"name":"bad.service","mask":true},
            {"name":"old.service","enabled":false}]}"#),
        &TargetRoot::new(d.path()),
    )
    .unwrap();
    let l = lines(&p);
    let want = [
        "symlink   /etc/systemd/system/multi-user.target.wants/hello.service -> /etc/systemd/system/hello.service owner 0:0",
        "symlink   /etc/systemd/system/b.target.requires/hello.service -> /etc/systemd/system/hello.service owner 0:0",
        "symlink   /etc/systemd/system/multi-user.target.wants/sshd.service -> /usr/lib/systemd/system/sshd.service owner 0:0",
        "symlink   /etc/systemd/system/ssh.service -> /usr/lib/systemd/system/sshd.service owner 0:0",
        "symlink   /etc/systemd/system/getty.target.wants/getty@tty1.service -> /usr/lib/systemd/system/getty@.service owner 0:0",
        "symlink   /etc/systemd/system/bad.service -> /dev/null owner 0:0",
        "remove    /etc/systemd/system/multi-user.target.wants/old.service (existing Symlink)",
    ];
    for w in want {
        assert!(l.iter().any(|x| x == w), "missing {w} in {l:#?}");
    }
    assert!(l
        .iter()
        .any(|x| x.starts_with("file      /etc/systemd/system/hello.service.d/x.conf mode 0644")));
    // No unit file to link: Ignition's preset line, as Ignition 2.14 writes it.
    let p = plan(
        &cfg(r#","systemd":{"units":[{"name":"nope.service","enabled":true}]}"#),
        &TargetRoot::new(d.path()),
    )
    .unwrap();
    let l = lines(&p);
    assert!(
        l.iter()
            .any(|x| x
                .starts_with("file      /etc/systemd/system-preset/20-ignition.preset mode 0644")),
        "{l:#?}"
    );
    assert!(matches!(
        &p.actions[1],
        crate::plan::action::Action::WriteFile { contents, .. } if contents == b"enable nope.service\n"
    ));
}

#[test]
fn ancestors_are_listed_outermost_first() {
    assert_eq!(
        ancestors("/etc/kubernetes/pki/ca.crt"),
        ["/etc", "/etc/kubernetes", "/etc/kubernetes/pki"]
    );
    assert!(ancestors("/etc").is_empty());
}

/// A root without /etc/shadow: a config that writes one never makes it world-readable.
/// Without a mode, 0640 root:shadow where the root has a `shadow` group (Debian, Alpine),
/// 0000 root:root otherwise (RHEL); a world-readable mode loses its world bits.
#[test]
fn a_missing_shadow_is_created_with_the_distributions_mode() {
    let config = cfg(r#","storage":{"files":[
        {"path":"/etc/shadow","contents":{"source":"data:,root:*:::::::%0A"}},
        {"path":"/etc/gshadow","mode":420,"contents":{"source":"data:,root:::%0A"}}]}"#);
    let written = |d: &tempfile::TempDir| -> Vec<String> {
        lines(&plan(&config, &TargetRoot::new(d.path())).unwrap())
            .into_iter()
            .filter(|l| l.contains("shadow"))
            .map(|l| l.split(" (").next().unwrap_or_default().to_string())
            .collect()
    };
    let rhel = root();
    assert_eq!(
        written(&rhel),
        [
            "file      /etc/shadow mode 0000 owner 0:0",
            "file      /etc/gshadow mode 0640 owner 0:0",
        ]
    );
    let debian = root();
    std::fs::write(
        debian.path().join("etc/group"),
        "root:x:0:\nshadow:x:42:\ncore:x:1000:\n",
    )
    .unwrap();
    assert_eq!(
        written(&debian),
        [
            "file      /etc/shadow mode 0640 owner 0:42",
            "file      /etc/gshadow mode 0640 owner 0:0",
        ]
    );
}
