//! /var/log: files at most 0640, directories at most 0750, nothing world-readable
//! (CIS 4.2.3; issue #4). The build tightens what the image carries; what services
//! write later follows the umask rule.

use super::flavour::Flavour;
use super::{Outcome, Rule};
use crate::tree::{Kind, Tree, TreeError};

pub const PERMISSIONS: Rule = Rule {
    id: "log-permissions",
    title: "/var/log files at most 0640, directories at most 0750",
    cis: "4.2.3",
    apply,
    check,
};

const FILE_MAX: u32 = 0o640;
const DIR_MAX: u32 = 0o750;

fn under_var_log(tree: &Tree) -> Vec<(String, u32)> {
    let Ok(root) = tree.resolve_all("var/log") else {
        return Vec::new();
    };
    let prefix = format!("{root}/");
    tree.iter()
        .filter(|(p, _)| *p == root || p.starts_with(&prefix))
        .filter_map(|(p, e)| match e.kind {
            Kind::File(_) => Some((p.to_string(), FILE_MAX)),
            Kind::Dir => Some((p.to_string(), DIR_MAX)),
            _ => None,
        })
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    for (path, max) in under_var_log(tree) {
        if let Some(e) = tree.get_mut(&path) {
            // Keep setgid on directories (journald's group inheritance); drop the rest.
            e.meta.mode &= max | 0o2000;
        }
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let entries = under_var_log(tree);
    if entries.is_empty() {
        return Outcome::NotApplicable("no /var/log in the image".into());
    }
    Outcome::from_problems(
        entries
            .iter()
            .filter_map(|(path, max)| {
                let mode = tree.get_exact(path)?.meta.mode;
                (mode & !(max | 0o2000) != 0)
                    .then(|| format!("/{path} is {mode:04o}, want at most {max:04o}"))
            })
            .collect(),
    )
}
