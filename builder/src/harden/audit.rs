//! Audit rules (CIS 4.1.3.x) where the image has auditd: time changes, identity files,
//! network environment, MAC policy, logins, sessions, permission changes, mounts,
//! deletions, sudoers, kernel modules; the configuration made immutable last (`-e 2`).
//! augenrules concatenates /etc/audit/rules.d/*.rules in name order.

use super::flavour::Flavour;
use super::{files_in, first_existing, put_file, Outcome, Rule};
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
    )
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    if !has_auditd(tree) {
        return Outcome::NotApplicable("no auditd in the image".into());
    }
    let files = files_in(tree, "etc/audit/rules.d", ".rules");
    let lines: Vec<&str> = files
        .iter()
        .flat_map(|(_, t)| t.lines().map(str::trim))
        .collect();
    let mut problems: Vec<String> = REQUIRED
        .iter()
        .filter(|r| !lines.contains(r))
        .map(|r| format!("missing audit rule `{r}`"))
        .collect();
    let last = lines
        .iter()
        .rev()
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    if last != Some(&"-e 2") {
        problems.push("the last rule in /etc/audit/rules.d is not `-e 2` (immutable)".into());
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_only_where_auditd_is() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        assert!(t.get(FILE).is_none());
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        put_file(&mut t, "usr/sbin/auditd", "", 0o755).unwrap();
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == REQUIRED.len() + 1));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        put_file(&mut t, "etc/audit/rules.d/99-zz-local.rules", "-D\n", 0o640).unwrap();
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == 1));
    }
}
