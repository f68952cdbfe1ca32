//! sudo (CIS 5.3.2, 5.3.3, 5.3.6): commands run on a pseudo-terminal (`use_pty`: a
//! backgrounded process cannot keep the terminal), every use logged to its own file,
//! and a cached authentication expires after 15 minutes. A drop-in in /etc/sudoers.d,
//! with /etc/sudoers made to include that directory. N/A without sudo.

use super::flavour::Flavour;
use super::{first_existing, put_file, Outcome, Rule};
use crate::tree::{Kind, Tree, TreeError};

pub const DROP_IN: &str = "etc/sudoers.d/harmony-cis";
const SUDOERS: &str = "etc/sudoers";
pub const LOGFILE: &str = "/var/log/sudo.log";
const TIMEOUT_MAX: i64 = 15;

pub const DEFAULTS: Rule = Rule {
    id: "sudo",
    title: "sudo: use_pty, a log file, authentication cached at most 15 minutes",
    cis: "5.3.2, 5.3.3, 5.3.6",
    apply,
    check,
};

fn has_sudo(tree: &Tree) -> bool {
    first_existing(tree, &["usr/bin/sudo", "bin/sudo"]).is_some()
}

fn drop_in_text() -> String {
    format!(
        "# CIS sudo policy (harmony hardening, rule sudo).\nDefaults use_pty\nDefaults logfile={LOGFILE}\nDefaults timestamp_timeout={TIMEOUT_MAX}\n"
    )
}

fn includes_dir(sudoers: &str) -> bool {
    sudoers.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        matches!(w[..], ["#includedir" | "@includedir", "/etc/sudoers.d"])
    })
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    if !has_sudo(tree) {
        return Ok(());
    }
    put_file(tree, DROP_IN, &drop_in_text(), 0o440)?;
    let sudoers = tree.read_text(SUDOERS).unwrap_or("").to_string();
    if !includes_dir(&sudoers) {
        let mode = tree.get_resolved(SUDOERS).map_or(0o440, |e| e.meta.mode);
        put_file(
            tree,
            SUDOERS,
            &format!("{sudoers}@includedir /etc/sudoers.d\n"),
            mode,
        )?;
    }
    Ok(())
}

/// `Defaults` settings in the order sudo reads them: /etc/sudoers top to bottom, an
/// includedir's files (sorted; names with a `.` or ending in `~` skipped, as sudo
/// does) where the directive stands. (setting, value or None, file.)
fn defaults(tree: &Tree) -> Vec<(String, Option<String>, String)> {
    let mut out = Vec::new();
    let Some(main) = tree.read_text(SUDOERS) else {
        return out;
    };
    let mut files: Vec<(String, &str)> = Vec::new();
    for line in main.lines() {
        if includes_dir(line) {
            if let Ok(dir) = tree.resolve_all("etc/sudoers.d") {
                let mut names: Vec<(String, &str)> = tree
                    .children(&dir)
                    .filter(|(n, _)| !n.contains('.') && !n.ends_with('~'))
                    .filter_map(|(n, e)| match &e.kind {
                        Kind::File(c) => Some((format!("{dir}/{n}"), std::str::from_utf8(c).ok()?)),
                        _ => None,
                    })
                    .collect();
                names.sort();
                files.extend(names);
            }
        } else {
            files.push((SUDOERS.into(), line));
        }
    }
    for (file, text) in files {
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("Defaults") else {
                continue;
            };
            // `Defaults:user`, `Defaults>runas`… apply to some users only: not a default.
            if !rest.starts_with(char::is_whitespace) {
                continue;
            }
            for item in rest.split(',') {
                let item = item.trim();
                let (k, v) = match item.split_once('=') {
                    Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"').to_string())),
                    None => (item, None),
                };
                out.push((k.to_string(), v, file.clone()));
            }
        }
    }
    out
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    if !has_sudo(tree) {
        return Outcome::NotApplicable("no sudo in the image".into());
    }
    let d = defaults(tree);
    let last = |key: &str| {
        d.iter()
            .rev()
            .find(|(k, _, _)| k == key || k.strip_prefix('!') == Some(key))
    };
    let mut problems = Vec::new();
    match last("use_pty") {
        Some((k, _, _)) if k == "use_pty" => {}
        Some((_, _, file)) => problems.push(format!("/{file} turns use_pty off")),
        None => problems
            .push("sudo runs commands without a pseudo-terminal (no `Defaults use_pty`)".into()),
    }
    match last("logfile") {
        Some((k, Some(v), _)) if k == "logfile" && v.starts_with('/') => {}
        Some((_, _, file)) => problems.push(format!("/{file} turns sudo's log file off")),
        None => problems.push("sudo keeps no log file (no `Defaults logfile=`)".into()),
    }
    match last("timestamp_timeout") {
        Some((_, Some(v), file)) => match v.parse::<f64>() {
            Ok(m) if (0.0..=TIMEOUT_MAX as f64).contains(&m) => {}
            _ => problems.push(format!(
                "/{file}: timestamp_timeout={v}, want 0 to {TIMEOUT_MAX} minutes"
            )),
        },
        _ => problems.push(format!(
            "sudo's timestamp_timeout is not set, want at most {TIMEOUT_MAX}"
        )),
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_drop_in_that_turns_use_pty_off_is_named() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        put_file(&mut t, "usr/bin/sudo", "", 0o4111).unwrap();
        put_file(&mut t, SUDOERS, "root ALL=(ALL) ALL\n", 0o440).unwrap();
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == 3));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        put_file(&mut t, "etc/sudoers.d/zz-ops", "Defaults !use_pty\n", 0o440).unwrap();
        // A name with a dot is skipped by sudo, so it changes nothing.
        put_file(
            &mut t,
            "etc/sudoers.d/old.bak",
            "Defaults timestamp_timeout=-1\n",
            0o440,
        )
        .unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec!["/etc/sudoers.d/zz-ops turns use_pty off".into()])
        );
    }
}
