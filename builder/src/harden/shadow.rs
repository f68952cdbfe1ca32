//! Account files (CIS 6.1.1-6.1.9): passwd and group 0644 root:root; shadow and gshadow
//! (and their `-` backups) 0000 root:root on RHEL, where only root reads them, and 0640
//! root:shadow on Debian and Alpine, where the `shadow` group's helpers (unix_chkpwd,
//! chage) read them. Without a shadow group, 0600 root:root.

use super::flavour::{Family, Flavour};
use super::{Outcome, Rule};
use crate::tree::{Kind, Tree, TreeError};

pub const ACCOUNT_FILES: Rule = Rule {
    id: "account-file-permissions",
    title: "passwd/group 0644 root:root; shadow/gshadow 0000 root:root (RHEL) or 0640 root:shadow (Debian, Alpine)",
    cis: "6.1.1-6.1.9",
    apply,
    check,
};

const PUBLIC: &[&str] = &["etc/passwd", "etc/group", "etc/passwd-", "etc/group-"];
const SECRET: &[&str] = &["etc/shadow", "etc/gshadow", "etc/shadow-", "etc/gshadow-"];

/// (mode, uid, gid) a secret account file must have at most / exactly.
fn secret_owner(flavour: &Flavour) -> (u32, u32, u32) {
    match (flavour.family, flavour.shadow_gid) {
        (Family::Rhel, _) => (0o000, 0, 0),
        (_, Some(gid)) => (0o640, 0, gid),
        (_, None) => (0o600, 0, 0),
    }
}

fn targets(flavour: &Flavour) -> Vec<(&'static str, u32, u32, u32)> {
    let (m, u, g) = secret_owner(flavour);
    PUBLIC
        .iter()
        .map(|p| (*p, 0o644, 0, 0))
        .chain(SECRET.iter().map(|p| (*p, m, u, g)))
        .collect()
}

fn apply(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    for (path, mode, uid, gid) in targets(flavour) {
        let Ok(key) = tree.resolve_all(path) else {
            continue;
        };
        if let Some(e) = tree.get_mut(&key) {
            if matches!(e.kind, Kind::File(_)) {
                // Never loosen: a stricter mode stays (a 0600 passwd is odd but not unsafe).
                e.meta.mode &= mode | !0o777;
                e.meta.mode &= !0o7000;
                e.meta.uid = uid;
                e.meta.gid = gid;
            }
        }
    }
    Ok(())
}

fn check(tree: &Tree, flavour: &Flavour) -> Outcome {
    let mut problems = Vec::new();
    if tree.get_resolved("etc/passwd").is_none() {
        return Outcome::NotApplicable("no /etc/passwd in the image".into());
    }
    for (path, mode, uid, gid) in targets(flavour) {
        let Some(e) = tree.get_resolved(path) else {
            continue;
        };
        let m = e.meta.mode;
        if m & !mode & 0o7777 != 0 || (e.meta.uid, e.meta.gid) != (uid, gid) {
            problems.push(format!(
                "/{path} is {m:04o} {}:{}, want at most {mode:04o} {uid}:{gid}",
                e.meta.uid, e.meta.gid
            ));
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    fn tree(os: &str) -> Tree {
        let mut t = Tree::new();
        put_file(&mut t, "etc/os-release", os, 0o644).unwrap();
        put_file(&mut t, "etc/group", "root:x:0:\nshadow:x:42:\n", 0o644).unwrap();
        put_file(&mut t, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o666).unwrap();
        put_file(&mut t, "etc/shadow", "root:*:::::::\n", 0o644).unwrap();
        t
    }

    #[test]
    fn rhel_shadow_is_0000_root_and_debian_0640_shadow() {
        for (os, mode, gid) in [
            ("ID=centos\nID_LIKE=\"rhel fedora\"\n", 0, 0),
            ("ID=alpine\n", 0o640, 42),
        ] {
            let mut t = tree(os);
            let f = Flavour::detect(&t);
            assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == 2));
            apply(&mut t, &f).unwrap();
            let s = &t.get("etc/shadow").unwrap().meta;
            assert_eq!((s.mode, s.uid, s.gid), (mode, 0, gid), "{os}");
            assert_eq!(t.get("etc/passwd").unwrap().meta.mode, 0o644);
            assert_eq!(check(&t, &f), Outcome::Pass);
        }
    }
}
