//! A recipe's `base: debian-packages:FILE`: the base is made on this machine from the
//! Debian packages FILE lists, installed with their maintainer scripts
//! (`harmony base debian --mode install`), on first use, and kept in the cache under a
//! directory named by what it was made from. A lock makes concurrent builds wait for one
//! maker instead of making it twice.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use super::default_base::read_package_list;
use crate::base::debian::{make_debian_base, BaseMode, DebianBaseOptions};
use crate::base::install;

pub const TAG: &str = "latest";

/// What the base is made from besides the .debs: the list, the mode's arguments, the epoch.
pub fn base_digest(packages: &[String], source_date_epoch: i64) -> String {
    let mut h = Sha256::new();
    let args = install::mmdebstrap_args(packages, Path::new("CACHE"), &[]);
    h.update(args.join("\0").as_bytes());
    h.update(install::HOSTNAME.as_bytes());
    h.update(source_date_epoch.to_le_bytes());
    hex::encode(h.finalize())
}

/// The OCI layout directory of the base `list` describes, made under `cache` if missing.
pub fn ensure_packages_base(
    cache: &Path,
    list: &Path,
    source_date_epoch: i64,
) -> anyhow::Result<PathBuf> {
    let packages = read_package_list(list)?;
    let stem = list
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "packages".into());
    let digest = base_digest(&packages, source_date_epoch);
    let bases = cache.join("bases");
    std::fs::create_dir_all(&bases).with_context(|| format!("creating {}", bases.display()))?;
    let dir = bases.join(format!("{stem}-{}", &digest[..16]));
    let lock_path = dir.with_extension("lock");
    let lock_file = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    let _held = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("locking {}: {e}", lock_path.display()))?;
    if dir.join("index.json").is_file() {
        return Ok(dir);
    }
    tracing::info!(
        "making the base {} from the Debian packages in {} into {} (once per machine; \
         same as `harmony base debian --mode install --packages {} --out {}`)",
        stem,
        list.display(),
        dir.display(),
        list.display(),
        dir.display()
    );
    make_debian_base(&DebianBaseOptions {
        packages,
        mode: BaseMode::Install,
        out: dir.clone(),
        tag: TAG.to_string(),
        cache: cache.to_path_buf(),
        source_date_epoch,
    })
    .with_context(|| format!("making the base from {}", list.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// image-recipes/debian-node.yaml: its base is a package list beside it that names
    /// the node's packages; the whole CIS profile; every output format.
    #[test]
    fn the_shipped_debian_node_recipe_names_its_package_list() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-recipes");
        let r =
            crate::recipe::load(&dir.join("debian-node.yaml")).unwrap_or_else(|e| panic!("{e}"));
        let crate::oci::ImageRef::DebianPackages { list } = &r.base else {
            panic!("base {} is not debian-packages:", r.base)
        };
        let packages = read_package_list(&r.dir.join(list)).unwrap();
        for p in [
            "systemd",
            "dbus",
            "containerd",
            "runc",
            "containernetworking-plugins",
            "nftables",
            "conntrack",
            "ipvsadm",
            "iproute2",
            "kmod",
            "openssh-server",
            "auditd",
            "ca-certificates",
            "socat",
            "ethtool",
            "mount",
            "util-linux",
            "libcap2-bin",
            "linux-image-cloud-amd64",
        ] {
            assert!(packages.iter().any(|x| x == p), "{p} not in {packages:?}");
        }
        assert_eq!(
            r.hardening.as_ref().map(|h| h.profile.as_str()),
            Some("cis")
        );
        assert_eq!(r.outputs.len(), crate::recipe::Output::ALL.len());
        assert!(r.agent);
    }

    #[test]
    fn the_base_is_keyed_by_its_list_and_epoch() {
        let a = base_digest(&["systemd".into()], 0);
        assert_eq!(a, base_digest(&["systemd".into()], 0));
        assert_ne!(a, base_digest(&["systemd".into(), "dbus".into()], 0));
        assert_ne!(a, base_digest(&["systemd".into()], 1));
    }
}
