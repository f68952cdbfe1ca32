//! Nothing world-writable but sticky directories (CIS 6.1.10, 1.1.22): a world-writable
//! directory without the sticky bit lets anyone delete or replace anyone's files in it
//! (the sticky bit is added), and a world-writable file lets anyone change it (the
//! write bit for others is removed). Symlinks (always 0777) do not count.

use super::flavour::Flavour;
use super::{Outcome, Rule};
use crate::tree::{Kind, Tree, TreeError};

pub const STICKY: Rule = Rule {
    id: "world-writable",
    title: "no world-writable files; world-writable directories have the sticky bit",
    cis: "6.1.10, 1.1.22",
    apply,
    check,
};

/// (path, mode, is a directory) of everything that breaks the rule.
fn offenders(tree: &Tree) -> Vec<(String, u32, bool)> {
    tree.iter()
        .filter_map(|(p, e)| {
            let m = e.meta.mode;
            match e.kind {
                Kind::Dir if m & 0o002 != 0 && m & 0o1000 == 0 => Some((p.to_string(), m, true)),
                Kind::File(_) if m & 0o002 != 0 => Some((p.to_string(), m, false)),
                _ => None,
            }
        })
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    for (path, _, is_dir) in offenders(tree) {
        if let Some(e) = tree.get_mut(&path) {
            if is_dir {
                e.meta.mode |= 0o1000;
            } else {
                e.meta.mode &= !0o002;
            }
        }
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    Outcome::from_problems(
        offenders(tree)
            .into_iter()
            .map(|(p, m, is_dir)| {
                if is_dir {
                    format!("/{p} is {m:04o}: world-writable directory without the sticky bit")
                } else {
                    format!("/{p} is {m:04o}: world-writable file")
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;
    use crate::tree::Meta;

    #[test]
    fn sticky_added_write_bit_removed() {
        let mut t = Tree::new();
        t.mkdir_all("tmp", &Meta::new(0o1777)).unwrap();
        t.mkdir_all("srv", &Meta::new(0o755)).unwrap();
        t.mkdir_all("srv/drop", &Meta::new(0o777)).unwrap();
        put_file(&mut t, "etc/app.conf", "", 0o666).unwrap();
        let f = Flavour::detect(&t);
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![
                "/etc/app.conf is 0666: world-writable file".into(),
                "/srv/drop is 0777: world-writable directory without the sticky bit".into(),
            ])
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert_eq!(t.get("srv/drop").unwrap().meta.mode, 0o1777);
        assert_eq!(t.get("etc/app.conf").unwrap().meta.mode, 0o664);
    }
}
