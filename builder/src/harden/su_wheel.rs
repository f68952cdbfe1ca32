//! `su` only for members of the wheel group (CIS 5.3.7): `auth required pam_wheel.so
//! use_uid` in /etc/pam.d/su, after `pam_rootok` (root keeps su). N/A without PAM's su.

use super::flavour::Flavour;
use super::{put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

const PAM_SU: &str = "etc/pam.d/su";
const LINE: &str = "auth\t\trequired\tpam_wheel.so use_uid";

pub const WHEEL: Rule = Rule {
    id: "su-wheel",
    title: "su restricted to the wheel group (pam_wheel use_uid)",
    cis: "5.3.7",
    apply,
    check,
};

/// An active (not commented) `auth required pam_wheel.so … use_uid` line.
fn requires_wheel(line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    matches!(w[..], ["auth", "required", "pam_wheel.so", ..] if w[3..].contains(&"use_uid"))
}

/// `auth sufficient pam_wheel.so trust`: wheel members get su without a password.
fn trusts_wheel(line: &str) -> bool {
    let w: Vec<&str> = line.split_whitespace().collect();
    matches!(w[..], ["auth", "sufficient", "pam_wheel.so", ..] if w[3..].contains(&"trust"))
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    let Some(text) = tree.read_text(PAM_SU).map(str::to_string) else {
        return Ok(());
    };
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !trusts_wheel(l))
        .map(str::to_string)
        .collect();
    if !lines.iter().any(|l| requires_wheel(l)) {
        // The distribution's commented-out line, where it has one; else after pam_rootok.
        let commented = lines
            .iter()
            .position(|l| l.trim_start().strip_prefix('#').is_some_and(requires_wheel));
        let rootok = lines.iter().position(|l| l.contains("pam_rootok.so"));
        match (commented, rootok) {
            (Some(i), _) => lines[i] = LINE.into(),
            (None, Some(i)) => lines.insert(i + 1, LINE.into()),
            (None, None) => {
                let first_auth = lines
                    .iter()
                    .position(|l| l.trim_start().starts_with("auth"));
                lines.insert(first_auth.unwrap_or(lines.len()), LINE.into());
            }
        }
    }
    let mode = tree.get_resolved(PAM_SU).map_or(0o644, |e| e.meta.mode);
    put_file(tree, PAM_SU, &(lines.join("\n") + "\n"), mode)
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let Some(text) = tree.read_text(PAM_SU) else {
        return Outcome::NotApplicable("no /etc/pam.d/su in the image".into());
    };
    let mut problems = Vec::new();
    if !text.lines().any(requires_wheel) {
        problems.push(format!(
            "/{PAM_SU} lets every user try su: no `auth required pam_wheel.so use_uid`"
        ));
    }
    if text.lines().any(trusts_wheel) {
        problems.push(format!(
            "/{PAM_SU}: `pam_wheel.so trust` gives wheel members su without a password"
        ));
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As CentOS Stream 9's util-linux ships it.
    pub const CENTOS_PAM_SU: &str = "#%PAM-1.0\nauth\t\trequired\tpam_env.so\nauth\t\tsufficient\tpam_rootok.so\n# Uncomment the following line to implicitly trust users in the \"wheel\" group.\n#auth\t\tsufficient\tpam_wheel.so trust use_uid\n# Uncomment the following line to require a user to be in the \"wheel\" group.\n#auth\t\trequired\tpam_wheel.so use_uid\nauth\t\tsubstack\tsystem-auth\n";

    #[test]
    fn the_commented_line_is_enabled_in_place() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        put_file(&mut t, PAM_SU, CENTOS_PAM_SU, 0o644).unwrap();
        assert!(matches!(check(&t, &f), Outcome::Fail(p) if p.len() == 1));
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        let text = t.read_text(PAM_SU).unwrap();
        assert!(text.contains(&format!("#auth\t\tsufficient\tpam_wheel.so trust use_uid\n# Uncomment the following line to require a user to be in the \"wheel\" group.\n{LINE}\nauth\t\tsubstack")), "{text}");
    }
}
