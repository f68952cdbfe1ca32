//! Idle shells end after 15 minutes (CIS 5.5.4): `TMOUT=900`, read-only and exported,
//! from /etc/profile.d (and an /etc/profile that reads it). bash gets `declare -xr` (the
//! form CIS and OpenSCAP look for); other shells (busybox ash) `readonly` + `export`.

use super::flavour::Flavour;
use super::umask::ensure_profile_reads_profile_d;
use super::{files_in, put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const PROFILE_D: &str = "etc/profile.d/harmony-tmout.sh";
const MAX: u32 = 900;

const SCRIPT: &str = r#"# CIS 5.5.4 (harmony hardening, rule shell-timeout): idle shells end after 15 minutes.
if [ "${TMOUT:-}" != 900 ]; then
    if [ -n "${BASH_VERSION:-}" ]; then
        declare -xr TMOUT=900
    else
        readonly TMOUT=900
        export TMOUT
    fi
fi
"#;

pub const TIMEOUT: Rule = Rule {
    id: "shell-timeout",
    title: "idle login shells time out: TMOUT=900, read-only, exported",
    cis: "5.5.4",
    apply,
    check,
};

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    put_file(tree, PROFILE_D, SCRIPT, 0o644)?;
    ensure_profile_reads_profile_d(tree)
}

/// `TMOUT=N` assignments in a script (`declare -xr TMOUT=`, `readonly TMOUT=`, `export
/// TMOUT=`, plain): (line, value; None when not a number).
fn assignments(text: &str) -> Vec<(usize, Option<u32>)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let at = l.find("TMOUT=")?;
            let before = &l[..at];
            if before.trim_start().starts_with('#')
                || before.ends_with(|c: char| c.is_alphanumeric() || c == '_')
            {
                return None;
            }
            let v: String = l[at + 6..]
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ';')
                .collect();
            Some((i, v.trim_matches(['"', '\'']).parse().ok()))
        })
        .collect()
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let mut scripts = files_in(tree, "etc/profile.d", ".sh");
    let profile = tree.read_text("etc/profile");
    if let Some(p) = profile {
        scripts.push(("etc/profile".into(), p));
    }
    let mut problems = Vec::new();
    let mut set = false;
    for (path, text) in &scripts {
        for (line, v) in assignments(text) {
            match v {
                Some(v) if v > 0 && v <= MAX => set = true,
                _ => problems.push(format!(
                    "/{path}:{}: TMOUT unset, 0 or above {MAX} seconds",
                    line + 1
                )),
            }
        }
    }
    let reads_profile_d = profile.is_some_and(|p| p.contains("/etc/profile.d"));
    if !set || !reads_profile_d {
        problems.push(format!(
            "login shells get no TMOUT of at most {MAX} seconds (/{PROFILE_D} missing or /etc/profile does not read profile.d)"
        ));
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_script_that_disables_the_timeout_is_named() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::Fail(_)));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        put_file(&mut t, "etc/profile.d/zz-dev.sh", "export TMOUT=0\n", 0o644).unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![
                "/etc/profile.d/zz-dev.sh:1: TMOUT unset, 0 or above 900 seconds".into()
            ])
        );
    }

    /// The script runs in busybox ash (the default image's shell), dash and bash, twice
    /// (profile.d may be read twice), leaving TMOUT=900 read-only.
    #[test]
    fn the_script_runs_in_posix_shells() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tmout.sh");
        std::fs::write(&script, SCRIPT).unwrap();
        let s = script.display();
        for shell in [&["busybox", "sh"][..], &["dash"][..], &["bash"][..]] {
            let out = std::process::Command::new(shell[0])
                .args(&shell[1..])
                .args([
                    "-c",
                    &format!(". {s}; . {s}; (TMOUT=5) 2>/dev/null; echo $TMOUT"),
                ])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "900\n",
                "{shell:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
