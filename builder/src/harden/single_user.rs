//! Single-user and emergency mode ask for root's password (CIS 1.4.3): systemd's
//! rescue.service and emergency.service run `systemd-sulogin-shell`. Judged as systemd
//! reads the units — the unit file from /etc, /run or /usr/lib (first found), then its
//! `.d/*.conf` drop-ins in name order, an empty `ExecStart=` clearing the list — so a
//! unit or drop-in that swaps in a bare shell fails, naming the file. systemd images
//! only: busybox init and OpenRC have no rescue target.

use super::flavour::Flavour;
use super::{files_in, put_file, Outcome, Rule};
use crate::steps::agent::InitSystem;
use crate::tree::{Tree, TreeError};

const UNIT_DIRS: &[&str] = &[
    "etc/systemd/system",
    "run/systemd/system",
    "usr/local/lib/systemd/system",
    "usr/lib/systemd/system",
];
const UNITS: &[(&str, &str)] = &[
    ("rescue.service", "rescue"),
    ("emergency.service", "emergency"),
];

pub const AUTH: Rule = Rule {
    id: "single-user-auth",
    title: "rescue and emergency mode require root's password (systemd-sulogin-shell)",
    cis: "1.4.3",
    apply,
    check,
};

/// The unit's ExecStart commands as systemd ends up with them, each with the file that
/// set it; None when the image has no such unit.
fn exec_start(tree: &Tree, unit: &str) -> Option<Vec<(String, String)>> {
    let (path, text) = UNIT_DIRS.iter().find_map(|d| {
        let p = format!("{d}/{unit}");
        tree.read_text(&p).map(|t| (p, t))
    })?;
    let mut files = vec![(path, text)];
    let mut drop_ins = std::collections::BTreeMap::new();
    for d in UNIT_DIRS.iter().rev() {
        for (p, t) in files_in(tree, &format!("{d}/{unit}.d"), ".conf") {
            let name = p.rsplit('/').next().unwrap_or_default().to_string();
            drop_ins.insert(name, (p, t));
        }
    }
    files.extend(drop_ins.into_values());
    let mut commands = Vec::new();
    for (path, text) in files {
        let mut in_service = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                in_service = line == "[Service]";
            } else if let Some(cmd) = line.strip_prefix("ExecStart=").filter(|_| in_service) {
                if cmd.trim().is_empty() {
                    commands.clear();
                } else {
                    commands.push((cmd.trim().to_string(), path.clone()));
                }
            }
        }
    }
    Some(commands)
}

fn asks_password(commands: &[(String, String)]) -> bool {
    !commands.is_empty() && commands.iter().all(|(c, _)| c.contains("sulogin"))
}

fn apply(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    if flavour.init != Some(InitSystem::Systemd) {
        return Ok(());
    }
    for (unit, mode) in UNITS {
        if exec_start(tree, unit).is_some_and(|c| !asks_password(&c)) {
            put_file(
                tree,
                &format!("etc/systemd/system/{unit}.d/99-harmony-cis-sulogin.conf"),
                &format!("# CIS 1.4.3 (harmony hardening, rule single-user-auth)\n[Service]\nExecStart=\nExecStart=-/usr/lib/systemd/systemd-sulogin-shell {mode}\n"),
                0o644,
            )?;
        }
    }
    Ok(())
}

fn check(tree: &Tree, flavour: &Flavour) -> Outcome {
    if flavour.init != Some(InitSystem::Systemd) {
        return Outcome::NotApplicable(
            "no systemd rescue or emergency target (not a systemd image)".into(),
        );
    }
    let mut problems = Vec::new();
    for (unit, _) in UNITS {
        // No unit: systemd has no such mode to enter.
        let Some(commands) = exec_start(tree, unit) else {
            continue;
        };
        if !asks_password(&commands) {
            let by = commands
                .iter()
                .find(|(c, _)| !c.contains("sulogin"))
                .map_or("no ExecStart".to_string(), |(c, f)| {
                    format!("`{c}` from /{f}")
                });
            problems.push(format!("{unit} gives a shell without a password: {by}"));
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const RESCUE: &str = "[Unit]\nDescription=Rescue Shell\n[Service]\nExecStart=-/usr/lib/systemd/systemd-sulogin-shell rescue\n";

    #[test]
    fn a_drop_in_with_a_bare_shell_is_named_and_overridden() {
        let mut t = Tree::new();
        put_file(&mut t, "usr/lib/systemd/systemd", "", 0o755).unwrap();
        put_file(
            &mut t,
            "usr/lib/systemd/system/rescue.service",
            RESCUE,
            0o644,
        )
        .unwrap();
        let f = Flavour::detect(&t);
        assert_eq!(check(&t, &f), Outcome::Pass);
        let shell = "etc/systemd/system/rescue.service.d/50-debug.conf";
        put_file(
            &mut t,
            shell,
            "[Service]\nExecStart=\nExecStart=-/bin/sh\n",
            0o644,
        )
        .unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![format!(
                "rescue.service gives a shell without a password: `-/bin/sh` from /{shell}"
            )])
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
    }
}
