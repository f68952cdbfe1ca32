//! Profile-wide properties: every rule's check passes after its apply, on trees shaped
//! like each flavour; applying twice changes nothing; exclusions are recorded.

use super::*;
use crate::tree::diff::diff;

/// A tree with what the rules look at: accounts, sshd, auditd, nft, a log directory,
/// a setuid binary, and the given init marker and os-release.
fn flavoured(os_release: &str, init_marker: &str) -> Tree {
    let mut t = Tree::new();
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

#[test]
fn every_rule_passes_after_it_is_applied_on_every_flavour() {
    for (name, mut t) in flavours() {
        let before = check_all(&t);
        assert!(
            before.iter().any(RuleReport::failed),
            "{name}: an unhardened tree should fail"
        );
        apply_profile(&mut t, &[]).unwrap();
        for r in check_all(&t) {
            assert_eq!(r.outcome, Outcome::Pass, "{name}: {}", r.id);
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
