//! Default-deny inbound firewall (CIS 3.4.2.x with nftables): a static base policy,
//! loaded at boot before the network.
//!
//! How it combines with the node's own ruleset: both are table `inet harmony`. At first
//! boot the agent (node role) renders the node's ruleset to `NODE_RULESET` and loads it;
//! that file replaces the table in one `nft -f` transaction (create, delete, define), so
//! the node goes from this base to its own policy without an open moment. At every boot
//! the loader (`LOADER`) loads the base first and then, once first boot has written it,
//! the node's ruleset: a node whose ruleset fails to load stays closed, never open.
//! Nothing here flushes the ruleset or touches another table (an `accept` in another
//! table would not override this table's `drop` anyway).
//!
//! Kubernetes override: `forward` stays `policy accept` (CIS wants drop); the CNI plugin
//! owns pod forwarding.

use super::flavour::Flavour;
use super::{boot_hook, exists, first_existing, put_file, put_link, Outcome, Rule};
use crate::steps::agent::InitSystem;
use crate::tree::{Tree, TreeError};

pub const POLICY_FILE: &str = "etc/harmony/firewall/base.nft";
pub const NFT: &str = "/usr/sbin/nft";
pub const TABLE: &str = "inet harmony";
/// What the agent renders at first boot (agent/src/node_role/firewall.rs `PATH`).
pub const NODE_RULESET: &str = "/etc/nftables.d/harmony.nft";
/// Loads the base, then the node's ruleset when there is one; every init system runs it.
pub const LOADER: &str = "usr/lib/harmony/load-firewall";
const LOADER_SCRIPT: &str = r#"#!/bin/sh
# Boot-time firewall (hardening rule firewall-default-deny): the static base policy
# (inbound default-deny), then, once first boot has rendered it, the node's own ruleset,
# which replaces table inet harmony in one transaction. If that fails the base stays.
/usr/sbin/nft -f /etc/harmony/firewall/base.nft || exit 1
if [ -f /etc/nftables.d/harmony.nft ]; then
    /usr/sbin/nft -f /etc/nftables.d/harmony.nft
fi
"#;

pub const BASE_POLICY: &str = r#"#!/usr/sbin/nft -f
# Harmony base firewall (hardening rule firewall-default-deny): inbound default-deny
# until first boot renders the node's ruleset (/etc/nftables.d/harmony.nft), which
# replaces this table. Loaded by /usr/lib/harmony/load-firewall at every boot.
table inet harmony
delete table inet harmony
table inet harmony {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state invalid drop
		ct state established,related accept
		meta l4proto icmp accept
		meta l4proto ipv6-icmp accept
	}
	# Kubernetes override of CIS 3.4.x: the CNI plugin owns pod forwarding.
	chain forward {
		type filter hook forward priority filter; policy accept;
	}
	chain output {
		type filter hook output priority filter; policy accept;
	}
}
"#;

const SYSTEMD_UNIT_PATH: &str = "usr/lib/systemd/system/harmony-firewall.service";
const SYSTEMD_WANTS: &str = "etc/systemd/system/sysinit.target.wants/harmony-firewall.service";
const SYSTEMD_UNIT: &str = "[Unit]
Description=Harmony base firewall (inbound default-deny)
DefaultDependencies=no
Before=network-pre.target shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/lib/harmony/load-firewall

[Install]
WantedBy=sysinit.target
";

const OPENRC_SCRIPT_PATH: &str = "etc/init.d/harmony-firewall";
const OPENRC_LINK: &str = "etc/runlevels/boot/harmony-firewall";
const OPENRC_SCRIPT: &str = "#!/sbin/openrc-run
description=\"Harmony base firewall (inbound default-deny)\"

depend() {
\tbefore net
\tprovide firewall
}

start() {
\tebegin \"Loading the Harmony base firewall\"
\t/usr/lib/harmony/load-firewall
\teend $?
}
";

fn busybox_command() -> String {
    format!("/{LOADER}")
}

pub const DEFAULT_DENY: Rule = Rule {
    id: "firewall-default-deny",
    title: "nftables inbound default-deny (table inet harmony) loaded at boot, replaced by the node's own ruleset once first boot renders it",
    cis: "3.4.2.1-3.4.2.7",
    apply,
    check,
};

fn apply(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    put_file(tree, POLICY_FILE, BASE_POLICY, 0o600)?;
    put_file(tree, LOADER, LOADER_SCRIPT, 0o755)?;
    match flavour.init {
        Some(InitSystem::Systemd) => {
            put_file(tree, SYSTEMD_UNIT_PATH, SYSTEMD_UNIT, 0o644)?;
            put_link(tree, SYSTEMD_WANTS, &format!("/{SYSTEMD_UNIT_PATH}"))
        }
        Some(InitSystem::OpenRc) => {
            put_file(tree, OPENRC_SCRIPT_PATH, OPENRC_SCRIPT, 0o755)?;
            put_link(tree, OPENRC_LINK, &format!("/{OPENRC_SCRIPT_PATH}"))
        }
        Some(InitSystem::BusyboxInit) => boot_hook::ensure_sysinit(tree, &busybox_command()),
        None => Ok(()),
    }
}

fn check(tree: &Tree, flavour: &Flavour) -> Outcome {
    let mut problems = Vec::new();
    match tree.read_text(POLICY_FILE) {
        None => problems.push(format!("no base policy /{POLICY_FILE}")),
        Some(text) => {
            if !text.contains(&format!("table {TABLE} {{")) {
                problems.push(format!("/{POLICY_FILE} does not define table {TABLE}"));
            }
            let input_policy = text
                .lines()
                .find(|l| l.contains("hook input"))
                .map(|l| l.contains("policy drop"));
            if input_policy != Some(true) {
                problems.push(format!(
                    "/{POLICY_FILE}: the input chain's policy is not drop"
                ));
            }
        }
    }
    if first_existing(tree, &["usr/sbin/nft", "sbin/nft"]).is_none() {
        problems
            .push("no nft binary in the image (usr/sbin/nft): the policy cannot be loaded".into());
    }
    let loaded = exists(tree, LOADER)
        && match flavour.init {
            Some(InitSystem::Systemd) => {
                exists(tree, SYSTEMD_UNIT_PATH) && tree.get(SYSTEMD_WANTS).is_some()
            }
            Some(InitSystem::OpenRc) => {
                exists(tree, OPENRC_SCRIPT_PATH) && tree.get(OPENRC_LINK).is_some()
            }
            Some(InitSystem::BusyboxInit) => boot_hook::inittab_runs(tree, &busybox_command()),
            None => false,
        };
    if !loaded {
        problems.push("nothing loads the base policy at boot".into());
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_init_system_loads_the_policy() {
        for (marker, init) in [
            ("usr/lib/systemd/systemd", InitSystem::Systemd),
            ("usr/sbin/openrc", InitSystem::OpenRc),
            ("etc/inittab", InitSystem::BusyboxInit),
        ] {
            let mut t = Tree::new();
            put_file(&mut t, marker, "", 0o755).unwrap();
            put_file(&mut t, "usr/sbin/nft", "", 0o755).unwrap();
            let f = Flavour::detect(&t);
            assert_eq!(f.init, Some(init));
            assert!(matches!(check(&t, &f), Outcome::Fail(_)));
            apply(&mut t, &f).unwrap();
            assert_eq!(check(&t, &f), Outcome::Pass, "{init:?}");
        }
    }

    #[test]
    fn an_accepting_input_policy_fails() {
        let mut t = Tree::new();
        put_file(&mut t, "etc/inittab", "", 0o644).unwrap();
        put_file(&mut t, "usr/sbin/nft", "", 0o755).unwrap();
        let f = Flavour::detect(&t);
        apply(&mut t, &f).unwrap();
        let open = BASE_POLICY.replace(
            "hook input priority filter; policy drop;",
            "hook input priority filter; policy accept;",
        );
        put_file(&mut t, POLICY_FILE, &open, 0o600).unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![format!(
                "/{POLICY_FILE}: the input chain's policy is not drop"
            )])
        );
    }

    /// The real nft loads the policy in a fresh network namespace, twice (a reload must
    /// not fail), then a node ruleset shaped like the agent's replaces the table: one
    /// table, the node's ports, still default-deny. Root only.
    #[test]
    fn real_nft_loads_the_base_then_the_node_ruleset_replaces_it() {
        if !nix::unistd::Uid::effective().is_root() {
            harmony_test_support::skip("needs root for a network namespace");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.nft");
        std::fs::write(&base, BASE_POLICY).unwrap();
        let node = dir.path().join("harmony.nft");
        std::fs::write(
            &node,
            "table inet harmony\ndelete table inet harmony\ntable inet harmony {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 10250 accept\n\t}\n}\n",
        )
        .unwrap();
        let script = format!(
            "set -e; nft -f {b}; nft -f {b}; nft -f {n}; nft list ruleset",
            b = base.display(),
            n = node.display()
        );
        let out = std::process::Command::new("unshare")
            .args(["--net", "sh", "-c", &script])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.matches("table ").count(), 1, "{stdout}");
        assert!(
            stdout.contains("policy drop") && stdout.contains("tcp dport 10250 accept"),
            "{stdout}"
        );
        assert!(
            !stdout.contains("chain forward"),
            "the node's ruleset replaced the base: {stdout}"
        );
    }

    #[test]
    fn the_loader_is_valid_shell() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("load-firewall");
        std::fs::write(&f, LOADER_SCRIPT).unwrap();
        assert!(std::process::Command::new("busybox")
            .args(["sh", "-n"])
            .arg(&f)
            .status()
            .unwrap()
            .success());
    }
}
