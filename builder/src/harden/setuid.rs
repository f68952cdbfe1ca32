//! setuid and setgid bits only where an allow-list says they are needed (CIS 6.1.13,
//! 6.1.14: "review"; we decide at build time). A Kubernetes node needs almost none:
//! privilege changes happen through the kubelet and the container runtime.

use super::flavour::Flavour;
use super::{Outcome, Rule};
use crate::tree::{Kind, Tree, TreeError};

/// Paths (after merged-/usr) that may keep setuid/setgid: su/sudo/passwd for operators,
/// PAM's password checker, and D-Bus's activation helper (system services on systemd).
pub const ALLOWED: &[&str] = &[
    "usr/bin/su",
    "usr/bin/sudo",
    "usr/bin/passwd",
    "usr/sbin/unix_chkpwd",
    "usr/lib/dbus-1.0/dbus-daemon-launch-helper",
    "usr/libexec/dbus-1/dbus-daemon-launch-helper",
];

pub const ALLOW_LIST: Rule = Rule {
    id: "setuid-allow-list",
    title: "setuid/setgid bits only on su, sudo, passwd, unix_chkpwd and the D-Bus launch helper",
    cis: "6.1.13-6.1.14",
    apply,
    check,
};

fn offenders(tree: &Tree) -> Vec<(String, u32)> {
    tree.iter()
        .filter(|(_, e)| matches!(e.kind, Kind::File(_)) && e.meta.mode & 0o6000 != 0)
        .filter(|(p, _)| !ALLOWED.contains(p))
        .map(|(p, e)| (p.to_string(), e.meta.mode))
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    for (path, _) in offenders(tree) {
        if let Some(e) = tree.get_mut(&path) {
            e.meta.mode &= !0o6000;
        }
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    Outcome::from_problems(
        offenders(tree)
            .into_iter()
            .map(|(p, m)| format!("/{p} is {m:04o}: setuid/setgid and not on the allow-list"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    #[test]
    fn only_allowed_binaries_keep_their_bits() {
        let mut t = Tree::new();
        put_file(&mut t, "usr/bin/su", "", 0o4755).unwrap();
        put_file(&mut t, "usr/bin/chfn", "", 0o4755).unwrap();
        put_file(&mut t, "usr/bin/wall", "", 0o2755).unwrap();
        let f = Flavour::detect(&t);
        let Outcome::Fail(p) = check(&t, &f) else {
            panic!()
        };
        assert_eq!(
            p,
            vec![
                "/usr/bin/chfn is 4755: setuid/setgid and not on the allow-list",
                "/usr/bin/wall is 2755: setuid/setgid and not on the allow-list"
            ]
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert_eq!(t.get("usr/bin/su").unwrap().meta.mode, 0o4755);
        assert_eq!(t.get("usr/bin/wall").unwrap().meta.mode, 0o755);
    }
}
