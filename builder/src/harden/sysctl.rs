//! Kernel parameters (CIS 3.3.x network, 1.5.x process hardening), written to
//! /etc/sysctl.d and loaded at boot by systemd-sysctl, OpenRC's `sysctl` service, or a
//! busybox `::sysinit:` script.
//!
//! Kubernetes overrides (see `super::KUBERNETES_OVERRIDES`): forwarding is ON and
//! rp_filter is loose (2), in their own file `61-harmony-kubernetes.conf` so an auditor
//! sees them apart from the CIS values. `kernel.modules_disabled` is never set.

use std::collections::BTreeMap;

use super::flavour::Flavour;
use super::{boot_hook, exists, put_file, put_link, Outcome, Rule};
use crate::steps::agent::InitSystem;
use crate::tree::{Kind, Tree, TreeError};

pub const CIS_FILE: &str = "etc/sysctl.d/60-harmony-cis.conf";
pub const KUBERNETES_FILE: &str = "etc/sysctl.d/61-harmony-kubernetes.conf";
/// busybox init: applies sysctl.d files in systemd-sysctl's order.
pub const BUSYBOX_LOADER: &str = "/etc/init.d/harmony-sysctl";

/// CIS 3.3.x: the host is not a router for anything but its pods, and says so.
const NETWORK_SETTINGS: &[(&str, &str)] = &[
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
    ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.conf.default.accept_redirects", "0"),
    ("net.ipv6.conf.all.accept_redirects", "0"),
    ("net.ipv6.conf.default.accept_redirects", "0"),
    ("net.ipv4.conf.all.secure_redirects", "0"),
    ("net.ipv4.conf.default.secure_redirects", "0"),
    ("net.ipv4.conf.all.accept_source_route", "0"),
    ("net.ipv4.conf.default.accept_source_route", "0"),
    ("net.ipv6.conf.all.accept_source_route", "0"),
    ("net.ipv6.conf.default.accept_source_route", "0"),
    ("net.ipv4.conf.all.log_martians", "1"),
    ("net.ipv4.conf.default.log_martians", "1"),
    ("net.ipv4.icmp_echo_ignore_broadcasts", "1"),
    ("net.ipv4.icmp_ignore_bogus_error_responses", "1"),
    ("net.ipv4.tcp_syncookies", "1"),
    ("net.ipv6.conf.all.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
];

/// The CIS values a Kubernetes node overrides, and with what.
const KUBERNETES_SETTINGS: &[(&str, &str, &str)] = &[
    (
        "net.ipv4.ip_forward",
        "1",
        "CIS 3.3.1 wants 0; pod traffic is routed through the node",
    ),
    (
        "net.ipv6.conf.all.forwarding",
        "1",
        "CIS 3.3.1 wants 0; the same for IPv6 and dual-stack clusters",
    ),
    (
        "net.ipv4.conf.all.rp_filter",
        "2",
        "CIS 3.3.7 wants 1 (strict); CNI plugins and IPVS need loose",
    ),
    (
        "net.ipv4.conf.default.rp_filter",
        "2",
        "CIS 3.3.7 wants 1 (strict); CNI plugins and IPVS need loose",
    ),
];

/// CIS 1.5.x and common kernel hardening.
const KERNEL_SETTINGS: &[(&str, &str)] = &[
    ("kernel.randomize_va_space", "2"),
    ("kernel.kptr_restrict", "2"),
    ("kernel.dmesg_restrict", "1"),
    ("kernel.yama.ptrace_scope", "1"),
    ("fs.suid_dumpable", "0"),
    ("fs.protected_hardlinks", "1"),
    ("fs.protected_symlinks", "1"),
];

/// Unprivileged BPF off and the BPF JIT hardened: a node's BPF users (CNI plugins such as
/// Cilium, kube-proxy's helpers) run privileged.
const BPF_SETTINGS: &[(&str, &str)] = &[
    ("kernel.unprivileged_bpf_disabled", "1"),
    ("net.core.bpf_jit_harden", "2"),
];

pub const NETWORK: Rule = Rule {
    id: "sysctl-network",
    title: "network parameters: no redirects, no source routing, martians logged, SYN cookies; forwarding on and rp_filter loose for Kubernetes",
    cis: "3.3.1-3.3.9",
    apply: apply_network,
    check: check_network,
};

pub const KERNEL: Rule = Rule {
    id: "sysctl-kernel",
    title: "kernel parameters: ASLR, kptr/dmesg restrictions, ptrace scope, no setuid core dumps, protected links",
    cis: "1.5.1-1.5.3",
    apply: apply_kernel,
    check: check_kernel,
};

pub const BPF: Rule = Rule {
    id: "sysctl-bpf",
    title: "unprivileged BPF off (kernel.unprivileged_bpf_disabled = 1), BPF JIT hardened",
    cis: "1.5 (RHEL 9 v2 1.5.x)",
    apply: apply_bpf,
    check: check_bpf,
};

fn network_wanted() -> Vec<(&'static str, &'static str)> {
    let mut v = NETWORK_SETTINGS.to_vec();
    v.extend(KUBERNETES_SETTINGS.iter().map(|(k, val, _)| (*k, *val)));
    v
}

fn apply_network(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    write_settings(tree, NETWORK_SETTINGS)?;
    let mut k8s = String::from(
        "# Kubernetes overrides of CIS values, on purpose (harmony hardening, rule sysctl-network).\n",
    );
    for (key, value, why) in KUBERNETES_SETTINGS {
        k8s += &format!("# {why}\n{key} = {value}\n");
    }
    put_file(tree, KUBERNETES_FILE, &k8s, 0o644)?;
    ensure_loader(tree, flavour)
}

fn apply_kernel(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    write_settings(tree, KERNEL_SETTINGS)?;
    ensure_loader(tree, flavour)
}

/// The sysctl rules (and core-dumps) share one CIS file: each merges its settings into
/// what it holds, so excluding one rule leaves only the others' lines.
pub(crate) fn write_settings(tree: &mut Tree, part: &[(&str, &str)]) -> Result<(), TreeError> {
    let mut current: BTreeMap<String, String> = tree
        .read_text(CIS_FILE)
        .map(|t| parse(t).into_iter().collect())
        .unwrap_or_default();
    for (k, v) in part {
        current.insert(k.to_string(), v.to_string());
    }
    let mut text = String::from(
        "# CIS kernel parameters (harmony hardening, rules sysctl-network, sysctl-kernel, sysctl-bpf, core-dumps).\n",
    );
    for (k, v) in &current {
        text += &format!("{k} = {v}\n");
    }
    put_file(tree, CIS_FILE, &text, 0o644)
}

pub(crate) fn ensure_loader(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    match flavour.init {
        Some(InitSystem::BusyboxInit) => {
            put_file(
                tree,
                BUSYBOX_LOADER.trim_start_matches('/'),
                BUSYBOX_SCRIPT,
                0o755,
            )?;
            boot_hook::ensure_sysinit(tree, BUSYBOX_LOADER)
        }
        Some(InitSystem::OpenRc) if exists(tree, "etc/init.d/sysctl") => {
            put_link(tree, "etc/runlevels/boot/sysctl", "/etc/init.d/sysctl")
        }
        // systemd-sysctl.service is part of systemd's sysinit.target; nothing to add.
        _ => Ok(()),
    }
}

const BUSYBOX_SCRIPT: &str = r#"#!/bin/sh
# Apply sysctl.d files as systemd-sysctl does: by file name across directories, a
# file in /etc hiding one of the same name in /usr/lib; /etc/sysctl.conf last.
for name in $(for f in /usr/lib/sysctl.d/*.conf /etc/sysctl.d/*.conf; do [ -f "$f" ] && echo "${f##*/}"; done | sort -u); do
    for dir in /etc/sysctl.d /usr/lib/sysctl.d; do
        if [ -f "$dir/$name" ]; then
            sysctl -q -p "$dir/$name"
            break
        fi
    done
done
[ -f /etc/sysctl.conf ] && sysctl -q -p /etc/sysctl.conf
exit 0
"#;

fn apply_bpf(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    write_settings(tree, BPF_SETTINGS)?;
    ensure_loader(tree, flavour)
}

fn check_bpf(tree: &Tree, flavour: &Flavour) -> Outcome {
    Outcome::from_problems(check_values(tree, flavour, BPF_SETTINGS))
}

fn check_network(tree: &Tree, flavour: &Flavour) -> Outcome {
    Outcome::from_problems(check_values(tree, flavour, &network_wanted()))
}

/// Also refuses `kernel.modules_disabled = 1`, the CIS item a node must not follow.
fn check_kernel(tree: &Tree, flavour: &Flavour) -> Outcome {
    let mut problems = check_values(tree, flavour, KERNEL_SETTINGS);
    if let Some((value, file)) = effective(tree).get("kernel.modules_disabled") {
        if value == "1" {
            problems.push(format!(
                "kernel.modules_disabled = 1 in /{file}: a Kubernetes node loads modules after boot"
            ));
        }
    }
    Outcome::from_problems(problems)
}

pub(crate) fn check_values(tree: &Tree, flavour: &Flavour, wanted: &[(&str, &str)]) -> Vec<String> {
    let effective = effective(tree);
    let mut problems = Vec::new();
    for (key, want) in wanted {
        match effective.get(*key) {
            Some((value, _)) if value == want => {}
            Some((value, file)) => problems.push(format!(
                "{key} is {value} (last set in /{file}), want {want}"
            )),
            None => problems.push(format!(
                "{key} is not set in any sysctl.d file, want {want}"
            )),
        }
    }
    problems.extend(loader_problem(tree, flavour));
    problems
}

pub(crate) fn loader_problem(tree: &Tree, flavour: &Flavour) -> Option<String> {
    match flavour.init {
        Some(InitSystem::Systemd) => (!exists(tree, "usr/lib/systemd/systemd-sysctl")).then(|| {
            "systemd image without /usr/lib/systemd/systemd-sysctl: nothing loads sysctl.d".into()
        }),
        Some(InitSystem::OpenRc) => (!exists(tree, "etc/runlevels/boot/sysctl")).then(|| {
            "OpenRC's sysctl service is not in the boot runlevel (/etc/runlevels/boot/sysctl)"
                .into()
        }),
        Some(InitSystem::BusyboxInit) => (!boot_hook::inittab_runs(tree, BUSYBOX_LOADER)
            || !exists(tree, BUSYBOX_LOADER))
        .then(|| format!("busybox init does not run {BUSYBOX_LOADER} at sysinit")),
        None => Some("no init system found: nothing loads sysctl.d at boot".into()),
    }
}

/// key → (value, file that set it last), in systemd-sysctl's order: files sorted by name
/// across /usr/lib, /run and /etc (a same-named file in /etc wins), then /etc/sysctl.conf.
pub fn effective(tree: &Tree) -> BTreeMap<String, (String, String)> {
    let mut by_name: BTreeMap<String, (String, &str)> = BTreeMap::new();
    // Lowest precedence first, so a later directory replaces a same-named file.
    for dir in [
        "usr/lib/sysctl.d",
        "usr/local/lib/sysctl.d",
        "run/sysctl.d",
        "etc/sysctl.d",
    ] {
        for (path, text) in super::files_in(tree, dir, ".conf") {
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            by_name.insert(name, (path, text));
        }
    }
    let mut files: Vec<(String, &str)> = by_name.into_values().collect();
    if let Some(Kind::File(_)) = tree.get_resolved("etc/sysctl.conf").map(|e| &e.kind) {
        files.push((
            "etc/sysctl.conf".into(),
            tree.read_text("etc/sysctl.conf").unwrap_or(""),
        ));
    }
    let mut out = BTreeMap::new();
    for (path, text) in files {
        for (k, v) in parse(text) {
            out.insert(k, (v, path.clone()));
        }
    }
    out
}

/// `key = value` lines; `#`/`;` comments; a leading `-` (ignore failure) dropped; `/` in
/// keys read as `.`.
pub fn parse(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            let k = k.trim().trim_start_matches('-').replace('/', ".");
            Some((k, v.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_files_win_and_etc_hides_usr_lib() {
        let mut t = Tree::new();
        put_file(
            &mut t,
            "usr/lib/sysctl.d/50-default.conf",
            "kernel.kptr_restrict = 1\nnet.ipv4.ip_forward=0\n",
            0o644,
        )
        .unwrap();
        put_file(
            &mut t,
            "etc/sysctl.d/50-default.conf",
            "# hides usr/lib's\n",
            0o644,
        )
        .unwrap();
        put_file(
            &mut t,
            "etc/sysctl.d/99-late.conf",
            "-net/ipv4/ip_forward = 1\n",
            0o644,
        )
        .unwrap();
        let e = effective(&t);
        assert!(!e.contains_key("kernel.kptr_restrict"));
        assert_eq!(
            e["net.ipv4.ip_forward"],
            ("1".into(), "etc/sysctl.d/99-late.conf".into())
        );
    }

    #[test]
    fn a_later_file_that_undoes_a_setting_fails_naming_it() {
        let mut t = Tree::new();
        put_file(&mut t, "etc/inittab", "::sysinit:/etc/init.d/rcS\n", 0o644).unwrap();
        let f = Flavour::detect(&t);
        apply_kernel(&mut t, &f).unwrap();
        assert_eq!(check_kernel(&t, &f), Outcome::Pass);
        put_file(
            &mut t,
            "etc/sysctl.d/99-local.conf",
            "kernel.randomize_va_space = 0\n",
            0o644,
        )
        .unwrap();
        let Outcome::Fail(p) = check_kernel(&t, &f) else {
            panic!()
        };
        assert_eq!(
            p,
            vec![
                "kernel.randomize_va_space is 0 (last set in /etc/sysctl.d/99-local.conf), want 2"
            ]
        );
    }

    #[test]
    fn both_rules_share_the_cis_file() {
        let mut t = Tree::new();
        put_file(&mut t, "etc/inittab", "", 0o644).unwrap();
        let f = Flavour::detect(&t);
        apply_network(&mut t, &f).unwrap();
        apply_kernel(&mut t, &f).unwrap();
        let text = t.read_text(CIS_FILE).unwrap();
        assert!(text.contains("net.ipv4.tcp_syncookies = 1\n"));
        assert!(text.contains("kernel.randomize_va_space = 2\n"));
        assert!(
            !text.contains("ip_forward"),
            "Kubernetes overrides live apart"
        );
        assert!(t
            .read_text(KUBERNETES_FILE)
            .unwrap()
            .contains("net.ipv4.ip_forward = 1\n"));
    }

    #[test]
    fn the_busybox_loader_is_valid_shell() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("harmony-sysctl");
        std::fs::write(&script, BUSYBOX_SCRIPT).unwrap();
        let status = std::process::Command::new("busybox")
            .args(["sh", "-n"])
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
