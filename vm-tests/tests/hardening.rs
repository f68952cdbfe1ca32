//! The hardening profile on real builds: the default image (unhardened) fails
//! `harmony verify` with named rules; the same recipe with `hardening: {profile: cis}`
//! verifies clean, boots, and has its settings live in the guest (sysctls, /tmp and
//! /dev/shm options, umask); tampered copies of the hardened image fail the rule that
//! guards what was changed — in the tree, and through an extra OCI layer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use harmony::build::default_base::ensure_default_base;
use harmony::build::{build, BuildOptions};
use harmony::harden::{check_all, RuleReport};
use harmony::oci::layout::open_layout;
use harmony::oci::{ImageDetails, LayoutWriter};
use harmony::recipe::DEFAULT_RECIPE;
use harmony::run::{Vm, VmOptions};
use harmony::tree::layer::{encode_layer, LayerChanges};
use harmony::tree::{Entry, Tree};
use harmony::verify::{image_tree, verify};
use harmony_vm_tests::{ask, cache_dir, default_image, echo_requested, target_dir, write_config};

const BOOT: Duration = Duration::from_secs(240);

/// The default recipe plus the CIS profile. The default base has no nft binary, so the
/// firewall rule is excluded — and `verify` must report it as excluded.
fn hardened_recipe(dir: &Path) -> PathBuf {
    let base = ensure_default_base(&cache_dir(), 0).expect("default base");
    let text = DEFAULT_RECIPE.replace(
        "oci-layout:bases/debian-default:latest",
        &format!("oci-layout:{}:latest", base.display()),
    ) + "\nhardening:\n  profile: cis\n  exclude: [firewall-default-deny]\n";
    // PXE (to boot it) and OCI (to verify it) are all this test needs: no disk images.
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("outputs:") {
                "outputs: [pxe, oci]"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("hardened.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn hardened_image() -> &'static Path {
    static OUT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    OUT.get_or_init(|| {
        let work = target_dir().join("vm-tests").join("hardened");
        std::fs::create_dir_all(&work).unwrap();
        let recipe = hardened_recipe(&work);
        let out = work.join("out");
        build(&BuildOptions {
            recipe: Some(recipe),
            out: out.clone(),
            cache: cache_dir(),
            agent_bin: None,
            init_bin: None,
            source_date_epoch: 0,
        })
        .unwrap_or_else(|e| panic!("building the hardened image: {e:#}"));
        out
    })
}

fn failed(reports: &[RuleReport]) -> Vec<&str> {
    reports
        .iter()
        .filter(|r| r.failed())
        .map(|r| r.id)
        .collect()
}

#[test]
fn the_unhardened_default_image_fails_with_named_rules() {
    let report = verify(default_image()).unwrap();
    assert!(!report.ok());
    assert_eq!(
        report.failed_ids(),
        [
            "sysctl-network",
            "sysctl-kernel",
            "kernel-modules-blacklist",
            "mount-tmp",
            "mount-dev-shm",
            "log-permissions",
            "umask",
            "firewall-default-deny",
        ],
        "{}",
        report.text()
    );
    println!("{}", report.text());
}

#[test]
fn a_hardened_build_verifies_clean() {
    let report = verify(hardened_image()).unwrap();
    println!("{}", report.text());
    assert!(report.ok(), "{}", report.text());
    assert_eq!(report.excluded, 1);
    // The default image has no sshd, auditd or kubelet files: those rules say so.
    let na: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| !r.excluded && matches!(r.outcome, harmony::harden::Outcome::NotApplicable(_)))
        .map(|r| r.id)
        .collect();
    assert_eq!(
        na,
        [
            "kubelet-file-permissions",
            "ssh-root-login",
            "ssh-crypto-policy",
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
    let cases: [(&str, Edit); 7] = [
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
    ];
    assert!(failed(&check_all(&hardened)).is_empty());
    for (rule, edit) in cases {
        let mut t = hardened.clone();
        edit(&mut t);
        assert_eq!(failed(&check_all(&t)), [rule], "after tampering for {rule}");
    }
}

/// The same through the image format: the hardened layers plus one more that deletes
/// the module blacklist (a whiteout) make a layout that `verify` fails.
#[test]
fn a_layer_added_on_top_of_a_hardened_image_is_seen() {
    let src_dir = hardened_image().join("oci");
    let src = open_layout(&src_dir, None, None, "hardened").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("tampered");
    let mut writer = LayoutWriter::create(&dest, 0).unwrap();
    for l in &src.layers {
        writer.add_source_layer(l, "hardened").unwrap();
    }
    let mut changes = LayerChanges::default();
    changes.delete("/etc/modprobe.d/harmony-cis-blacklist.conf");
    writer
        .add_layer(&encode_layer(&changes, 0).unwrap(), "tamper")
        .unwrap();
    writer
        .finish(&ImageDetails {
            tag: "tampered".into(),
            labels: Default::default(),
            annotations: Default::default(),
        })
        .unwrap();
    let report = verify(&dest).unwrap();
    assert_eq!(
        report.failed_ids(),
        ["kernel-modules-blacklist"],
        "{}",
        report.text()
    );
}

/// What the checks read in the tree is what the running node has: busybox init ran the
/// sysctl loader and the remounts, login shells get umask 027.
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
    vm.shutdown().ok();
}
