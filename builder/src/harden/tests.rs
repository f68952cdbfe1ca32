//! Profile-wide properties: every rule's check passes after its apply, on trees shaped
//! like each flavour; applying twice changes nothing; exclusions are recorded; and for
//! every rule a tamper case that fails exactly that rule on every flavour it applies to.

use super::*;
use crate::tree::diff::diff;
use crate::tree::Entry;

/// A tree with what the rules look at: accounts, sshd, auditd, nft, sudo, PAM's su,
/// cron, login.defs, a log directory, a setuid binary, systemd's rescue and emergency
/// units, and the given init marker and os-release.
fn flavoured(os_release: &str, init_marker: &str) -> Tree {
    let mut t = Tree::new();
    t.mkdir_all("tmp", &Meta::new(0o1777)).unwrap();
    put_file(&mut t, "etc/issue", "\\S\nKernel \\r on an \\m\n", 0o644).unwrap();
    put_file(&mut t, "usr/bin/sudo", "", 0o4111).unwrap();
    put_file(&mut t, "etc/sudoers", "root ALL=(ALL) ALL\n", 0o440).unwrap();
    put_file(
        &mut t,
        "etc/pam.d/su",
        "auth sufficient pam_rootok.so\nauth substack system-auth\n",
        0o644,
    )
    .unwrap();
    put_file(&mut t, "usr/sbin/crond", "", 0o755).unwrap();
    put_file(&mut t, "etc/crontab", "", 0o644).unwrap();
    put_file(
        &mut t,
        "etc/login.defs",
        "PASS_MAX_DAYS 99999\nUMASK 022\n",
        0o644,
    )
    .unwrap();
    for (unit, mode) in [("rescue", "rescue"), ("emergency", "emergency")] {
        put_file(
            &mut t,
            &format!("usr/lib/systemd/system/{unit}.service"),
            &format!("[Service]\nExecStart=-/usr/lib/systemd/systemd-sulogin-shell {mode}\n"),
            0o644,
        )
        .unwrap();
    }
    put_file(&mut t, "etc/os-release", os_release, 0o644).unwrap();
    put_file(&mut t, init_marker, "", 0o755).unwrap();
    put_file(&mut t, "etc/init.d/sysctl", "", 0o755).unwrap();
    put_file(&mut t, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644).unwrap();
    put_file(&mut t, "etc/group", "root:x:0:\nshadow:x:42:\n", 0o644).unwrap();
    put_file(&mut t, "etc/shadow", "root:*:::::::\n", 0o640).unwrap();
    put_file(&mut t, "usr/sbin/sshd", "", 0o755).unwrap();
    put_file(
        &mut t,
        "etc/ssh/sshd_config",
        "PermitRootLogin yes\n",
        0o600,
    )
    .unwrap();
    put_file(&mut t, "usr/sbin/auditd", "", 0o755).unwrap();
    put_file(&mut t, "usr/sbin/nft", "", 0o755).unwrap();
    put_file(&mut t, "usr/lib/systemd/systemd-sysctl", "", 0o755).unwrap();
    put_file(&mut t, "var/log/messages", "", 0o644).unwrap();
    put_file(&mut t, "usr/bin/chfn", "", 0o4755).unwrap();
    put_file(&mut t, "etc/kubernetes/kubelet.conf", "", 0o644).unwrap();
    t
}

fn flavours() -> Vec<(&'static str, Tree)> {
    vec![
        (
            "centos/systemd",
            flavoured(
                "ID=centos\nID_LIKE=\"rhel fedora\"\n",
                "usr/lib/systemd/systemd",
            ),
        ),
        ("alpine/openrc", flavoured("ID=alpine\n", "sbin/openrc")),
        ("debian/busybox", flavoured("ID=debian\n", "etc/inittab")),
    ]
}

/// Every rule passes once applied; only the systemd-only rules are not applicable, on
/// the flavours without systemd.
#[test]
fn every_rule_passes_after_it_is_applied_on_every_flavour() {
    let systemd_only = ["single-user-auth", "journald-storage"];
    for (name, mut t) in flavours() {
        let before = check_all(&t);
        assert!(
            before.iter().any(RuleReport::failed),
            "{name}: an unhardened tree should fail"
        );
        apply_profile(&mut t, &[]).unwrap();
        for r in check_all(&t) {
            if name != "centos/systemd" && systemd_only.contains(&r.id) {
                assert!(
                    matches!(r.outcome, Outcome::NotApplicable(_)),
                    "{name}: {}",
                    r.id
                );
            } else {
                assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", r.id);
            }
        }
    }
}

#[test]
fn applying_twice_changes_nothing() {
    for (name, mut t) in flavours() {
        apply_profile(&mut t, &[]).unwrap();
        let once = t.clone();
        apply_profile(&mut t, &[]).unwrap();
        assert!(
            diff(&once, &t).is_empty(),
            "{name}: {:?}",
            diff(&once, &t).0.keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn an_excluded_rule_is_not_applied_and_reported_without_failing() {
    let (_, mut t) = flavours().remove(2);
    apply_profile(&mut t, &["firewall-default-deny".to_string()]).unwrap();
    assert!(t.get(firewall::POLICY_FILE).is_none());
    let reports = check_all(&t);
    let fw = reports
        .iter()
        .find(|r| r.id == "firewall-default-deny")
        .unwrap();
    assert!(fw.excluded && matches!(fw.outcome, Outcome::Fail(_)) && !fw.failed());
    assert!(!reports.iter().any(RuleReport::failed));
    assert_eq!(
        record::read(&t).unwrap().excluded,
        vec!["firewall-default-deny"]
    );
}

#[test]
fn rule_ids_are_unique_kebab_case() {
    let ids = rule_ids();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len());
    assert!(ids
        .iter()
        .all(|id| id.chars().all(|c| c.is_ascii_lowercase() || c == '-')));
}

/// An edit an image could pick up after hardening (a package, a `files:` entry, a
/// careless layer) that must fail exactly one rule.
type Tamper = fn(&mut Tree);

fn put(t: &mut Tree, path: &str, text: &str, mode: u32) {
    put_file(t, path, text, mode).unwrap();
}

/// One tamper case per rule, by id.
const TAMPERS: &[(&str, Tamper)] = &[
    ("sysctl-network", |t| {
        put(
            t,
            "etc/sysctl.d/99-local.conf",
            "net.ipv4.conf.all.accept_redirects = 1\n",
            0o644,
        )
    }),
    ("sysctl-kernel", |t| {
        put(
            t,
            "etc/sysctl.d/99-local.conf",
            "kernel.dmesg_restrict = 0\n",
            0o644,
        )
    }),
    ("sysctl-bpf", |t| {
        put(
            t,
            "etc/sysctl.d/99-local.conf",
            "kernel.unprivileged_bpf_disabled = 0\n",
            0o644,
        )
    }),
    ("core-dumps", |t| {
        put(
            t,
            "etc/security/limits.d/90-debug.conf",
            "* hard core unlimited\n",
            0o644,
        )
    }),
    ("kernel-modules-blacklist", |t| {
        t.remove(modules::FILE).unwrap();
    }),
    ("mount-tmp", |t| {
        let fstab = t.read_text("etc/fstab").unwrap().replace(
            "tmpfs /tmp tmpfs rw,nodev,nosuid,noexec",
            "tmpfs /tmp tmpfs rw,nodev,nosuid",
        );
        put(t, "etc/fstab", &fstab, 0o644)
    }),
    ("mount-dev-shm", |t| {
        let fstab = t.read_text("etc/fstab").unwrap().replace(
            "tmpfs /dev/shm tmpfs rw,nodev,nosuid,noexec",
            "tmpfs /dev/shm tmpfs rw,nodev,noexec",
        );
        put(t, "etc/fstab", &fstab, 0o644)
    }),
    ("account-file-permissions", |t| {
        t.get_mut("etc/passwd").unwrap().meta.mode = 0o664
    }),
    ("password-hashing", |t| {
        let defs = t.read_text("etc/login.defs").unwrap().to_string() + "ENCRYPT_METHOD MD5\n";
        put(t, "etc/login.defs", &defs, 0o644)
    }),
    ("kubelet-file-permissions", |t| {
        t.get_mut("etc/kubernetes/kubelet.conf").unwrap().meta.mode = 0o640
    }),
    ("log-permissions", |t| put(t, "var/log/app.log", "", 0o644)),
    ("ssh-root-login", |t| {
        put(
            t,
            "etc/ssh/sshd_config.d/0-legacy.conf",
            "PermitRootLogin yes\n",
            0o600,
        )
    }),
    ("ssh-crypto-policy", |t| {
        put(
            t,
            "etc/ssh/sshd_config.d/0-legacy.conf",
            "Ciphers aes128-cbc\n",
            0o600,
        )
    }),
    ("umask", |t| {
        put(t, "etc/profile.d/zz-lax.sh", "umask 022\n", 0o644)
    }),
    ("shell-timeout", |t| {
        put(t, "etc/profile.d/zz-idle.sh", "TMOUT=0\n", 0o644)
    }),
    ("login-banners", |t| {
        put(t, "etc/issue.net", "Kernel \\r\n", 0o644)
    }),
    ("sudo", |t| {
        put(t, "etc/sudoers.d/zz-ops", "Defaults !use_pty\n", 0o440)
    }),
    ("su-wheel", |t| {
        put(t, "etc/pam.d/su", "auth sufficient pam_rootok.so\n", 0o644)
    }),
    ("single-user-auth", |t| {
        put(
            t,
            "etc/systemd/system/emergency.service.d/zz-debug.conf",
            "[Service]\nExecStart=\nExecStart=-/bin/sh\n",
            0o644,
        )
    }),
    ("cron-permissions", |t| put(t, "etc/cron.deny", "", 0o600)),
    ("journald-storage", |t| {
        put(
            t,
            "etc/systemd/journald.conf.d/zz-volatile.conf",
            "[Journal]\nStorage=volatile\n",
            0o644,
        )
    }),
    ("audit-rules", |t| {
        put(t, "etc/audit/rules.d/100-local.rules", "-e 1\n", 0o640)
    }),
    ("firewall-default-deny", |t| {
        t.remove(firewall::POLICY_FILE).unwrap();
    }),
    ("world-writable", |t| {
        t.mkdir_all("srv", &Meta::new(0o755)).unwrap();
        t.mkdir_all("srv/drop", &Meta::new(0o777)).unwrap();
    }),
    ("unowned-files", |t| {
        let mut e = Entry::file("", 0o644);
        e.meta.uid = 4242;
        t.insert("etc/stray", e).unwrap();
    }),
    ("setuid-allow-list", |t| {
        put(t, "usr/bin/newgrp", "", 0o4755)
    }),
];

#[test]
fn the_profile_has_at_least_25_rules_each_with_a_tamper_case() {
    assert!(RULES.len() >= 25, "{} rules", RULES.len());
    let tampered: Vec<&str> = TAMPERS.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        tampered,
        rule_ids(),
        "one tamper case per rule, in profile order"
    );
}

#[test]
fn each_tamper_case_fails_exactly_its_rule_on_every_flavour_it_applies_to() {
    for (name, mut t) in flavours() {
        apply_profile(&mut t, &[]).unwrap();
        assert!(!check_all(&t).iter().any(RuleReport::failed), "{name}");
        for (id, tamper) in TAMPERS {
            let applies = check_all(&t)
                .iter()
                .any(|r| r.id == *id && r.outcome == Outcome::Pass);
            if !applies {
                continue;
            }
            let mut tampered = t.clone();
            tamper(&mut tampered);
            let failed: Vec<&str> = check_all(&tampered)
                .into_iter()
                .filter(RuleReport::failed)
                .map(|r| r.id)
                .collect();
            assert_eq!(failed, [*id], "{name}: tampering for {id}");
        }
    }
}

#[test]
fn every_rule_applies_somewhere() {
    let mut passing = std::collections::BTreeSet::new();
    for (_, mut t) in flavours() {
        apply_profile(&mut t, &[]).unwrap();
        passing.extend(
            check_all(&t)
                .into_iter()
                .filter(|r| r.outcome == Outcome::Pass)
                .map(|r| r.id),
        );
    }
    let never: Vec<&str> = rule_ids()
        .into_iter()
        .filter(|id| !passing.contains(id))
        .collect();
    assert!(
        never.is_empty(),
        "rules not applicable on any flavour: {never:?}"
    );
}
