//! The recipe's `packages:` (installed with the image's own package manager) and `run:`
//! (shell commands), each one layer, executed inside the image's root by
//! `run_in_root` — rootless, in a user namespace. The package manager is told by what the
//! base carries: dnf/microdnf (CentOS Stream, RHEL), apk (Alpine), apt-get (Debian).

use sha2::{Digest, Sha256};

use super::run_in_root::{run_in_root, IdMapping, RunError};
use super::StepOutput;
use crate::tree::diff::diff;
use crate::tree::Tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Dnf,
    Microdnf,
    Apk,
    Apt,
}

#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    #[error(
        "packages: the base image has no package manager Harmony knows \
         (looked for /usr/bin/dnf, /usr/bin/microdnf, /sbin/apk, /usr/bin/apt-get)"
    )]
    NoPackageManager,
    #[error("{step}: {source}")]
    Run {
        step: &'static str,
        #[source]
        source: RunError,
    },
}

pub fn detect(tree: &Tree) -> Option<PackageManager> {
    let has = |p: &str| tree.get_resolved(p).is_some();
    if has("usr/bin/dnf") {
        Some(PackageManager::Dnf)
    } else if has("usr/bin/microdnf") {
        Some(PackageManager::Microdnf)
    } else if has("sbin/apk") {
        Some(PackageManager::Apk)
    } else if has("usr/bin/apt-get") {
        Some(PackageManager::Apt)
    } else {
        None
    }
}

/// The command that installs `packages` and leaves no caches in the layer.
pub fn install_command(pm: PackageManager, packages: &[String]) -> Vec<String> {
    let list = packages.join(" ");
    let script = match pm {
        PackageManager::Dnf => format!(
            "dnf -y --setopt=install_weak_deps=False --setopt=tsflags=nodocs install {list} && dnf clean all && rm -rf /var/cache/dnf /var/log/dnf*"
        ),
        PackageManager::Microdnf => format!(
            "microdnf -y --setopt=install_weak_deps=0 --nodocs install {list} && microdnf clean all"
        ),
        PackageManager::Apk => format!("apk add --no-cache {list}"),
        PackageManager::Apt => format!(
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends {list} && apt-get clean && rm -rf /var/lib/apt/lists/*"
        ),
    };
    vec!["/bin/sh".into(), "-c".into(), script]
}

pub fn packages_step(tree: &Tree, packages: &[String]) -> Result<StepOutput, PackagesError> {
    let pm = detect(tree).ok_or(PackagesError::NoPackageManager)?;
    let argv = install_command(pm, packages);
    let out = run_in_root(tree, &argv, &[], IdMapping::for_caller()).map_err(|source| {
        PackagesError::Run {
            step: "packages",
            source,
        }
    })?;
    Ok(StepOutput {
        name: "packages",
        description: format!("harmony packages ({pm:?}): {}", packages.join(" ")),
        inputs_digest: hex::encode(Sha256::digest(argv.join("\0").as_bytes())),
        changes: diff(tree, &out.tree),
    })
}

/// `run:` commands, one shell each, in order, in one layer.
pub fn run_step(tree: &Tree, commands: &[String]) -> Result<StepOutput, PackagesError> {
    let mut current = tree.clone();
    for c in commands {
        let argv = vec!["/bin/sh".to_string(), "-c".into(), c.clone()];
        current = run_in_root(&current, &argv, &[], IdMapping::for_caller())
            .map_err(|source| PackagesError::Run {
                step: "run",
                source,
            })?
            .tree;
    }
    Ok(StepOutput {
        name: "run",
        description: format!("harmony run: {} command(s)", commands.len()),
        inputs_digest: hex::encode(Sha256::digest(commands.join("\0").as_bytes())),
        changes: diff(tree, &current),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::run_in_root::tests::busybox_root;
    use crate::tree::{Entry, Kind, Meta};
    use std::sync::Arc;

    #[test]
    fn the_manager_is_told_by_the_base() {
        let mut t = busybox_root();
        assert_eq!(detect(&t), None);
        t.insert(
            "usr/sbin/apk",
            Entry {
                kind: Kind::File(Arc::new(vec![])),
                meta: Meta::new(0o755),
            },
        )
        .unwrap();
        assert_eq!(
            detect(&t),
            Some(PackageManager::Apk),
            "found through the /sbin link"
        );
        t.insert(
            "usr/bin/dnf",
            Entry {
                kind: Kind::Symlink("dnf-3".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        t.insert(
            "usr/bin/dnf-3",
            Entry {
                kind: Kind::File(Arc::new(vec![])),
                meta: Meta::new(0o755),
            },
        )
        .unwrap();
        assert_eq!(detect(&t), Some(PackageManager::Dnf));
        assert_eq!(
            install_command(
                PackageManager::Apk,
                &["linux-virt".into(), "nftables".into()]
            )[2],
            "apk add --no-cache linux-virt nftables"
        );
    }

    /// Alpine's apk cannot be had here: a stand-in /sbin/apk (a shell script with apk's
    /// command line) in the Debian busybox fixture runs through the same path — detect,
    /// command, user namespace, layer — and its writes land in the layer.
    #[test]
    fn packages_run_the_images_own_manager_inside_its_root() {
        let mut t = busybox_root();
        let fake_apk = "#!/bin/sh\n[ \"$1 $2\" = \"add --no-cache\" ] || exit 2\nshift 2\nbusybox mkdir -p /etc/apk\nfor p in \"$@\"; do echo \"$p\" >> /etc/apk/world; done\n";
        t.insert(
            "usr/sbin/apk",
            Entry {
                kind: Kind::File(Arc::new(fake_apk.as_bytes().to_vec())),
                meta: Meta::new(0o755),
            },
        )
        .unwrap();
        let step = packages_step(&t, &["nftables".into(), "openssh-server".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = step.changes.0.keys().map(String::as_str).collect();
        assert_eq!(keys, ["etc/apk", "etc/apk/world"]);
        let crate::tree::layer::Change::Put(world) = &step.changes.0["etc/apk/world"] else {
            panic!()
        };
        assert_eq!(
            world.kind,
            Kind::File(Arc::new(b"nftables\nopenssh-server\n".to_vec()))
        );
    }

    #[test]
    fn run_commands_share_one_layer() {
        let t = busybox_root();
        let step = run_step(
            &t,
            &[
                "echo one > /etc/one".into(),
                "busybox cat /etc/one > /etc/two".into(),
            ],
        )
        .unwrap();
        let keys: Vec<&str> = step.changes.0.keys().map(String::as_str).collect();
        assert_eq!(keys, ["etc/one", "etc/two"]);
    }
}
