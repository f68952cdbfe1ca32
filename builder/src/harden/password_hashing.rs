//! Local passwords (CIS 5.6.1.x, 5.5.4 of RHEL 9 v1): hashed with SHA-512 (or yescrypt,
//! as strong), changed at least yearly, not more than daily, with a week's warning —
//! in /etc/login.defs, which shadow-utils (useradd, passwd, chpasswd) read. N/A where
//! the image has no login.defs (busybox's passwd has its own defaults).

use super::flavour::Flavour;
use super::{login_defs, Outcome, Rule};
use crate::tree::{Tree, TreeError};

const STRONG: &[&str] = &["SHA512", "YESCRYPT"];
/// Whether a value of a login.defs aging key passes.
type Accepts = fn(u32) -> bool;
/// (key, value written, whether a value passes).
const AGING: &[(&str, &str, Accepts)] = &[
    ("PASS_MAX_DAYS", "365", |d| d > 0 && d <= 365),
    ("PASS_MIN_DAYS", "1", |d| d >= 1),
    ("PASS_WARN_AGE", "7", |d| d >= 7),
];

pub const HASHING: Rule = Rule {
    id: "password-hashing",
    title: "login.defs: passwords hashed with SHA-512 (or yescrypt); max 365 days, min 1, warned 7 days ahead",
    cis: "5.6.1.1-5.6.1.3, 5.5.4",
    apply,
    check,
};

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    let Some(text) = tree.read_text(login_defs::PATH) else {
        return Ok(());
    };
    let mut settings: Vec<(&str, &str)> = Vec::new();
    if !login_defs::value(text, "ENCRYPT_METHOD").is_some_and(|m| STRONG.contains(&m)) {
        settings.push(("ENCRYPT_METHOD", "SHA512"));
    }
    for (key, value, ok) in AGING {
        if !login_defs::value(text, key)
            .and_then(|v| v.parse().ok())
            .is_some_and(ok)
        {
            settings.push((key, value));
        }
    }
    login_defs::set(tree, &settings)
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let Some(text) = tree.read_text(login_defs::PATH) else {
        return Outcome::NotApplicable("no /etc/login.defs in the image".into());
    };
    let mut problems = Vec::new();
    match login_defs::value(text, "ENCRYPT_METHOD") {
        Some(m) if STRONG.contains(&m) => {}
        Some(m) => problems.push(format!(
            "/etc/login.defs: ENCRYPT_METHOD {m}, want SHA512 or YESCRYPT"
        )),
        None => {
            problems.push("/etc/login.defs sets no ENCRYPT_METHOD, want SHA512 or YESCRYPT".into())
        }
    }
    for (key, value, ok) in AGING {
        match login_defs::value(text, key) {
            Some(v) if v.parse().ok().is_some_and(ok) => {}
            Some(v) => problems.push(format!("/etc/login.defs: {key} {v}, want {value}")),
            None => problems.push(format!("/etc/login.defs sets no {key}, want {value}")),
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    #[test]
    fn weak_settings_are_replaced_strong_ones_kept() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        put_file(
            &mut t,
            login_defs::PATH,
            "PASS_MAX_DAYS\t99999\nPASS_MIN_DAYS\t0\nPASS_WARN_AGE\t14\nENCRYPT_METHOD MD5\n",
            0o644,
        )
        .unwrap();
        let Outcome::Fail(p) = check(&t, &f) else {
            panic!()
        };
        assert_eq!(p.len(), 3, "{p:?}");
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert_eq!(
            t.read_text(login_defs::PATH).unwrap(),
            "PASS_MAX_DAYS\t\t365\nPASS_MIN_DAYS\t\t1\nPASS_WARN_AGE\t14\nENCRYPT_METHOD\t\tSHA512\n"
        );
    }
}
