//! Audit rules (CIS 4.1.3.x) where the image has auditd: time changes, identity files,
//! network environment, MAC policy, logins, sessions, permission changes, mounts,
//! deletions, sudoers, kernel modules; the configuration made immutable last (`-e 2`).
//!
//! Judged as auditd will load them: rules.d merged the way augenrules merges it
//! (`augenrules.rs`: `ls -v` order, the last `-e` wins and goes last, the last bare
//! `-D` goes first, `-D -k KEY` stays in place), and /etc/audit/audit.rules — which
//! `auditctl -R` reads top to bottom, and which is all there is where /etc is
//! read-only — written by the build as augenrules would write it.

use super::augenrules::{load_in_order, merge, rule_files, rule_key, AUDIT_RULES};
use super::flavour::Flavour;
use super::{first_existing, put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const FILE: &str = "etc/audit/rules.d/50-harmony-cis.rules";
/// Sorts last so nothing is added after the configuration is locked.
pub const LOCK_FILE: &str = "etc/audit/rules.d/99-harmony-immutable.rules";

pub const REQUIRED: &[&str] = &[
    "-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change",
    "-w /etc/localtime -p wa -k time-change",
    "-w /etc/group -p wa -k identity",
    "-w /etc/passwd -p wa -k identity",
    "-w /etc/gshadow -p wa -k identity",
    "-w /etc/shadow -p wa -k identity",
    "-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale",
    "-w /etc/hosts -p wa -k system-locale",
    "-w /etc/hostname -p wa -k system-locale",
    "-w /etc/selinux -p wa -k MAC-policy",
    "-w /var/log/lastlog -p wa -k logins",
    "-w /var/run/faillock -p wa -k logins",
    "-w /var/run/utmp -p wa -k session",
    "-w /var/log/wtmp -p wa -k session",
    "-w /var/log/btmp -p wa -k session",
    "-a always,exit -F arch=b64 -S chmod,fchmod,fchmodat -F auid>=1000 -F auid!=unset -k perm_mod",
    "-a always,exit -F arch=b64 -S chown,fchown,lchown,fchownat -F auid>=1000 -F auid!=unset -k perm_mod",
    "-a always,exit -F arch=b64 -S setxattr,lsetxattr,fsetxattr,removexattr,lremovexattr,fremovexattr -F auid>=1000 -F auid!=unset -k perm_mod",
    "-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts",
    "-a always,exit -F arch=b64 -S unlink,unlinkat,rename,renameat -F auid>=1000 -F auid!=unset -k delete",
    "-w /etc/sudoers -p wa -k scope",
    "-w /etc/sudoers.d -p wa -k scope",
    "-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k kernel_modules",
    "-w /usr/sbin/insmod -p x -k kernel_modules",
    "-w /usr/sbin/rmmod -p x -k kernel_modules",
    "-w /usr/sbin/modprobe -p x -k kernel_modules",
];

pub const RULES: Rule = Rule {
    id: "audit-rules",
    title: "auditd records time, identity, network, MAC, login, session, permission, mount, deletion, sudoers and module events; rules immutable",
    cis: "4.1.3.1-4.1.3.20",
    apply,
    check,
};

fn has_auditd(tree: &Tree) -> bool {
    first_existing(tree, &["usr/sbin/auditd", "sbin/auditd"]).is_some()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    if !has_auditd(tree) {
        return Ok(());
    }
    let text = format!(
        "## CIS audit rules (harmony hardening, rule audit-rules)\n{}\n",
        REQUIRED.join("\n")
    );
    put_file(tree, FILE, &text, 0o640)?;
    put_file(
        tree,
        LOCK_FILE,
        "## CIS 4.1.3.20: no rule changes until reboot\n-e 2\n",
        0o640,
    )?;
    // What augenrules would write, so a stale audit.rules from the base never loads
    // and augenrules at boot finds nothing to change.
    let merged = merge(&rule_files(tree)).text();
    put_file(tree, AUDIT_RULES, &merged, 0o640)
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    if !has_auditd(tree) {
        return Outcome::NotApplicable("no auditd in the image".into());
    }
    let mut problems = Vec::new();
    let merged = merge(&rule_files(tree));
    let rules: Vec<&str> = merged.rules.iter().map(|l| l.text.trim()).collect();
    for r in REQUIRED.iter().filter(|r| !rules.contains(r)) {
        problems.push(format!("missing audit rule `{r}` in /etc/audit/rules.d"));
    }
    match &merged.enable {
        None => {
            problems.push("no `-e 2` in /etc/audit/rules.d: the rules are not immutable".into())
        }
        Some(e) if e.text.split_whitespace().collect::<Vec<_>>() != ["-e", "2"] => {
            problems.push(format!(
                "{}: `{}` is the last -e augenrules reads (files in `ls -v` order), so it \
             replaces `-e 2` (immutable) as the merged file's last line",
                e.file,
                e.text.trim()
            ))
        }
        Some(_) => {}
    }
    // `-D` with options stays where it is: after our rules it deletes them.
    let ours = |r: &str| REQUIRED.contains(&r);
    for (i, line) in merged.rules.iter().enumerate() {
        let words: Vec<&str> = line.text.split_whitespace().collect();
        if words.first() != Some(&"-D") {
            continue;
        }
        let key = rule_key(&line.text);
        let deleted: Vec<&str> = rules[..i]
            .iter()
            .copied()
            .filter(|r| ours(r) && (key.is_none() || rule_key(r) == key))
            .collect();
        if !deleted.is_empty() {
            problems.push(format!(
                "{}: `{}` comes after Harmony's rules (augenrules keeps a -D with options in \
                 place) and deletes {} of them, e.g. `{}`",
                line.file,
                line.text.trim(),
                deleted.len(),
                deleted[0]
            ));
        }
    }
    // The file auditctl -R loads: read top to bottom, as auditctl does.
    match tree.read_text(AUDIT_RULES) {
        None => problems.push(format!(
            "/{AUDIT_RULES} is missing: augenrules writes it at boot, and where /etc is \
             read-only auditd loads no rules"
        )),
        Some(text) => {
            let loaded = load_in_order(text.lines());
            let missing = REQUIRED
                .iter()
                .filter(|r| !loaded.rules.contains(r))
                .count();
            if missing > 0 {
                problems.push(format!(
                    "/{AUDIT_RULES}: {missing} of Harmony's rules are not in force when it is \
                     loaded top to bottom (absent, or deleted by a later -D): stale, not what \
                     augenrules makes of /etc/audit/rules.d"
                ));
            }
            if !loaded.locked {
                problems.push(format!(
                    "/{AUDIT_RULES}: does not end with `-e 2` (immutable)"
                ));
            }
            if let Some(late) = loaded.after_lock.first() {
                problems.push(format!(
                    "/{AUDIT_RULES}: `{late}` comes after `-e 2`, which rejects it"
                ));
            }
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::super::augenrules::tests::CENTOS_RULES_D_AUDIT_RULES;
    use super::*;

    fn fails_with(t: &Tree, f: &Flavour, needle: &str) {
        match check(t, f) {
            Outcome::Fail(p) => assert!(p.iter().any(|p| p.contains(needle)), "{p:?}"),
            other => panic!("expected a failure mentioning {needle}: {other:?}"),
        }
    }

    fn with_auditd() -> Tree {
        let mut t = Tree::new();
        put_file(&mut t, "usr/sbin/auditd", "", 0o755).unwrap();
        t
    }

    #[test]
    fn rules_only_where_auditd_is() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        assert!(t.get(FILE).is_none());
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        let mut t = with_auditd();
        // Every rule missing, no -e 2, no audit.rules.
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == REQUIRED.len() + 2));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
    }

    /// CentOS Stream 9: the audit package's rules.d/audit.rules (-D, -b, -f; `ls -v`
    /// reads it after our numbered files) and a stale audit.rules made from it alone.
    #[test]
    fn centos_base_rules_and_a_stale_audit_rules() {
        let mut t = with_auditd();
        let f = Flavour::detect(&t);
        put_file(
            &mut t,
            "etc/audit/rules.d/audit.rules",
            CENTOS_RULES_D_AUDIT_RULES,
            0o640,
        )
        .unwrap();
        let stale = merge(&rule_files(&t)).text();
        put_file(&mut t, AUDIT_RULES, &stale, 0o640).unwrap();
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        let text = t.read_text(AUDIT_RULES).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[1..4], ["-D", "-b 8192", "-f 1"], "{text}");
        assert_eq!(lines.last(), Some(&"-e 2"));
        assert_eq!(lines.iter().filter(|l| **l == "-D").count(), 1);
        // The stale one put back: verify names it.
        put_file(&mut t, AUDIT_RULES, &stale, 0o640).unwrap();
        fails_with(
            &t,
            &f,
            "/etc/audit/audit.rules: 26 of Harmony's rules are not in force",
        );
        fails_with(&t, &f, "/etc/audit/audit.rules: does not end with `-e 2`");
    }

    #[test]
    fn a_later_e_replaces_ours_and_is_named() {
        let mut t = with_auditd();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        // `ls -v` reads 100- after 99- (plain byte order would read it first).
        put_file(&mut t, "etc/audit/rules.d/100-local.rules", "-e 1\n", 0o640).unwrap();
        fails_with(
            &t,
            &f,
            "/etc/audit/rules.d/100-local.rules: `-e 1` is the last -e augenrules reads",
        );
        // An -e in a file read before ours does not matter.
        t.remove("etc/audit/rules.d/100-local.rules").unwrap();
        put_file(&mut t, "etc/audit/rules.d/10-base.rules", "-e 1\n", 0o640).unwrap();
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
    }

    #[test]
    fn a_keyed_delete_after_ours_is_named_a_bare_one_is_moved_first() {
        let mut t = with_auditd();
        let f = Flavour::detect(&t);
        put_file(&mut t, "etc/audit/rules.d/99-zz-local.rules", "-D\n", 0o640).unwrap();
        apply(&mut t, &f).unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Pass,
            "augenrules emits the last bare -D first"
        );
        assert_eq!(t.read_text(AUDIT_RULES).unwrap().lines().nth(1), Some("-D"));
        put_file(
            &mut t,
            "etc/audit/rules.d/99-zz-local.rules",
            "-D -k identity\n",
            0o640,
        )
        .unwrap();
        apply(&mut t, &f).unwrap();
        fails_with(
            &t,
            &f,
            "/etc/audit/rules.d/99-zz-local.rules: `-D -k identity` comes after Harmony's rules",
        );
        fails_with(
            &t,
            &f,
            "/etc/audit/audit.rules: 4 of Harmony's rules are not in force",
        );
    }

    #[test]
    fn an_audit_rules_with_a_delete_after_ours_is_named() {
        let mut t = with_auditd();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        let mut text = t.read_text(AUDIT_RULES).unwrap().replace("-e 2\n", "");
        text.push_str("-D\n-e 2\n-a always,exit -S mount\n");
        put_file(&mut t, AUDIT_RULES, &text, 0o640).unwrap();
        fails_with(&t, &f, "are not in force when it is loaded top to bottom");
        fails_with(&t, &f, "`-a always,exit -S mount` comes after `-e 2`");
    }
}
