//! journald keeps the log on disk, compressed (CIS 4.2.1.3-4.2.1.4): `Storage=persistent`
//! and `Compress=yes` in /etc/systemd/journald.conf. On systemd images only; the node's
//! /var is persistent, so the journal survives reboots there.

use super::flavour::Flavour;
use super::{systemd_conf, Outcome, Rule};
use crate::steps::agent::InitSystem;
use crate::tree::{Tree, TreeError};

const CONF: &str = "systemd/journald.conf";
const SETTINGS: &[(&str, &str)] = &[("Storage", "persistent"), ("Compress", "yes")];

pub const STORAGE: Rule = Rule {
    id: "journald-storage",
    title: "journald: Storage=persistent, Compress=yes",
    cis: "4.2.1.3-4.2.1.4",
    apply,
    check,
};

fn apply(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    if flavour.init != Some(InitSystem::Systemd) {
        return Ok(());
    }
    systemd_conf::set(tree, CONF, "Journal", SETTINGS)
}

fn check(tree: &Tree, flavour: &Flavour) -> Outcome {
    if flavour.init != Some(InitSystem::Systemd) {
        return Outcome::NotApplicable("no systemd-journald (not a systemd image)".into());
    }
    Outcome::from_problems(
        SETTINGS
            .iter()
            .filter_map(
                |(key, want)| match systemd_conf::effective(tree, CONF, "Journal", key) {
                    Some((v, _)) if v == *want => None,
                    Some((v, file)) => Some(format!(
                        "journald {key}={v} (last set in /{file}), want {want}"
                    )),
                    None => Some(format!(
                        "journald {key} is not set (journald's default applies), want {want}"
                    )),
                },
            )
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    #[test]
    fn a_volatile_drop_in_fails_naming_it() {
        let mut t = Tree::new();
        put_file(&mut t, "usr/lib/systemd/systemd", "", 0o755).unwrap();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == 2));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        put_file(
            &mut t,
            "etc/systemd/journald.conf.d/50-volatile.conf",
            "[Journal]\nStorage=volatile\n",
            0o644,
        )
        .unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![
                "journald Storage=volatile (last set in /etc/systemd/journald.conf.d/50-volatile.conf), want persistent".into()
            ])
        );
    }
}
