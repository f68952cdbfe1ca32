//! Users from cloud-config made as cloud-init makes them, and Ignition's keys made
//! readable by sshd: planned and applied on scratch roots.

use std::fs;

use crate::target_root::TargetRoot;

fn cloud_config(text: &str) -> ignition::NodeConfig {
    crate::config_format::node_config(text.as_bytes(), None, &ignition::NoRemoteFetcher)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn apply(d: &std::path::Path, cfg: &ignition::NodeConfig) -> crate::plan::Plan {
    let root = TargetRoot::new(d);
    let p = crate::plan::plan(cfg, &root).unwrap_or_else(|e| panic!("{e}"));
    crate::apply::apply(&p, &root).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// A Debian-like root: shadow's useradd with USERGROUPS_ENAB yes.
fn debian_root(d: &std::path::Path) {
    fs::create_dir_all(d.join("etc")).unwrap();
    fs::create_dir_all(d.join("usr/sbin")).unwrap();
    fs::write(d.join("usr/sbin/useradd"), "").unwrap();
    fs::write(
        d.join("etc/login.defs"),
        "USERGROUPS_ENAB yes\nUID_MIN 1000\nGID_MIN 1000\n",
    )
    .unwrap();
    fs::write(d.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(d.join("etc/group"), "root:x:0:\nusers:x:100:\n").unwrap();
    fs::write(d.join("etc/shadow"), "root:*:1::::::\n").unwrap();
}

const USER_DATA: &str = "#cloud-config
users:
  - name: alice
    groups: [docker, users]
    lock_passwd: false
    hashed_passwd: $6$salt$hash
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3Nza alice@laptop
write_files:
  - path: /home/alice/app.conf
    owner: alice:alice
    content: hello
    defer: true
";

#[test]
fn cloud_config_users_get_missing_groups_their_own_group_and_authorized_keys() {
    let d = tempfile::tempdir().unwrap();
    debian_root(d.path());
    let p = apply(d.path(), &cloud_config(USER_DATA));
    assert_eq!(
        p.accounts,
        [
            "add group docker gid 1000",
            "add user alice uid 1000 gid 1001 home /home/alice shell /bin/bash (and group alice gid 1001) groups docker,users",
        ]
    );
    let group = fs::read_to_string(d.path().join("etc/group")).unwrap();
    // No /etc/gshadow here: groupadd and useradd put `*` and `!` in the password field.
    assert_eq!(
        group,
        "root:x:0:\nusers:x:100:alice\ndocker:*:1000:alice\nalice:!:1001:\n"
    );
    let shadow = fs::read_to_string(d.path().join("etc/shadow")).unwrap();
    assert!(shadow.contains("alice:$6$salt$hash:"), "{shadow}");
    let keys = d.path().join("home/alice/.ssh/authorized_keys");
    assert_eq!(
        fs::read_to_string(&keys).unwrap(),
        "ssh-ed25519 AAAAC3Nza alice@laptop\n"
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let m = fs::metadata(&keys).unwrap();
    assert_eq!(
        (m.permissions().mode() & 0o777, m.uid(), m.gid()),
        (0o600, 1000, 1001)
    );
    let ssh = fs::metadata(d.path().join("home/alice/.ssh")).unwrap();
    assert_eq!(ssh.permissions().mode() & 0o777, 0o700);
    assert!(!d.path().join("home/alice/.ssh/authorized_keys.d").exists());
    // The deferred file owned NAME:NAME finds the user's own group.
    let conf = fs::metadata(d.path().join("home/alice/app.conf")).unwrap();
    assert_eq!((conf.uid(), conf.gid()), (1000, 1001));
    // A second first boot adds nothing.
    let again = apply(d.path(), &cloud_config(USER_DATA));
    assert!(again.accounts.is_empty(), "{:?}", again.accounts);
    assert_eq!(
        fs::read_to_string(&keys).unwrap(),
        "ssh-ed25519 AAAAC3Nza alice@laptop\n"
    );
}

#[test]
fn busybox_adduser_gives_the_user_its_own_group() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc")).unwrap();
    fs::create_dir_all(d.path().join("bin")).unwrap();
    fs::write(d.path().join("bin/busybox"), "").unwrap();
    fs::write(
        d.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\n",
    )
    .unwrap();
    fs::write(d.path().join("etc/group"), "root:x:0:\n").unwrap();
    let p = apply(
        d.path(),
        &cloud_config("#cloud-config\nusers:\n  - name: bob\n    shell: /bin/sh\n"),
    );
    assert_eq!(
        p.accounts,
        ["add user bob uid 1000 gid 1000 home /home/bob shell /bin/sh (and group bob gid 1000)"]
    );
    let group = fs::read_to_string(d.path().join("etc/group")).unwrap();
    assert!(group.ends_with("\nbob:!:1000:\n"), "{group}");
    // no_user_group: the default group instead.
    let d = tempfile::tempdir().unwrap();
    debian_root(d.path());
    let p = apply(
        d.path(),
        &cloud_config("#cloud-config\nusers:\n  - name: carol\n    no_user_group: true\n    primary_group: users\n    system: true\n    uid: 990\n    homedir: /srv/carol\n"),
    );
    assert_eq!(
        p.accounts,
        ["add user carol uid 990 gid 100 home /srv/carol shell /bin/bash"]
    );
}

#[test]
fn ignition_keys_come_with_the_sshd_drop_in_that_reads_them() {
    let d = tempfile::tempdir().unwrap();
    debian_root(d.path());
    fs::write(d.path().join("usr/sbin/sshd"), "").unwrap();
    let cfg = ignition::node_config(
        br#"{"ignition":{"version":"3.4.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA core"]}]}}"#,
        &ignition::NoRemoteFetcher,
    )
    .unwrap();
    apply(d.path(), &cfg);
    assert_eq!(
        fs::read_to_string(d.path().join("home/core/.ssh/authorized_keys.d/ignition")).unwrap(),
        "ssh-ed25519 AAAA core\n"
    );
    let drop_in = fs::read_to_string(
        d.path()
            .join(super::SSHD_KEYS_DROP_IN.trim_start_matches('/')),
    )
    .unwrap();
    assert!(
        drop_in.contains(
            "\nAuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/ignition\n"
        ),
        "{drop_in}"
    );
    // No sshd in the image: no drop-in.
    let d = tempfile::tempdir().unwrap();
    debian_root(d.path());
    apply(d.path(), &cfg);
    assert!(!d.path().join("etc/ssh").exists());
}
