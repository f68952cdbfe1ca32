//! cron's files belong to root and no one else reads them (CIS 5.1.2-5.1.9): /etc/crontab
//! 0600, /etc/cron.{d,hourly,daily,weekly,monthly} 0700, root:root; only users in
//! cron.allow / at.allow may schedule jobs (root only here), and no cron.deny / at.deny
//! (an allow list, not a deny list). N/A where the image has no cron.

use super::flavour::Flavour;
use super::{exists, looser_than, put_file, tighten, Outcome, Rule};
use crate::tree::{Tree, TreeError};

const CRONTAB: &str = "etc/crontab";
const DIRS: &[&str] = &[
    "etc/cron.d",
    "etc/cron.hourly",
    "etc/cron.daily",
    "etc/cron.weekly",
    "etc/cron.monthly",
];
const ALLOW: &[&str] = &["etc/cron.allow", "etc/at.allow"];
const DENY: &[&str] = &["etc/cron.deny", "etc/at.deny"];

pub const PERMISSIONS: Rule = Rule {
    id: "cron-permissions",
    title: "cron: crontab 0600 and cron directories 0700 root:root; cron.allow/at.allow only, no deny lists",
    cis: "5.1.2-5.1.9",
    apply,
    check,
};

/// A cron daemon with system crontabs (cronie's crond, Debian's cron) or their
/// configuration. busybox's crond applet reads neither /etc/crontab nor the allow lists.
fn has_cron(tree: &Tree) -> bool {
    let daemon = ["usr/sbin/crond", "usr/sbin/cron", "sbin/crond"]
        .iter()
        .filter_map(|p| tree.resolve_all(p).ok())
        .any(|p| tree.get(&p).is_some() && !p.ends_with("busybox"));
    daemon || exists(tree, CRONTAB) || exists(tree, "etc/cron.d")
}

/// (path, most permissive mode) for what exists.
fn governed(tree: &Tree) -> Vec<(String, u32)> {
    std::iter::once((CRONTAB, 0o600))
        .chain(DIRS.iter().map(|d| (*d, 0o700)))
        .chain(ALLOW.iter().map(|a| (*a, 0o640)))
        .filter_map(|(p, m)| {
            Some((
                tree.resolve_all(p).ok().filter(|k| tree.get(k).is_some())?,
                m,
            ))
        })
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    if !has_cron(tree) {
        return Ok(());
    }
    for deny in DENY {
        tree.remove(deny)?;
    }
    for allow in ALLOW {
        if !exists(tree, allow) {
            put_file(tree, allow, "root\n", 0o600)?;
        }
    }
    for (path, max) in governed(tree) {
        tighten(tree, &path, max);
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    if !has_cron(tree) {
        return Outcome::NotApplicable("no cron in the image".into());
    }
    let mut problems: Vec<String> = governed(tree)
        .into_iter()
        .filter_map(|(path, max)| looser_than(&path, &tree.get(&path)?.meta, max))
        .collect();
    for deny in DENY.iter().filter(|d| exists(tree, d)) {
        problems.push(format!(
            "/{deny} exists: cron and at should use an allow list"
        ));
    }
    for allow in ALLOW.iter().filter(|a| !exists(tree, a)) {
        problems.push(format!("no /{allow}: every user may schedule jobs"));
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_files_are_tightened_and_deny_lists_removed() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        put_file(&mut t, "usr/bin/busybox", "", 0o755).unwrap();
        crate::harden::put_link(&mut t, "usr/sbin/crond", "/usr/bin/busybox").unwrap();
        assert!(
            matches!(check(&t, &f), Outcome::NotApplicable(_)),
            "busybox's crond has no system crontab"
        );
        t.remove("usr/sbin/crond").unwrap();
        put_file(&mut t, "usr/sbin/crond", "", 0o755).unwrap();
        put_file(&mut t, CRONTAB, "SHELL=/bin/sh\n", 0o644).unwrap();
        put_file(&mut t, "etc/cron.d/0hourly", "", 0o644).unwrap();
        put_file(&mut t, "etc/cron.deny", "", 0o644).unwrap();
        let Outcome::Fail(p) = check(&t, &f) else {
            panic!()
        };
        assert_eq!(
            p,
            vec![
                "/etc/crontab is 0644 0:0, want at most 0600 0:0",
                "/etc/cron.d is 0755 0:0, want at most 0700 0:0",
                "/etc/cron.deny exists: cron and at should use an allow list",
                "no /etc/cron.allow: every user may schedule jobs",
                "no /etc/at.allow: every user may schedule jobs",
            ]
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert!(t.get("etc/cron.deny").is_none());
    }
}
