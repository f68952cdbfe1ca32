//! Default umask 027 for login shells and for accounts tools create (CIS 5.5.5):
//! `/etc/profile.d/harmony-umask.sh`, an /etc/profile that reads profile.d (busybox
//! images have none), and `UMASK 027` in login.defs where the image has one.

use super::flavour::Flavour;
use super::{files_in, put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const PROFILE_D: &str = "etc/profile.d/harmony-umask.sh";
const WANT: u32 = 0o027;

pub const UMASK: Rule = Rule {
    id: "umask",
    title: "default umask 027 (profile.d, /etc/profile, login.defs)",
    cis: "5.5.5",
    apply,
    check,
};

const SOURCE_PROFILE_D: &str =
    "for f in /etc/profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\nunset f\n";

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    put_file(
        tree,
        PROFILE_D,
        "# CIS 5.5.5 (harmony hardening, rule umask)\numask 027\n",
        0o644,
    )?;
    let profile = tree.read_text("etc/profile").map(str::to_string);
    match profile {
        None => put_file(
            tree,
            "etc/profile",
            &format!("# Login shells: read /etc/profile.d.\n{SOURCE_PROFILE_D}"),
            0o644,
        )?,
        Some(p) if !p.contains("/etc/profile.d") => put_file(
            tree,
            "etc/profile",
            &format!("{p}\n{SOURCE_PROFILE_D}"),
            0o644,
        )?,
        Some(_) => {}
    }
    // Existing looser umasks in profile scripts are tightened where they stand.
    let mut scripts: Vec<(String, String)> = files_in(tree, "etc/profile.d", ".sh")
        .into_iter()
        .map(|(p, t)| (p, t.to_string()))
        .collect();
    if let Some(t) = tree.read_text("etc/profile") {
        scripts.push(("etc/profile".into(), t.to_string()));
    }
    for (path, text) in scripts {
        let fixed = rewrite_umasks(&text);
        if fixed != text {
            let mode = tree.get_resolved(&path).map_or(0o644, |e| e.meta.mode);
            put_file(tree, &path, &fixed, mode)?;
        }
    }
    if let Some(defs) = tree.read_text("etc/login.defs").map(str::to_string) {
        let mut found = false;
        let mut lines: Vec<String> = defs
            .lines()
            .map(|l| {
                if login_defs_umask(l).is_some() {
                    found = true;
                    "UMASK\t\t027".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        if !found {
            lines.push("UMASK\t\t027".into());
        }
        let mode = tree
            .get_resolved("etc/login.defs")
            .map_or(0o644, |e| e.meta.mode);
        put_file(tree, "etc/login.defs", &(lines.join("\n") + "\n"), mode)?;
    }
    Ok(())
}

fn login_defs_umask(line: &str) -> Option<&str> {
    let mut w = line.split_whitespace();
    (w.next()? == "UMASK").then_some(())?;
    w.next()
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
    let mut scripts: Vec<(String, &str)> = files_in(tree, "etc/profile.d", ".sh");
    let profile = tree.read_text("etc/profile");
    if let Some(p) = profile {
        scripts.push(("etc/profile".into(), p));
    }
    let mut strict_found = false;
    for (path, text) in &scripts {
        for (line, v) in umasks(text) {
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
    if let Some(defs) = tree.read_text("etc/login.defs") {
        match defs.lines().filter_map(login_defs_umask).next_back() {
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
