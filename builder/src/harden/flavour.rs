//! Which distribution family and init system an image has: some CIS items differ by
//! family (/etc/shadow is 0000 on RHEL, 0640 root:shadow on Debian and Alpine) and every
//! boot-time action is hooked in through the image's own init.

use crate::steps::agent::{detect_init, InitSystem};
use crate::tree::Tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// RHEL, CentOS Stream, Fedora, Rocky, Alma.
    Rhel,
    Alpine,
    /// Debian, Ubuntu, and anything that does not say otherwise.
    Debian,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavour {
    pub family: Family,
    pub init: Option<InitSystem>,
    /// gid of the `shadow` group in /etc/group, if there is one.
    pub shadow_gid: Option<u32>,
}

impl Flavour {
    pub fn detect(tree: &Tree) -> Flavour {
        let os_release = tree
            .read_text("etc/os-release")
            .or_else(|| tree.read_text("usr/lib/os-release"))
            .unwrap_or("");
        Flavour {
            family: family_of(os_release),
            init: detect_init(tree),
            shadow_gid: tree
                .read_text("etc/group")
                .and_then(|g| group_gid(g, "shadow")),
        }
    }
}

/// From os-release's ID and ID_LIKE.
fn family_of(os_release: &str) -> Family {
    let mut words = Vec::new();
    for line in os_release.lines() {
        if let Some(v) = line
            .strip_prefix("ID=")
            .or_else(|| line.strip_prefix("ID_LIKE="))
        {
            words.extend(
                v.trim_matches('"')
                    .split_whitespace()
                    .map(str::to_ascii_lowercase),
            );
        }
    }
    let any = |names: &[&str]| words.iter().any(|w| names.contains(&w.as_str()));
    if any(&["rhel", "centos", "fedora", "rocky", "almalinux"]) {
        Family::Rhel
    } else if any(&["alpine"]) {
        Family::Alpine
    } else {
        Family::Debian
    }
}

pub fn group_gid(group_file: &str, name: &str) -> Option<u32> {
    group_file.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_os_release() {
        assert_eq!(
            family_of("NAME=\"CentOS Stream\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\n"),
            Family::Rhel
        );
        assert_eq!(family_of("ID=alpine\n"), Family::Alpine);
        assert_eq!(
            family_of("ID=harmony-debian\nID_LIKE=debian\n"),
            Family::Debian
        );
        assert_eq!(family_of(""), Family::Debian);
    }

    #[test]
    fn shadow_gid_from_group() {
        assert_eq!(group_gid("root:x:0:\nshadow:x:42:\n", "shadow"), Some(42));
        assert_eq!(group_gid("root:x:0:\n", "shadow"), None);
    }
}
