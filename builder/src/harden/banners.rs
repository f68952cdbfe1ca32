//! Login banners (CIS 1.7.1-1.7.6): /etc/issue and /etc/issue.net say that use is
//! monitored and give away nothing about the system (no `\m \r \s \v` escapes, no
//! distribution name); they and /etc/motd are 0644 root:root.

use super::flavour::Flavour;
use super::{looser_than, put_file, tighten, Outcome, Rule};
use crate::tree::{Tree, TreeError};

/// CIS's suggested wording (what OpenSCAP's `cis_banners` value accepts verbatim).
pub const TEXT: &str = "Authorized uses only. All activity may be monitored and reported.\n";
const BANNERS: &[&str] = &["etc/issue", "etc/issue.net"];
const MOTD: &str = "etc/motd";

pub const LOGIN: Rule = Rule {
    id: "login-banners",
    title: "login banners (/etc/issue, /etc/issue.net) warn and reveal no OS details; motd too; all 0644 root:root",
    cis: "1.7.1-1.7.6",
    apply,
    check,
};

/// Words that give the system away: getty's escapes and the distribution's os-release
/// ID and ID_LIKE names.
fn revealing(tree: &Tree) -> Vec<String> {
    let mut words: Vec<String> = ["\\m", "\\r", "\\s", "\\v", "\\S"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let os_release = tree
        .read_text("etc/os-release")
        .or_else(|| tree.read_text("usr/lib/os-release"))
        .unwrap_or("");
    for line in os_release.lines() {
        if let Some(ids) = line
            .strip_prefix("ID=")
            .or_else(|| line.strip_prefix("ID_LIKE="))
        {
            words.extend(
                ids.trim_matches('"')
                    .split_whitespace()
                    .map(str::to_ascii_lowercase),
            );
        }
    }
    words
}

fn leaks(text: &str, words: &[String]) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    words
        .iter()
        .filter(|w| {
            if w.starts_with('\\') {
                text.contains(w.as_str())
            } else {
                lower
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|word| word == w.as_str())
            }
        })
        .cloned()
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    for path in BANNERS {
        put_file(tree, path, TEXT, 0o644)?;
    }
    let words = revealing(tree);
    if let Some(motd) = tree.read_text(MOTD).map(str::to_string) {
        if !leaks(&motd, &words).is_empty() {
            let kept: Vec<&str> = motd
                .lines()
                .filter(|l| leaks(l, &words).is_empty())
                .collect();
            put_file(tree, MOTD, &(kept.join("\n") + "\n"), 0o644)?;
        }
    }
    let motd_key = tree.resolve_all(MOTD).ok();
    if let Some(key) = motd_key {
        tighten(tree, &key, 0o644);
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let words = revealing(tree);
    let mut problems = Vec::new();
    for path in BANNERS.iter().chain([&MOTD]) {
        let Some(e) = tree.get_resolved(path) else {
            if *path != MOTD {
                problems.push(format!("no /{path}: no warning banner"));
            }
            continue;
        };
        let text = tree.read_text(path).unwrap_or("");
        if *path != MOTD && text.trim().is_empty() {
            problems.push(format!("/{path} is empty: no warning banner"));
        }
        let leaked = leaks(text, &words);
        if !leaked.is_empty() {
            problems.push(format!("/{path} reveals the system: {}", leaked.join(", ")));
        }
        problems.extend(looser_than(path, &e.meta, 0o644));
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rhel_issue_is_replaced_and_a_revealing_motd_line_dropped() {
        let mut t = Tree::new();
        put_file(&mut t, "etc/os-release", "ID=\"centos\"\n", 0o644).unwrap();
        put_file(&mut t, "etc/issue", "\\S\nKernel \\r on an \\m\n", 0o644).unwrap();
        put_file(&mut t, "etc/motd", "Welcome to CentOS\nBe nice.\n", 0o664).unwrap();
        let f = Flavour::detect(&t);
        let Outcome::Fail(p) = check(&t, &f) else {
            panic!()
        };
        assert_eq!(
            p,
            vec![
                "/etc/issue reveals the system: \\m, \\r, \\S",
                "no /etc/issue.net: no warning banner",
                "/etc/motd reveals the system: centos",
                "/etc/motd is 0664 0:0, want at most 0644 0:0",
            ]
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert_eq!(t.read_text("etc/motd").unwrap(), "Be nice.\n");
        assert_eq!(t.read_text("etc/issue").unwrap(), TEXT);
    }
}
