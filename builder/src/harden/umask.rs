//! Default umask 027 for login shells and for accounts tools create (CIS 5.5.5):
//! `/etc/profile.d/harmony-umask.sh`, an /etc/profile that reads profile.d (busybox
//! images have none) and says `umask 027` itself, looser umasks in /etc/bashrc (RHEL)
//! or /etc/bash.bashrc (Debian) tightened, and `UMASK 027` in login.defs where the image
//! has one.

use super::flavour::Flavour;
use super::{files_in, login_defs, put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const PROFILE_D: &str = "etc/profile.d/harmony-umask.sh";
const WANT: u32 = 0o027;

pub const UMASK: Rule = Rule {
    id: "umask",
    title: "default umask 027 (profile.d, /etc/profile, bashrc, login.defs)",
    cis: "5.5.5",
    apply,
    check,
};

const SOURCE_PROFILE_D: &str =
    "for f in /etc/profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\nunset f\n";

/// Shell start-up files a login or interactive shell reads besides profile.d: bash's
/// system bashrc (RHEL's /etc/bashrc, Debian's /etc/bash.bashrc), where the image has one.
const BASHRCS: &[&str] = &["etc/bashrc", "etc/bash.bashrc"];

/// Make /etc/profile read /etc/profile.d (busybox images have no /etc/profile at all).
pub(crate) fn ensure_profile_reads_profile_d(tree: &mut Tree) -> Result<(), TreeError> {
    match tree.read_text("etc/profile").map(str::to_string) {
        None => put_file(
            tree,
            "etc/profile",
            &format!("# Login shells: read /etc/profile.d.\n{SOURCE_PROFILE_D}"),
            0o644,
        ),
        Some(p) if !p.contains("/etc/profile.d") => {
            let mode = tree
                .get_resolved("etc/profile")
                .map_or(0o644, |e| e.meta.mode);
            put_file(
                tree,
                "etc/profile",
                &format!("{p}\n{SOURCE_PROFILE_D}"),
                mode,
            )
        }
        Some(_) => Ok(()),
    }
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    put_file(
        tree,
        PROFILE_D,
        "# CIS 5.5.5 (harmony hardening, rule umask)\numask 027\n",
        0o644,
    )?;
    ensure_profile_reads_profile_d(tree)?;
    // /etc/profile states it too, so it holds even where profile.d is read first.
    if let Some(p) = tree.read_text("etc/profile").map(str::to_string) {
        if umasks(&p).is_empty() {
            let mode = tree
                .get_resolved("etc/profile")
                .map_or(0o644, |e| e.meta.mode);
            put_file(tree, "etc/profile", &format!("umask 027\n{p}"), mode)?;
        }
    }
    // Existing looser umasks in profile scripts and bashrcs are tightened where they stand.
    for (path, text) in shell_scripts(tree) {
        let fixed = rewrite_umasks(&text);
        if fixed != text {
            let mode = tree.get_resolved(&path).map_or(0o644, |e| e.meta.mode);
            put_file(tree, &path, &fixed, mode)?;
        }
    }
    login_defs::set(tree, &[("UMASK", "027")])
}

/// profile.d scripts, /etc/profile and the bashrcs, with their text.
fn shell_scripts(tree: &Tree) -> Vec<(String, String)> {
    let mut scripts: Vec<(String, String)> = files_in(tree, "etc/profile.d", ".sh")
        .into_iter()
        .map(|(p, t)| (p, t.to_string()))
        .collect();
    for path in std::iter::once(&"etc/profile").chain(BASHRCS) {
        if let Some(t) = tree.read_text(path) {
            scripts.push((path.to_string(), t.to_string()));
        }
    }
    scripts
}

/// `umask NNN` statements (octal) in a shell script: (line, value).
fn umasks(text: &str) -> Vec<(usize, Option<u32>)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim();
            let v = l.strip_prefix("umask ")?;
            Some((i, u32::from_str_radix(v.trim(), 8).ok()))
        })
        .collect()
}

fn strict_enough(v: Option<u32>) -> bool {
    v.is_some_and(|v| v & WANT == WANT)
}

fn rewrite_umasks(text: &str) -> String {
    let weak: Vec<usize> = umasks(text)
        .into_iter()
        .filter(|(_, v)| !strict_enough(*v))
        .map(|(i, _)| i)
        .collect();
    if weak.is_empty() {
        return text.to_string();
    }
    let mut out: Vec<String> = text.lines().map(str::to_string).collect();
    for i in weak {
        let indent: String = out[i].chars().take_while(|c| c.is_whitespace()).collect();
        out[i] = format!("{indent}umask 027");
    }
    out.join("\n") + "\n"
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let mut problems = Vec::new();
    let profile = tree.read_text("etc/profile");
    let mut strict_found = false;
    for (path, text) in shell_scripts(tree) {
        for (line, v) in umasks(&text) {
            if strict_enough(v) {
                strict_found = true;
            } else {
                problems.push(format!("/{path}:{}: a umask looser than 027", line + 1));
            }
        }
    }
    let reads_profile_d = profile.is_some_and(|p| p.contains("/etc/profile.d"));
    let profile_sets = profile.is_some_and(|p| umasks(p).iter().any(|(_, v)| strict_enough(*v)));
    if !strict_found || !(reads_profile_d || profile_sets) {
        problems.push(
            "login shells get no umask 027 (/etc/profile neither sets it nor reads /etc/profile.d)"
                .into(),
        );
    }
    if let Some(defs) = tree.read_text(login_defs::PATH) {
        match login_defs::value(defs, "UMASK") {
            Some(v) if strict_enough(u32::from_str_radix(v, 8).ok()) => {}
            Some(v) => problems.push(format!("/etc/login.defs: UMASK {v}, want 027")),
            None => problems.push("/etc/login.defs sets no UMASK, want 027".into()),
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rhel_like_tree_is_tightened_everywhere() {
        let mut t = Tree::new();
        put_file(&mut t, "etc/profile", "if [ $UID -gt 199 ]; then\n    umask 002\nelse\n    umask 022\nfi\nfor i in /etc/profile.d/*.sh; do . $i; done\n", 0o644).unwrap();
        put_file(
            &mut t,
            "etc/login.defs",
            "PASS_MAX_DAYS 99999\nUMASK 022\n",
            0o644,
        )
        .unwrap();
        let f = Flavour::detect(&t);
        let Outcome::Fail(p) = check(&t, &f) else {
            panic!()
        };
        assert_eq!(p.len(), 4, "{p:?}");
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert!(t
            .read_text("etc/profile")
            .unwrap()
            .contains("    umask 027\nelse"));
        assert_eq!(
            t.read_text("etc/login.defs").unwrap(),
            "PASS_MAX_DAYS 99999\nUMASK\t\t027\n"
        );
    }

    #[test]
    fn a_busybox_tree_gets_a_profile() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        assert!(t
            .read_text("etc/profile")
            .unwrap()
            .contains("/etc/profile.d/*.sh"));
        assert_eq!(check(&t, &f), Outcome::Pass);
    }
}
