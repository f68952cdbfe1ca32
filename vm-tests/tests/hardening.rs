//! The hardening profile on real builds: the default image is hardened (its recipe
//! applies the CIS profile, the firewall rule excluded and recorded: no nft in its
//! busybox base) and verifies clean; the same image without its hardening layer fails
//! with named rules; it boots with its settings live in the guest (sysctls, /tmp and
//! /dev/shm options, umask, shell timeout); tampered copies fail the rule that guards
//! what was changed — in the tree, and through an extra OCI layer.

use std::path::Path;
use std::time::Duration;

use harmony::harden::{check_all, Outcome, RuleReport};
use harmony::oci::layout::open_layout;
use harmony::oci::{ImageDetails, LayoutWriter};
use harmony::run::{Vm, VmOptions};
use harmony::tree::layer::{encode_layer, LayerChanges};
use harmony::tree::{Entry, Meta, Tree};
use harmony::verify::{image_tree, verify};
use harmony_vm_tests::{ask, default_image, echo_requested, write_config};

const BOOT: Duration = Duration::from_secs(240);

/// The default image: `image-recipes/default.yaml` carries the CIS profile.
fn hardened_image() -> &'static Path {
    default_image()
}

fn failed(reports: &[RuleReport]) -> Vec<&str> {
    reports
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.id)
        .collect()
}

/// A layout of `src`'s layers, the last `drop` left out, plus `extra`.
fn relayered(src_dir: &Path, dest: &Path, drop: usize, extra: Option<LayerChanges>) {
    let src = open_layout(src_dir, None, None, "default").unwrap();
    let mut writer = LayoutWriter::create(dest, 0).unwrap();
    for l in &src.layers[..src.layers.len() - drop] {
        writer.add_source_layer(l, "default").unwrap();
    }
    if let Some(changes) = extra {
        writer
            .add_layer(&encode_layer(&changes, 0).unwrap(), "tamper")
            .unwrap();
    }
    writer
        .finish(&ImageDetails {
            tag: "relayered".into(),
            labels: Default::default(),
            annotations: Default::default(),
        })
        .unwrap();
}

/// The hardening step is the image's last layer: without it, the rules a busybox image
/// is judged by fail, each named.
#[test]
fn the_default_image_without_its_hardening_layer_fails_with_named_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("unhardened");
    relayered(&hardened_image().join("oci"), &dest, 1, None);
    let report = verify(&dest).unwrap();
    println!("{}", report.text());
    assert!(!report.ok());
    assert_eq!(
        report.failed_ids(),
        [
            "sysctl-network",
            "sysctl-kernel",
            "sysctl-bpf",
            "core-dumps",
            "kernel-modules-blacklist",
            "mount-tmp",
            "mount-dev-shm",
            "log-permissions",
            "umask",
            "shell-timeout",
            "login-banners",
            "firewall-default-deny",
        ],
        "{}",
        report.text()
    );
}

#[test]
fn the_default_image_is_hardened_and_verifies_clean() {
    let report = verify(hardened_image()).unwrap();
    println!("{}", report.text());
    assert!(report.ok(), "{}", report.text());
    assert!(report.rules.len() >= 25);
    // The firewall rule is excluded (no nft in the busybox base), and recorded so.
    let excluded: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.excluded)
        .map(|r| r.id)
        .collect();
    assert_eq!(excluded, ["firewall-default-deny"]);
    // What a busybox image has none of: those rules say so.
    let na: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| !r.excluded && matches!(r.outcome, Outcome::NotApplicable(_)))
        .map(|r| r.id)
        .collect();
    assert_eq!(
        na,
        [
            "password-hashing",
            "kubelet-file-permissions",
            "ssh-root-login",
            "ssh-crypto-policy",
            "sudo",
            "su-wheel",
            "single-user-auth",
            "cron-permissions",
            "journald-storage",
            "audit-rules"
        ]
    );
    // The layout given directly is the same image.
    assert_eq!(verify(&hardened_image().join("oci")).unwrap().failed, 0);
}

/// Each edit is something an image could pick up after hardening (a package, a files:
/// entry, a careless layer); each must fail exactly the rule that guards it.
#[test]
fn tampering_with_a_hardened_tree_fails_the_guarding_rule() {
    let hardened = image_tree(hardened_image()).unwrap();
    type Edit = fn(&mut Tree);
    let cases: [(&str, Edit); 13] = [
        ("account-file-permissions", |t| {
            t.get_mut("etc/shadow").unwrap().meta.mode = 0o644
        }),
        ("setuid-allow-list", |t| {
            t.get_mut("usr/bin/busybox").unwrap().meta.mode = 0o4755
        }),
        ("sysctl-network", |t| {
            t.insert(
                "etc/sysctl.d/99-local.conf",
                Entry::file("net.ipv4.conf.all.accept_redirects = 1\n", 0o644),
            )
            .unwrap();
        }),
        ("sysctl-kernel", |t| {
            t.insert(
                "etc/sysctl.d/99-local.conf",
                Entry::file("kernel.modules_disabled = 1\n", 0o644),
            )
            .unwrap();
        }),
        ("mount-tmp", |t| {
            let fstab = t.read_text("etc/fstab").unwrap().replace(
                ",noexec,mode=1777 0 0\ntmpfs /dev/shm",
                ",mode=1777 0 0\ntmpfs /dev/shm",
            );
            t.insert("etc/fstab", Entry::file(fstab, 0o644)).unwrap();
        }),
        ("umask", |t| {
            t.insert("etc/profile.d/zz-lax.sh", Entry::file("umask 022\n", 0o644))
                .unwrap();
        }),
        ("log-permissions", |t| {
            t.insert("var/log/app.log", Entry::file("", 0o644)).unwrap();
        }),
        ("sysctl-bpf", |t| {
            t.insert(
                "etc/sysctl.d/99-local.conf",
                Entry::file("net.core.bpf_jit_harden = 0\n", 0o644),
            )
            .unwrap();
        }),
        ("core-dumps", |t| {
            t.insert(
                "etc/sysctl.d/99-local.conf",
                Entry::file("kernel.core_pattern = core\n", 0o644),
            )
            .unwrap();
        }),
        ("shell-timeout", |t| {
            t.remove("etc/profile.d/harmony-tmout.sh").unwrap();
        }),
        ("login-banners", |t| {
            t.insert("etc/issue", Entry::file("Kernel \\r on an \\m\n", 0o644))
                .unwrap();
        }),
        ("world-writable", |t| {
            t.mkdir_all("var/lib/shared", &Meta::new(0o777)).unwrap();
        }),
        ("unowned-files", |t| {
            let mut e = Entry::file("", 0o644);
            e.meta.uid = 4242;
            t.insert("etc/stray", e).unwrap();
        }),
    ];
    assert!(failed(&check_all(&hardened)).is_empty());
    for (rule, edit) in cases {
        let mut t = hardened.clone();
        edit(&mut t);
        assert_eq!(failed(&check_all(&t)), [rule], "after tampering for {rule}");
    }
}

/// The same through the image format: the image's layers plus one more that deletes
/// the module blacklist (a whiteout) make a layout that `verify` fails.
#[test]
fn a_layer_added_on_top_of_a_hardened_image_is_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("tampered");
    let mut changes = LayerChanges::default();
    changes.delete("/etc/modprobe.d/harmony-cis-blacklist.conf");
    relayered(&hardened_image().join("oci"), &dest, 0, Some(changes));
    let report = verify(&dest).unwrap();
    assert_eq!(
        report.failed_ids(),
        ["kernel-modules-blacklist"],
        "{}",
        report.text()
    );
}

/// What the checks read in the tree is what the running node has: busybox init ran the
/// sysctl loader and the remounts, login shells get umask 027 and a 900 s TMOUT.
#[test]
fn a_hardened_image_boots_with_its_settings_live() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "empty.ign",
        &serde_json::json!({"ignition": {"version": "3.3.0"}}),
    );
    let opts = VmOptions {
        ignition: Some(cfg),
        echo: echo_requested(),
        ..VmOptions::new(hardened_image())
    };
    let vm = Vm::boot(&opts).expect("boot");
    let line = vm
        .wait_for_line(|l| l.starts_with("HARMONY-FIRSTBOOT "), BOOT)
        .unwrap_or_else(|e| panic!("no report line: {e}\n{}", vm.tail().join("\n")));
    assert!(line.contains("\"status\":\"success\""), "{line}");
    let sysctl = |key: &str| {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        ask(
            &vm,
            &format!("echo SYSCTL={key}=$(cat {path})"),
            &format!("SYSCTL={key}="),
        )
    };
    assert_eq!(
        sysctl("net.ipv4.ip_forward"),
        "SYSCTL=net.ipv4.ip_forward=1"
    );
    assert_eq!(
        sysctl("net.ipv4.conf.all.rp_filter"),
        "SYSCTL=net.ipv4.conf.all.rp_filter=2"
    );
    assert_eq!(
        sysctl("net.ipv4.conf.all.send_redirects"),
        "SYSCTL=net.ipv4.conf.all.send_redirects=0"
    );
    assert_eq!(
        sysctl("kernel.kptr_restrict"),
        "SYSCTL=kernel.kptr_restrict=2"
    );
    assert_eq!(sysctl("fs.suid_dumpable"), "SYSCTL=fs.suid_dumpable=0");
    assert_eq!(
        sysctl("kernel.unprivileged_bpf_disabled"),
        "SYSCTL=kernel.unprivileged_bpf_disabled=1"
    );
    assert_eq!(
        sysctl("kernel.core_pattern"),
        "SYSCTL=kernel.core_pattern=|/bin/false"
    );
    for mnt in ["/tmp", "/dev/shm"] {
        let opts = ask(
            &vm,
            &format!("echo MNT{mnt}=$(grep ' {mnt} ' /proc/mounts | cut -d' ' -f4)"),
            &format!("MNT{mnt}="),
        );
        for o in ["nosuid", "nodev", "noexec"] {
            assert!(opts.split([',', '=']).any(|x| x == o), "{mnt}: {opts}");
        }
    }
    assert_eq!(
        ask(&vm, "echo UMASK=$(sh -l -c umask)", "UMASK="),
        "UMASK=0027"
    );
    assert_eq!(
        ask(&vm, "echo TMOUT=$(sh -l -c 'echo $TMOUT')", "TMOUT="),
        "TMOUT=900"
    );
    vm.shutdown().ok();
}
