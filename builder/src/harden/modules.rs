//! Kernel modules a node never needs (CIS 1.1.1.x filesystems, 3.2.x network protocols,
//! 1.1.10 USB storage): `install MOD /bin/false` so neither modprobe nor an automatic
//! request loads them, plus `blacklist MOD` against alias loading. Names are written as
//! CIS and OpenSCAP spell them (`usb-storage`); kmod reads `-` and `_` alike.
//!
//! Deliberately NOT blacklisted although some CIS profiles list them: squashfs (the root
//! image is one), overlay (the writable layer), vfat and iso9660 (EFI and NoCloud seeds).
//! harmony-init loads its boot modules with finit_module, which modprobe.d does not affect.

use super::flavour::Flavour;
use super::{files_in, put_file, Outcome, Rule};
use crate::tree::{Tree, TreeError};

pub const FILE: &str = "etc/modprobe.d/harmony-cis-blacklist.conf";

pub const MODULES: &[(&str, &str)] = &[
    ("cramfs", "1.1.1.1"),
    ("freevxfs", "1.1.1.2"),
    ("jffs2", "1.1.1.3"),
    ("hfs", "1.1.1.4"),
    ("hfsplus", "1.1.1.5"),
    ("udf", "1.1.1.7"),
    ("usb-storage", "1.1.10"),
    ("dccp", "3.2.1"),
    ("sctp", "3.2.2"),
    ("rds", "3.2.3"),
    ("tipc", "3.2.4"),
    ("firewire_core", "1.1.1 (L2)"),
    ("bluetooth", "3.1.3"),
];

const REFUSERS: &[&str] = &["/bin/false", "/usr/bin/false", "/bin/true", "/usr/bin/true"];

pub const BLACKLIST: Rule = Rule {
    id: "kernel-modules-blacklist",
    title: "unused filesystems, protocols and USB storage cannot be loaded (modprobe.d install /bin/false)",
    cis: "1.1.1.1-1.1.1.7, 1.1.10, 3.2.1-3.2.4",
    apply,
    check,
};

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    let mut text = String::from("# CIS: modules a Kubernetes node never loads (harmony hardening, rule kernel-modules-blacklist).\n");
    for (m, item) in MODULES {
        text += &format!("# CIS {item}\ninstall {m} /bin/false\nblacklist {m}\n");
    }
    put_file(tree, FILE, &text, 0o644)
}

fn canonical(name: &str) -> String {
    name.replace('-', "_")
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    // kmod reads /usr/lib then /etc, a same-named /etc file hiding the other, in name order.
    let mut by_name = std::collections::BTreeMap::new();
    for dir in [
        "usr/lib/modprobe.d",
        "lib/modprobe.d",
        "run/modprobe.d",
        "etc/modprobe.d",
    ] {
        for (path, text) in files_in(tree, dir, ".conf") {
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            by_name.insert(name, (path, text));
        }
    }
    let mut problems = Vec::new();
    for (module, _) in MODULES {
        // modprobe uses the first install command it reads for a module.
        let first = by_name.values().find_map(|(path, text)| {
            text.lines().find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("install") && w.next().map(canonical) == Some(canonical(module)))
                    .then(|| (path.clone(), w.collect::<Vec<_>>().join(" ")))
            })
        });
        match first {
            Some((_, cmd)) if REFUSERS.contains(&cmd.as_str()) => {}
            Some((path, cmd)) => problems.push(format!(
                "{module}: /{path} installs it with `{cmd}`, want /bin/false"
            )),
            None => problems.push(format!(
                "{module}: no `install {module} /bin/false` in any modprobe.d file"
            )),
        }
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_file_that_reenables_a_module_is_named() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        put_file(
            &mut t,
            "etc/modprobe.d/00-local.conf",
            "install usb-storage /sbin/modprobe --ignore-install usb-storage\n",
            0o644,
        )
        .unwrap();
        let Outcome::Fail(p) = check(&t, &f) else {
            panic!()
        };
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("usb-storage: /etc/modprobe.d/00-local.conf installs it with"),
            "{p:?}"
        );
    }
}
