//! Core dumps off (CIS 1.5.1, 1.6.1): a crashing process's memory can hold secrets
//! (tokens, keys) and a node has no one to read dumps.
//!
//! - systemd: systemd-coredump is the kernel's core_pattern; `Storage=none` and
//!   `ProcessSizeMax=0` in /etc/systemd/coredump.conf make it keep nothing.
//! - other inits: `kernel.core_pattern = |/bin/false` (a pipe to a helper that reads
//!   nothing), loaded with the other sysctls.
//! - wherever PAM is (pam_limits): `* hard core 0` in /etc/security/limits.d.
//!
//! setuid programs never dump: `fs.suid_dumpable = 0` is in `sysctl-kernel`.

use super::flavour::Flavour;
use super::{exists, files_in, put_file, sysctl, systemd_conf, Outcome, Rule};
use crate::steps::agent::InitSystem;
use crate::tree::{Tree, TreeError};

const CONF: &str = "systemd/coredump.conf";
const COREDUMP: &[(&str, &str)] = &[("Storage", "none"), ("ProcessSizeMax", "0")];
const PATTERN: &[(&str, &str)] = &[("kernel.core_pattern", "|/bin/false")];
pub const LIMITS_FILE: &str = "etc/security/limits.d/50-harmony-cis-coredump.conf";

pub const OFF: Rule = Rule {
    id: "core-dumps",
    title: "no core dumps: systemd-coredump stores nothing (or core_pattern discards them), hard core limit 0",
    cis: "1.5.1, 1.6.1",
    apply,
    check,
};

fn has_pam(tree: &Tree) -> bool {
    exists(tree, "etc/pam.d")
}

fn apply(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    if flavour.init == Some(InitSystem::Systemd) {
        systemd_conf::set(tree, CONF, "Coredump", COREDUMP)?;
    } else {
        sysctl::write_settings(tree, PATTERN)?;
        sysctl::ensure_loader(tree, flavour)?;
    }
    if has_pam(tree) {
        put_file(
            tree,
            LIMITS_FILE,
            "# CIS 1.5.1 (harmony hardening, rule core-dumps)\n*\thard\tcore\t0\n",
            0o644,
        )?;
    }
    Ok(())
}

/// The hard `core` limit for everyone (`*`) as pam_limits reads it: limits.conf, then
/// limits.d/*.conf in name order, the last line winning.
fn hard_core_limit(tree: &Tree) -> Option<(String, String)> {
    let mut files: Vec<(String, &str)> = Vec::new();
    if let Some(t) = tree.read_text("etc/security/limits.conf") {
        files.push(("etc/security/limits.conf".into(), t));
    }
    files.extend(files_in(tree, "etc/security/limits.d", ".conf"));
    let mut found = None;
    for (path, text) in files {
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let [domain, kind, "core", value] = w[..] {
                if domain == "*" && (kind == "hard" || kind == "-") {
                    found = Some((value.to_string(), path.clone()));
                }
            }
        }
    }
    found
}

fn check(tree: &Tree, flavour: &Flavour) -> Outcome {
    let mut problems = Vec::new();
    if flavour.init == Some(InitSystem::Systemd) {
        for (key, want) in COREDUMP {
            match systemd_conf::effective(tree, CONF, "Coredump", key) {
                Some((v, _)) if v.eq_ignore_ascii_case(want) => {}
                Some((v, file)) => problems.push(format!(
                    "systemd-coredump {key}={v} (last set in /{file}), want {want}"
                )),
                None => problems.push(format!(
                    "systemd-coredump {key} is not set (its default keeps dumps), want {want}"
                )),
            }
        }
    } else {
        problems.extend(sysctl::check_values(tree, flavour, PATTERN));
    }
    if has_pam(tree) {
        match hard_core_limit(tree) {
            Some((v, _)) if v == "0" => {}
            Some((v, file)) => problems.push(format!(
                "the hard core limit for * is {v} (last set in /{file}), want 0"
            )),
            None => {
                problems.push("no `* hard core 0` in /etc/security/limits.conf or limits.d".into())
            }
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_stores_nothing_and_a_later_limit_is_named() {
        let mut t = Tree::new();
        put_file(&mut t, "usr/lib/systemd/systemd", "", 0o755).unwrap();
        put_file(&mut t, "usr/lib/systemd/systemd-sysctl", "", 0o755).unwrap();
        put_file(&mut t, "etc/pam.d/login", "", 0o644).unwrap();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == 3));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert!(
            t.read_text(sysctl::CIS_FILE).is_none(),
            "systemd keeps its core_pattern"
        );
        put_file(
            &mut t,
            "etc/security/limits.d/90-dev.conf",
            "*  hard  core  unlimited\n",
            0o644,
        )
        .unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![
                "the hard core limit for * is unlimited (last set in /etc/security/limits.d/90-dev.conf), want 0".into()
            ])
        );
    }

    #[test]
    fn busybox_discards_through_core_pattern() {
        let mut t = Tree::new();
        put_file(&mut t, "etc/inittab", "::sysinit:/etc/init.d/rcS\n", 0o644).unwrap();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert!(t
            .read_text(sysctl::CIS_FILE)
            .unwrap()
            .contains("kernel.core_pattern = |/bin/false\n"));
        assert!(t.get(LIMITS_FILE).is_none(), "no PAM, no limits file");
    }
}
