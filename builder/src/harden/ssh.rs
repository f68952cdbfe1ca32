//! OpenSSH server (CIS 5.2.x): no root login, no empty passwords, and only modern
//! ciphers, MACs and key exchanges. A drop-in `sshd_config.d/00-harmony-cis.conf`,
//! named to sort first because sshd keeps the FIRST value it reads for a keyword; the
//! main sshd_config is made to include the drop-ins before its own settings.

use super::flavour::Flavour;
use super::{exists, first_existing, put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const DROP_IN: &str = "etc/ssh/sshd_config.d/00-harmony-cis.conf";
const MAIN: &str = "etc/ssh/sshd_config";
const INCLUDE: &str = "Include /etc/ssh/sshd_config.d/*.conf";

pub const CIPHERS: &[&str] = &[
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
];
pub const MACS: &[&str] = &[
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
];
pub const KEX: &[&str] = &[
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
];

const POLICY: &[(&str, &str)] = &[
    ("PermitRootLogin", "no"),
    ("PermitEmptyPasswords", "no"),
    ("MaxAuthTries", "4"),
    ("X11Forwarding", "no"),
    ("IgnoreRhosts", "yes"),
    ("HostbasedAuthentication", "no"),
];

pub const ROOT_LOGIN: Rule = Rule {
    id: "ssh-root-login",
    title: "sshd: PermitRootLogin no, no empty passwords, at most 4 auth tries, no X11 or host-based auth",
    cis: "5.2.6-5.2.13",
    apply,
    check: check_policy,
};

pub const CRYPTO: Rule = Rule {
    id: "ssh-crypto-policy",
    title: "sshd: only modern ciphers, MACs and key exchange algorithms",
    cis: "5.2.13-5.2.15",
    apply,
    check: check_crypto,
};

fn has_sshd(tree: &Tree) -> bool {
    first_existing(tree, &["usr/sbin/sshd", "sbin/sshd"]).is_some() || exists(tree, MAIN)
}

fn drop_in_text() -> String {
    let mut t = String::from("# CIS OpenSSH server policy (harmony hardening, rules ssh-root-login and ssh-crypto-policy).\n# sshd keeps the first value it reads: this file sorts first in sshd_config.d.\n");
    for (k, v) in POLICY {
        t += &format!("{k} {v}\n");
    }
    t += &format!("Ciphers {}\n", CIPHERS.join(","));
    t += &format!("MACs {}\n", MACS.join(","));
    t += &format!("KexAlgorithms {}\n", KEX.join(","));
    t
}

/// Both ssh rules write the same drop-in (it is one policy); applying it twice is a no-op.
fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    if !has_sshd(tree) {
        return Ok(());
    }
    put_file(tree, DROP_IN, &drop_in_text(), 0o600)?;
    let main = tree.read_text(MAIN).unwrap_or("").to_string();
    let includes_first = main
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.eq_ignore_ascii_case(INCLUDE));
    if !includes_first {
        let text =
            format!("# Drop-ins first: sshd keeps the first value it reads.\n{INCLUDE}\n{main}");
        let mode = tree.get_resolved(MAIN).map_or(0o600, |e| e.meta.mode);
        put_file(tree, MAIN, &text, mode)?;
    }
    Ok(())
}

/// keyword (lowercase) → first value, with Include expanded in place and nothing read
/// inside a Match block (its settings are conditional).
pub fn effective(tree: &Tree) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    read_config(tree, MAIN, &mut out, 0);
    out
}

fn read_config(tree: &Tree, path: &str, out: &mut Vec<(String, String)>, depth: usize) -> bool {
    let Some(text) = tree.read_text(path) else {
        return true;
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                    .trim(),
            ),
            None => (line.to_ascii_lowercase(), ""),
        };
        match key.as_str() {
            "match" => return false,
            "include" if depth < 8 => {
                for pattern in value.split_whitespace() {
                    let pattern = pattern.trim_start_matches('/');
                    let pattern = if pattern.starts_with("etc/") {
                        pattern.to_string()
                    } else {
                        format!("etc/ssh/{pattern}")
                    };
                    for file in glob(tree, &pattern) {
                        if !read_config(tree, &file, out, depth + 1) {
                            return false;
                        }
                    }
                }
            }
            _ => {
                if !out.iter().any(|(k, _)| *k == key) {
                    out.push((key, value.to_string()));
                }
            }
        }
    }
    true
}

/// `DIR/*.conf`-style patterns (a `*` in the last component only), sorted as sshd does.
fn glob(tree: &Tree, pattern: &str) -> Vec<String> {
    let Some((dir, name)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    match name.split_once('*') {
        None => vec![pattern.to_string()],
        Some((pre, suf)) => {
            let Ok(dir) = tree.resolve_all(dir) else {
                return Vec::new();
            };
            let mut v: Vec<String> = tree
                .children(&dir)
                .filter(|(n, _)| {
                    n.starts_with(pre) && n.ends_with(suf) && n.len() >= pre.len() + suf.len()
                })
                .map(|(n, _)| format!("{dir}/{n}"))
                .collect();
            v.sort();
            v
        }
    }
}

fn value<'a>(eff: &'a [(String, String)], key: &str) -> Option<&'a str> {
    eff.iter()
        .find(|(k, _)| k == &key.to_ascii_lowercase())
        .map(|(_, v)| v.as_str())
}

fn check_policy(tree: &Tree, _: &Flavour) -> Outcome {
    if !has_sshd(tree) {
        return Outcome::NotApplicable("no OpenSSH server in the image".into());
    }
    let eff = effective(tree);
    let problems = POLICY
        .iter()
        .filter_map(|(k, want)| match value(&eff, k) {
            Some(v) if v.eq_ignore_ascii_case(want) => None,
            Some(v) => Some(format!("{k} is `{v}`, want `{want}`")),
            None => Some(format!(
                "{k} is not set (sshd's default applies), want `{want}`"
            )),
        })
        .collect();
    Outcome::from_problems(problems)
}

fn check_crypto(tree: &Tree, _: &Flavour) -> Outcome {
    if !has_sshd(tree) {
        return Outcome::NotApplicable("no OpenSSH server in the image".into());
    }
    let eff = effective(tree);
    let mut problems = Vec::new();
    for (k, allowed) in [("Ciphers", CIPHERS), ("MACs", MACS), ("KexAlgorithms", KEX)] {
        match value(&eff, k) {
            None => problems.push(format!(
                "{k} is not set: sshd's defaults include weaker algorithms"
            )),
            Some(v) if v.starts_with(['+', '-', '^']) => problems.push(format!(
                "{k} `{v}` edits sshd's default list instead of replacing it"
            )),
            Some(v) => {
                let weak: Vec<&str> = v.split(',').filter(|a| !allowed.contains(a)).collect();
                if !weak.is_empty() {
                    problems.push(format!("{k} allows {}", weak.join(", ")));
                }
            }
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sshd(main: &str) -> Tree {
        let mut t = Tree::new();
        put_file(&mut t, "usr/sbin/sshd", "", 0o755).unwrap();
        put_file(&mut t, MAIN, main, 0o644).unwrap();
        t
    }

    #[test]
    fn the_drop_in_wins_over_the_main_config() {
        let mut t = with_sshd("PermitRootLogin yes\nCiphers aes128-cbc,aes256-ctr\n");
        let f = Flavour::detect(&t);
        assert!(matches!(check_policy(&t, &f), Outcome::Fail(_)));
        apply(&mut t, &f).unwrap();
        assert_eq!(check_policy(&t, &f), Outcome::Pass);
        assert_eq!(check_crypto(&t, &f), Outcome::Pass);
        assert!(t.read_text(MAIN).unwrap().contains(INCLUDE));
    }

    #[test]
    fn an_earlier_drop_in_that_weakens_crypto_fails() {
        let mut t = with_sshd("Include /etc/ssh/sshd_config.d/*.conf\n");
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        put_file(
            &mut t,
            "etc/ssh/sshd_config.d/0-legacy.conf",
            "MACs hmac-sha1,hmac-sha2-256-etm@openssh.com\nPermitRootLogin prohibit-password\n",
            0o600,
        )
        .unwrap();
        assert_eq!(
            check_crypto(&t, &f),
            Outcome::Fail(vec!["MACs allows hmac-sha1".into()])
        );
        assert_eq!(
            check_policy(&t, &f),
            Outcome::Fail(vec![
                "PermitRootLogin is `prohibit-password`, want `no`".into()
            ])
        );
    }

    #[test]
    fn settings_inside_match_blocks_do_not_count() {
        let t = with_sshd("Match User admin\n  PermitRootLogin no\n");
        assert_eq!(value(&effective(&t), "PermitRootLogin"), None);
    }

    #[test]
    fn no_sshd_is_not_applicable() {
        let t = Tree::new();
        assert!(matches!(
            check_policy(&t, &Flavour::detect(&t)),
            Outcome::NotApplicable(_)
        ));
    }

    /// Our drop-in is accepted by the host's real sshd, when there is one.
    #[test]
    fn real_sshd_accepts_the_drop_in() {
        let sshd = std::path::Path::new("/usr/sbin/sshd");
        if !sshd.exists() {
            harmony_test_support::skip("tool sshd not installed: Debian package openssh-server");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("sshd_config");
        let key = dir.path().join("hostkey");
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status();
        if !matches!(ok, Ok(s) if s.success()) {
            harmony_test_support::skip("tool ssh-keygen not usable: Debian package openssh-client");
            return;
        }
        std::fs::write(
            &cfg,
            format!("{}HostKey {}\n", drop_in_text(), key.display()),
        )
        .unwrap();
        // As root, sshd -t insists on its privilege separation directory /run/sshd, which
        // only a running ssh service makes: give it one on a private /run (a mount
        // namespace of its own), leaving the host's /run alone.
        let mut cmd = if nix::unistd::Uid::effective().is_root() {
            let mut c = std::process::Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg("mount -t tmpfs harmony-test /run && mkdir -m 0755 /run/sshd && exec \"$0\" \"$@\"")
                .arg(sshd);
            c
        } else {
            std::process::Command::new(sshd)
        };
        let out = cmd.arg("-t").arg("-f").arg(&cfg).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
