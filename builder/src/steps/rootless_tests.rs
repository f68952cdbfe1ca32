//! The unprivileged path of `run_in_root` (`IdMapping::CallerOnly`), for real.
//!
//! CI runs as root, where `run_in_root` maps a whole id range; the mapping an ordinary
//! user gets (only the caller, as root) would never run. So the test re-runs itself in a
//! copy of this test binary as `nobody` (setpriv), which does the checks there, on a
//! busybox root shaped like RHEL where it matters (a 0000 /etc/shadow, a 0555 /usr/lib).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use nix::unistd::Uid;

use super::packages::run_step;
use super::run_in_root::tests::busybox_root;
use super::run_in_root::{run_in_root, IdMapping, RunError};
use crate::tree::layer::Change;
use crate::tree::{Entry, Kind, Meta, Tree};

const CHILD_ENV: &str = "HARMONY_ROOTLESS_TEST_CHILD";
const MARKER: &str = "rootless run_in_root checks: all passed";
const NOBODY: u32 = 65534;

/// Why unprivileged user namespaces cannot be made here, if they cannot.
fn userns_disabled() -> Option<String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user.max_user_namespaces = 0".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some("kernel.unprivileged_userns_clone = 0".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Some("kernel.apparmor_restrict_unprivileged_userns = 1".into());
    }
    None
}

#[test]
fn run_steps_as_an_unprivileged_user() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // The re-run as nobody.
        assert!(!Uid::effective().is_root(), "must run unprivileged");
        checks();
        println!("{MARKER}");
        return;
    }
    if !Uid::effective().is_root() {
        // Already unprivileged: nothing to re-run.
        checks();
        return;
    }
    if let Some(why) = userns_disabled() {
        harmony_test_support::skip(format!(
            "unprivileged user namespaces are disabled here: {why}"
        ));
        return;
    }
    if !Path::new("/usr/bin/setpriv").exists() {
        harmony_test_support::skip("tool setpriv not installed: Debian package util-linux");
        return;
    }
    // A copy of this test binary nobody can run, and a TMPDIR of nobody's in which the
    // scratch roots are made: it must be empty again afterwards.
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = work.path().join("harmony-unit-tests");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::os::unix::fs::chown(&tmp, Some(NOBODY), Some(NOBODY)).unwrap();
    let child_test = format!(
        "{}::run_steps_as_an_unprivileged_user",
        module_path!().split_once("::").unwrap().1
    );
    let out = Command::new("/usr/bin/setpriv")
        .arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"))
        .arg("--clear-groups")
        .arg("--")
        .arg(&exe)
        .args(["--exact", &child_test, "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .env("TMPDIR", &tmp)
        .current_dir(work.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "the unprivileged run failed: {}",
        out.status
    );
    assert!(
        text.contains(MARKER),
        "the child did not run its checks:\n{text}"
    );
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "scratch roots left behind: {left:?}");
}

fn file(bytes: &[u8], mode: u32, uid: u32, gid: u32) -> Entry {
    Entry {
        kind: Kind::File(Arc::new(bytes.to_vec())),
        meta: Meta {
            uid,
            gid,
            ..Meta::new(mode)
        },
    }
}

/// A busybox root with what RHEL has that an unprivileged caller cannot read or write
/// from outside: /etc/shadow 0000 root:shadow(42), /usr/lib 0555 (files below it).
fn rhel_like_root() -> Tree {
    let mut t = busybox_root();
    t.insert("etc/shadow", file(b"root:!!:1::::::\n", 0o000, 0, 42))
        .unwrap();
    t.insert("etc/gshadow", file(b"root:::\n", 0o000, 0, 0))
        .unwrap();
    t.insert("usr/lib/os-release", file(b"ID=centos\n", 0o644, 0, 0))
        .unwrap();
    t.get_mut("usr/lib").unwrap().meta.mode = 0o555;
    t.mkdir_all("sys", &Meta::new(0o555)).unwrap();
    t
}

fn checks() {
    assert_eq!(IdMapping::for_caller(), IdMapping::CallerOnly);
    let before = rhel_like_root();

    // A command that writes (new files, a 0000 file, a file owned by 7, into a 0555
    // directory) and one that deletes, through the real `run:` step.
    let step = run_step(
        &before,
        &[
            "set -e; echo \"uid=$(busybox id -u)\" > /etc/hello; \
             busybox mkdir -p /var/lib/app; busybox chmod 0750 /var/lib/app; \
             echo 'root:$6$x:1::::::' > /etc/shadow; echo y > /etc/owned-by-7; \
             echo x > /usr/lib/new-lib"
                .into(),
            "busybox rm /etc/passwd".into(),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = step.changes.0.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "etc/hello",
            "etc/owned-by-7",
            "etc/passwd",
            "etc/shadow",
            "usr/lib/new-lib",
            "var/lib/app"
        ],
        "only what the commands changed"
    );
    let put = |path: &str| match &step.changes.0[path] {
        Change::Put(e) => e.clone(),
        Change::Delete => panic!("{path} deleted"),
    };
    assert_eq!(step.changes.0["etc/passwd"], Change::Delete);
    // The command ran as root inside; what it made is root's.
    assert_eq!(put("etc/hello"), file(b"uid=0\n", 0o644, 0, 0));
    assert_eq!(put("usr/lib/new-lib"), file(b"x\n", 0o644, 0, 0));
    let app = put("var/lib/app");
    assert_eq!(
        (app.kind, app.meta.mode, app.meta.uid, app.meta.gid),
        (Kind::Dir, 0o750, 0, 0)
    );
    // What it changed keeps the owner and mode the tree gave it.
    assert_eq!(put("etc/owned-by-7"), file(b"y\n", 0o600, 7, 8));
    assert_eq!(
        put("etc/shadow"),
        file(b"root:$6$x:1::::::\n", 0o000, 0, 42)
    );

    // A command that fails: the error carries its status and output.
    let err = run_step(&before, &["echo about to fail; exit 3".into()])
        .err()
        .expect("fails");
    let msg = err.to_string();
    assert!(
        msg.contains("exited with exit status: 3") && msg.contains("about to fail"),
        "{msg}"
    );

    // chown to anyone but root cannot work with one id mapped: the error says why.
    let err = run_in_root(
        &before,
        &[
            "/bin/sh".into(),
            "-c".into(),
            "echo hi > /etc/x; busybox chown 1000:1001 /etc/x".into(),
        ],
        &[],
        IdMapping::CallerOnly,
    )
    .err()
    .expect("chown to an unmapped id fails");
    assert!(matches!(err, RunError::Failed { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("Invalid argument") && msg.contains("only the caller's id is mapped"),
        "{msg}"
    );
}
