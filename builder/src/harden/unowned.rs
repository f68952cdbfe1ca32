//! Every file belongs to a user and a group the image knows (CIS 6.1.11-6.1.12): an
//! owner id with no /etc/passwd entry is handed to whoever is later created with that
//! id. Such files are given to root. N/A without /etc/passwd.

use std::collections::BTreeSet;

use super::flavour::Flavour;
use super::{Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const OWNED: Rule = Rule {
    id: "unowned-files",
    title: "every file's owner and group exist in /etc/passwd and /etc/group",
    cis: "6.1.11-6.1.12",
    apply,
    check,
};

/// The numeric ids (third field) of a passwd or group file.
fn ids(text: &str) -> BTreeSet<u32> {
    text.lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect()
}

struct Known {
    users: BTreeSet<u32>,
    groups: BTreeSet<u32>,
}

fn known(tree: &Tree) -> Option<Known> {
    Some(Known {
        users: ids(tree.read_text("etc/passwd")?),
        groups: ids(tree.read_text("etc/group").unwrap_or("root:x:0:\n")),
    })
}

/// (path, uid known, gid known) of every entry with an unknown owner or group.
fn offenders(tree: &Tree, k: &Known) -> Vec<(String, u32, u32)> {
    tree.iter()
        .filter(|(_, e)| !k.users.contains(&e.meta.uid) || !k.groups.contains(&e.meta.gid))
        .map(|(p, e)| (p.to_string(), e.meta.uid, e.meta.gid))
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    let Some(k) = known(tree) else {
        return Ok(());
    };
    for (path, _, _) in offenders(tree, &k) {
        if let Some(e) = tree.get_mut(&path) {
            if !k.users.contains(&e.meta.uid) {
                e.meta.uid = 0;
            }
            if !k.groups.contains(&e.meta.gid) {
                e.meta.gid = 0;
            }
        }
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let Some(k) = known(tree) else {
        return Outcome::NotApplicable("no /etc/passwd in the image".into());
    };
    let offenders = offenders(tree, &k);
    let mut problems: Vec<String> = offenders
        .iter()
        .take(20)
        .map(|(p, u, g)| {
            format!("/{p} is owned by {u}:{g}, not a user and group in /etc/passwd and /etc/group")
        })
        .collect();
    if offenders.len() > 20 {
        problems.push(format!("… and {} more", offenders.len() - 20));
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    #[test]
    fn unknown_ids_go_to_root() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        put_file(
            &mut t,
            "etc/passwd",
            "root:x:0:0::/root:/bin/sh\napp:x:100:101::/:/bin/false\n",
            0o644,
        )
        .unwrap();
        put_file(&mut t, "etc/group", "root:x:0:\napp:x:101:\n", 0o644).unwrap();
        put_file(&mut t, "srv/ok", "", 0o644).unwrap();
        t.get_mut("srv/ok").unwrap().meta.uid = 100;
        t.get_mut("srv/ok").unwrap().meta.gid = 101;
        put_file(&mut t, "srv/stray", "", 0o644).unwrap();
        t.get_mut("srv/stray").unwrap().meta.uid = 1000;
        t.get_mut("srv/stray").unwrap().meta.gid = 101;
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![
                "/srv/stray is owned by 1000:101, not a user and group in /etc/passwd and /etc/group".into()
            ])
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        let m = &t.get("srv/stray").unwrap().meta;
        assert_eq!((m.uid, m.gid), (0, 101));
    }
}
