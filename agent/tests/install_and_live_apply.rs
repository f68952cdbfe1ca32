//! Pre-provisioned hosts (issue 14 item 7), through the real binary on temp roots:
//! `harmony-agent install --root DIR` for each init system (files, links, modes, the
//! binary itself, a second install changing nothing), and `harmony-agent apply --live`
//! writing what first boot writes with its report, refused by the SSH guard when the
//! node firewall would shut the session's source (SSH_CONNECTION), unless --force.

// Test helpers may unwrap (the workspace denies it in production code).
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const AGENT: &str = env!("CARGO_BIN_EXE_harmony-agent");

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(AGENT);
    c.args(args).env_remove("SSH_CONNECTION");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"").unwrap();
}

fn install(root: &Path) -> String {
    let out = agent(&["install", "--root", root.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_agent_installed(root: &Path) {
    let bin = root.join("usr/bin/harmony-agent");
    assert_eq!(std::fs::read(&bin).unwrap(), std::fs::read(AGENT).unwrap());
    assert_eq!(mode(&bin), 0o755);
}

#[test]
fn install_on_systemd_writes_the_unit_and_its_sysinit_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "lib/systemd/systemd");
    let out = install(root);
    assert!(out.contains("with its systemd boot hook"), "{out}");
    assert_agent_installed(root);
    let unit = root.join("usr/lib/systemd/system/harmony-firstboot.service");
    assert_eq!(
        std::fs::read_to_string(&unit).unwrap(),
        ignition::agent_boot_hook::SYSTEMD_UNIT
    );
    assert_eq!(mode(&unit), 0o644);
    let link = root.join("etc/systemd/system/sysinit.target.wants/harmony-firstboot.service");
    assert_eq!(
        std::fs::read_link(link).unwrap(),
        Path::new("/usr/lib/systemd/system/harmony-firstboot.service")
    );
    // Again: nothing changes.
    let again = install(root);
    assert!(again.contains("(0 of "), "{again}");
}

#[test]
fn install_on_openrc_writes_the_script_in_the_boot_runlevel() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(root, "sbin/openrc");
    let out = install(root);
    assert!(out.contains("with its OpenRC boot hook"), "{out}");
    assert_agent_installed(root);
    let script = root.join("etc/init.d/harmony-firstboot");
    assert_eq!(
        std::fs::read_to_string(&script).unwrap(),
        ignition::agent_boot_hook::OPENRC_SCRIPT
    );
    assert_eq!(mode(&script), 0o755);
    assert_eq!(
        std::fs::read_link(root.join("etc/runlevels/boot/harmony-firstboot")).unwrap(),
        Path::new("/etc/init.d/harmony-firstboot")
    );
}

#[test]
fn install_on_busybox_hooks_the_inittab_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/inittab"),
        "::sysinit:/etc/init.d/rcS\n::respawn:-/bin/sh\n",
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("etc/inittab"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = install(root);
    assert!(out.contains("with its busybox init boot hook"), "{out}");
    assert_agent_installed(root);
    let hooked = "::sysinit:/etc/init.d/rcS\n::sysinit:/usr/bin/harmony-agent firstboot\n::respawn:-/bin/sh\n";
    assert_eq!(
        std::fs::read_to_string(root.join("etc/inittab")).unwrap(),
        hooked
    );
    assert_eq!(mode(&root.join("etc/inittab")), 0o644);
    install(root);
    assert_eq!(
        std::fs::read_to_string(root.join("etc/inittab")).unwrap(),
        hooked
    );
}

#[test]
fn install_without_an_init_system_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(&["install", "--root", dir.path().to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no init system harmony-agent can hook into"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

const CONFIG: &str = "#cloud-config
write_files:
  - path: /etc/harmony/live.txt
    content: applied live
    permissions: '0640'
harmony:
  role: worker
  firewall:
    ssh_sources: [192.0.2.0/24]
";

fn live_root(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let config = dir.join("user-data");
    std::fs::write(&config, CONFIG).unwrap();
    (root, config)
}

fn apply_live(root: &Path, config: &Path, extra: &[&str], ssh: &str) -> Output {
    let host = root.parent().unwrap().join("host");
    std::fs::create_dir_all(&host).unwrap();
    let mut args = vec![
        "apply",
        "--live",
        "--root",
        root.to_str().unwrap(),
        "--host",
        host.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(config.to_str().unwrap());
    agent(&args, &[("SSH_CONNECTION", ssh)])
}

fn stored_report(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("var/lib/harmony/firstboot.json")).unwrap())
        .unwrap()
}

#[test]
fn apply_live_writes_what_first_boot_writes_with_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = live_root(dir.path());
    let out = apply_live(&root, &config, &[], "192.0.2.10 50022 192.0.2.1 22");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("HARMONY-FIRSTBOOT {"), "{stdout}");
    let live = root.join("etc/harmony/live.txt");
    assert_eq!(std::fs::read_to_string(&live).unwrap(), "applied live");
    assert_eq!(mode(&live), 0o640);
    // The node role's files, as at first boot: the firewall lets the session's source in.
    let nft = std::fs::read_to_string(root.join("etc/nftables.d/harmony.nft")).unwrap();
    assert!(nft.contains("ip saddr 192.0.2.0/24 tcp dport 22"), "{nft}");
    let r = stored_report(&root);
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["platform"], "file");
    assert_eq!(r["source"], format!("file:{}", config.display()));
    assert_eq!(r["join"], "skipped: no cluster settings");
    // A second run is first boot at a reboot: already done, nothing changes.
    let again = apply_live(&root, &config, &[], "192.0.2.10 50022 192.0.2.1 22");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("\"status\":\"already-done\""));
}

#[test]
fn apply_live_refuses_a_firewall_that_would_shut_this_ssh_session() {
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = live_root(dir.path());
    let out = apply_live(&root, &config, &[], "10.0.2.2 50022 10.0.2.15 22");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the node firewall would shut SSH from 10.0.2.2 to port 22"),
        "{err}"
    );
    // Refused before anything changed: no file, no firewall; the report says why.
    assert!(!root.join("etc/harmony/live.txt").exists());
    assert!(!root.join("etc/nftables.d/harmony.nft").exists());
    let r = stored_report(&root);
    assert_eq!(r["status"], "failed");
    assert!(r["error"].as_str().unwrap().contains("--force"), "{r}");
    // --force applies, and the report keeps the refusal as a warning.
    let forced = apply_live(&root, &config, &["--force"], "10.0.2.2 50022 10.0.2.15 22");
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert!(root.join("etc/harmony/live.txt").exists());
    let r = stored_report(&root);
    assert_eq!(r["status"], "success");
    let warnings = r["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["path"] == "ssh"
            && w["message"]
                .as_str()
                .unwrap()
                .starts_with("--force: the node firewall")),
        "{r}"
    );
}

#[test]
fn apply_live_outside_ssh_has_no_guard_and_plain_apply_needs_a_root() {
    let dir = tempfile::tempdir().unwrap();
    let (root, config) = live_root(dir.path());
    let out = apply_live(&root, &config, &[], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = agent(&["apply", config.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let out = agent(
        &[
            "apply",
            "--force",
            "--root",
            root.to_str().unwrap(),
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "--force needs --live");
}
