//! /tmp and /dev/shm mounted nodev,nosuid,noexec (CIS 1.1.2.x, 1.1.8.x).
//!
//! One fstab entry each serves systemd (fstab-generator makes tmp.mount from it;
//! systemd-remount-fs applies /dev/shm's options to the API mount) and OpenRC (localmount,
//! devfs). busybox init runs no fstab: the default image's rcS mounts both, and we add a
//! `::sysinit:` remount with the options so they hold whatever rcS did.

use super::flavour::Flavour;
use super::{boot_hook, put_file, Outcome, Rule};
use crate::steps::agent::InitSystem;
use crate::tree::{Tree, TreeError};

pub const OPTIONS: &[&str] = &["nodev", "nosuid", "noexec"];

pub const TMP: Rule = Rule {
    id: "mount-tmp",
    title: "/tmp is a tmpfs mounted nodev,nosuid,noexec",
    cis: "1.1.2.1-1.1.2.4",
    apply: apply_tmp,
    check: check_tmp,
};

pub const DEV_SHM: Rule = Rule {
    id: "mount-dev-shm",
    title: "/dev/shm is mounted nodev,nosuid,noexec",
    cis: "1.1.8.1-1.1.8.3",
    apply: apply_shm,
    check: check_shm,
};

fn apply_tmp(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    apply_mount(tree, flavour, "/tmp")
}
fn apply_shm(tree: &mut Tree, flavour: &Flavour) -> Result<(), TreeError> {
    apply_mount(tree, flavour, "/dev/shm")
}
fn check_tmp(tree: &Tree, flavour: &Flavour) -> Outcome {
    check_mount(tree, flavour, "/tmp")
}
fn check_shm(tree: &Tree, flavour: &Flavour) -> Outcome {
    check_mount(tree, flavour, "/dev/shm")
}

fn wanted_line(mountpoint: &str) -> String {
    format!(
        "tmpfs {mountpoint} tmpfs rw,{},mode=1777 0 0",
        OPTIONS.join(",")
    )
}

fn remount_command(mountpoint: &str) -> String {
    format!("/bin/mount -o remount,{} {mountpoint}", OPTIONS.join(","))
}

fn apply_mount(tree: &mut Tree, flavour: &Flavour, mountpoint: &str) -> Result<(), TreeError> {
    let current = tree.read_text("etc/fstab").unwrap_or("").to_string();
    let mut lines: Vec<String> = current
        .lines()
        .filter(|l| fstab_mountpoint(l) != Some(mountpoint))
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        lines.push("# <fs> <mountpoint> <type> <options> <dump> <pass>".into());
    }
    lines.push(wanted_line(mountpoint));
    put_file(tree, "etc/fstab", &(lines.join("\n") + "\n"), 0o644)?;
    if flavour.init == Some(InitSystem::BusyboxInit) {
        boot_hook::ensure_sysinit(tree, &remount_command(mountpoint))?;
    }
    Ok(())
}

fn fstab_mountpoint(line: &str) -> Option<&str> {
    let l = line.trim();
    if l.starts_with('#') {
        return None;
    }
    l.split_whitespace().nth(1)
}

fn check_mount(tree: &Tree, flavour: &Flavour, mountpoint: &str) -> Outcome {
    let mut problems = Vec::new();
    let fstab = tree.read_text("etc/fstab").unwrap_or("");
    // The last entry for a mountpoint is the one mount -a leaves on top.
    let entry = fstab
        .lines()
        .rfind(|l| fstab_mountpoint(l) == Some(mountpoint));
    match entry {
        None => problems.push(format!("/etc/fstab has no entry for {mountpoint}")),
        Some(line) => {
            let opts: Vec<&str> = line
                .split_whitespace()
                .nth(3)
                .unwrap_or("")
                .split(',')
                .collect();
            let missing: Vec<&str> = OPTIONS
                .iter()
                .copied()
                .filter(|o| !opts.contains(o))
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "/etc/fstab mounts {mountpoint} without {}",
                    missing.join(",")
                ));
            }
        }
    }
    if flavour.init == Some(InitSystem::BusyboxInit)
        && !boot_hook::inittab_runs(tree, &remount_command(mountpoint))
    {
        problems.push(format!(
            "busybox init does not remount {mountpoint} with {} (/etc/inittab)",
            OPTIONS.join(",")
        ));
    }
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_entries_are_replaced_and_others_kept() {
        let mut t = Tree::new();
        put_file(
            &mut t,
            "etc/fstab",
            "LABEL=data /srv ext4 defaults 0 2\ntmpfs /tmp tmpfs defaults 0 0\n",
            0o644,
        )
        .unwrap();
        let f = Flavour::detect(&t);
        assert_eq!(
            check_tmp(&t, &f),
            Outcome::Fail(vec![
                "/etc/fstab mounts /tmp without nodev,nosuid,noexec".into()
            ])
        );
        apply_tmp(&mut t, &f).unwrap();
        assert_eq!(
            t.read_text("etc/fstab").unwrap(),
            "LABEL=data /srv ext4 defaults 0 2\ntmpfs /tmp tmpfs rw,nodev,nosuid,noexec,mode=1777 0 0\n"
        );
        assert_eq!(check_tmp(&t, &f), Outcome::Pass);
    }
}
