//! What `harmony-agent apply` makes durable, traced with strace: each file's contents are
//! fsynced, and every filesystem a file lands on is synced (`syncfs`) — not the root's
//! alone. On a disk boot `/` is the read-only image while /etc and /var are other
//! filesystems; here they are tmpfs mounts in a mount namespace of the test's own
//! (`unshare -m`: the host's mounts are never touched). The power cut itself is the
//! vm-test's (`boot`'s power-cut test).

use std::process::Command;

#[test]
fn apply_fsyncs_each_file_and_syncs_every_filesystem_it_wrote() {
    for tool in ["strace", "unshare", "mount"] {
        if !harmony_test_support::tool(tool) {
            harmony_test_support::skip(format!("tool {tool} not installed"));
            return;
        }
    }
    if !nix::unistd::geteuid().is_root() {
        harmony_test_support::skip("mount namespaces and tmpfs mounts need root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for d in ["etc", "var"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let config = dir.path().join("cfg.ign");
    std::fs::write(
        &config,
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[
        {"path":"/etc/motd","contents":{"source":"data:,hello"}},
        {"path":"/var/lib/app/state","contents":{"source":"data:,state"}}]}}"#,
    )
    .unwrap();
    let trace = dir.path().join("trace");
    harmony_test_support::command::run_ok(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"mount -t tmpfs etc "$1/etc" && mount -t tmpfs var "$1/var" &&
               exec strace -f -y -e trace=syncfs,fsync,fdatasync -o "$2" "$3" apply --root "$1" "$4""#,
            )
            .arg("sh")
            .arg(&root)
            .arg(&trace)
            .arg(env!("CARGO_BIN_EXE_harmony-agent"))
            .arg(&config),
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    let root = root.to_str().unwrap();
    let calls = |call: &str, under: &str| {
        trace
            .lines()
            .filter(|l| l.contains(&format!("{call}(")) && l.contains(&format!("<{root}{under}")))
            .count()
    };
    // Each file's temp copy is fsynced before its rename.
    assert!(calls("fsync", "/etc/.motd.harmony-tmp") >= 1, "{trace}");
    assert!(
        calls("fsync", "/var/lib/app/.state.harmony-tmp") >= 1,
        "{trace}"
    );
    // Both filesystems are synced, before and after the renames.
    assert!(calls("syncfs", "/etc") >= 2, "{trace}");
    assert!(calls("syncfs", "/var") >= 2, "{trace}");
}
