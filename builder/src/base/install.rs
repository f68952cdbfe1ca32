//! The install mode of `harmony base debian`: packages installed with their maintainer
//! scripts run (users, groups, enabled units, alternatives, generated files), rootless,
//! by `mmdebstrap --mode=unshare`. mmdebstrap bootstraps the Essential set and apt,
//! then installs the list with apt inside the new root; its tar arrives on a pipe and
//! becomes the Tree the base layer is written from.
//!
//! Why mmdebstrap and not apt-get run by us inside a root in a user namespace: a root
//! needs dpkg, apt and the Essential set configured before apt-get can run in it, which
//! is exactly debootstrap's two stages; mmdebstrap does them in one pass, without root
//! (unprivileged it maps /etc/subuid ranges with newuidmap; as root it needs only a
//! mount namespace), and is in bookworm. Downloaded .debs are copied out to the cache
//! (`cache/debs`, shared with the unpack mode), hashed for the image's annotations and
//! handed back to apt on the next run, which checks them against the archive's SHA256
//! before use.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::debian::{BaseError, BasePackage};
use super::placement::DROPPED;
use crate::oci::digest::HashingReader;
use crate::tree::unpack::apply_layer;
use crate::tree::{Entry, Tree, TreeError};

/// The suite the packages come from (this builder's apt sources: Debian 12).
pub const SUITE: &str = "bookworm";
/// Where apt keeps the archives inside the root while mmdebstrap runs.
const ARCHIVES: &str = "var/cache/apt/archives";
/// The host's apt sources, handed to mmdebstrap as its mirrors: the base's packages
/// come from where `apt-get download` (the unpack mode) gets them.
const HOST_SOURCES: &[&str] = &["/etc/apt/sources.list", "/etc/apt/sources.list.d"];

/// What the host or the moment of the build left in the root, or what must differ per
/// machine: removed from the base (systemd makes a machine id at first boot; sshd's host
/// keys are made on the node, never shared by every node built from one image).
const SCRUBBED: &[&str] = &[
    "etc/resolv.conf",
    "etc/ssh/ssh_host_ecdsa_key",
    "etc/ssh/ssh_host_ecdsa_key.pub",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_rsa_key.pub",
    "var/cache/ldconfig/aux-cache",
    "var/lib/dbus/machine-id",
];
/// mmdebstrap copies the build host's /etc/hostname into the root.
pub const HOSTNAME: &str = "localhost\n";

/// `mmdebstrap` arguments that install `packages` and write the root as a tar to stdout.
pub fn mmdebstrap_args(packages: &[String], debs: &Path, sources: &[PathBuf]) -> Vec<String> {
    let debs = debs.display();
    let mut args: Vec<String> = vec![
        "--mode=unshare".into(),
        "--variant=minbase".into(),
        "--format=tar".into(),
        // Keep the archives until they are copied out to the cache.
        "--skip=download/empty".into(),
        "--skip=essential/unlink".into(),
        format!("--include={}", packages.join(",")),
        format!("--setup-hook=mkdir -p \"$1\"/{ARCHIVES}"),
        format!("--setup-hook=sync-in {debs} /{ARCHIVES}"),
        format!("--customize-hook=sync-out /{ARCHIVES} {debs}"),
    ];
    // Documentation and translations, as the unpack mode drops them; copyrights stay.
    for d in DROPPED {
        args.push(format!("--dpkgopt=path-exclude=/{d}/*"));
    }
    args.push("--dpkgopt=path-include=/usr/share/doc/*/copyright".into());
    args.push(SUITE.into());
    args.push("-".into());
    args.extend(sources.iter().map(|s| s.display().to_string()));
    args
}

/// The host's apt source files (one-line `.list` and deb822 `.sources`), sorted.
fn host_sources() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for s in HOST_SOURCES {
        let p = Path::new(s);
        if p.is_file() && std::fs::metadata(p).is_ok_and(|m| m.len() > 0) {
            found.push(p.to_path_buf());
        } else if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "list" || x == "sources"))
                .collect();
            files.sort();
            found.extend(files);
        }
    }
    found
}

/// Install `packages` into a fresh root; the root and what went into it.
pub fn install_root(
    packages: &[String],
    cache: &Path,
    source_date_epoch: i64,
) -> Result<(Tree, Vec<BasePackage>), BaseError> {
    let tool = |problem: String| BaseError::Apt {
        package: packages.join(","),
        problem,
    };
    let debs = cache.join("debs");
    std::fs::create_dir_all(&debs)
        .map_err(|e| tool(format!("creating {}: {e}", debs.display())))?;
    let sources = host_sources();
    if sources.is_empty() {
        return Err(tool(format!(
            "no apt sources on this host (looked at {})",
            HOST_SOURCES.join(", ")
        )));
    }
    let log = tempfile::tempfile().map_err(|e| tool(format!("temp file: {e}")))?;
    let mut child = Command::new("mmdebstrap")
        .args(mmdebstrap_args(packages, &debs, &sources))
        .env("SOURCE_DATE_EPOCH", source_date_epoch.to_string())
        // The image's initramfs is Harmony's own: no initramfs-tools run at install.
        .env("INITRD", "No")
        .stdout(Stdio::piped())
        .stderr(
            log.try_clone()
                .map_err(|e| tool(format!("temp file: {e}")))?,
        )
        .spawn()
        .map_err(|e| {
            tool(format!(
                "running mmdebstrap (Debian package mmdebstrap; unprivileged it also needs \
                 uidmap and /etc/subuid, /etc/subgid ranges): {e}"
            ))
        })?;
    let mut tree = Tree::new();
    let unpacked = match child.stdout.take() {
        Some(stdout) => apply_layer(&mut tree, stdout).map_err(|e| e.to_string()),
        None => Err("no stdout".to_string()),
    };
    let status = child
        .wait()
        .map_err(|e| tool(format!("waiting for mmdebstrap: {e}")))?;
    if !status.success() || unpacked.is_err() {
        let tail = log_tail(log);
        let why = match unpacked {
            Err(e) if status.success() => format!("reading its tar: {e}"),
            _ => format!("mmdebstrap exited with {status}"),
        };
        return Err(tool(format!("{why}; its last output:\n{tail}")));
    }
    let installed = hash_archives(&debs, &dpkg_status(&tree))?;
    // apt cleaned its archive directory; nothing of the download stays in the root.
    tree.remove_children(ARCHIVES);
    scrub(&mut tree, source_date_epoch).map_err(|e| BaseError::Skeleton(e.to_string()))?;
    Ok((tree, installed))
}

fn log_tail(mut log: std::fs::File) -> String {
    use std::io::Seek;
    let mut text = String::new();
    let _ = log.seek(std::io::SeekFrom::Start(0));
    let _ = log.read_to_string(&mut text);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `Package` → `Version` of every installed package in /var/lib/dpkg/status.
pub fn installed_versions(status: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_string))
        };
        let installed = field("Status:").is_some_and(|s| s.ends_with(" installed"));
        if let (true, Some(p), Some(v)) = (installed, field("Package:"), field("Version:")) {
            out.insert(p, v);
        }
    }
    out
}

fn dpkg_status(tree: &Tree) -> BTreeMap<String, String> {
    installed_versions(tree.read_text("var/lib/dpkg/status").unwrap_or(""))
}

/// `NAME_VERSION_ARCH.deb` (apt writes an epoch's `:` as `%3a`) → (name, version).
pub fn archive_name(file: &str) -> Option<(String, String)> {
    let stem = file.strip_suffix(".deb")?;
    let mut parts = stem.split('_');
    let (name, version, _arch) = (parts.next()?, parts.next()?, parts.next()?);
    Some((name.to_string(), version.replace("%3a", ":")))
}

/// The installed packages with the sha256 of the .deb each came from, read from the
/// archives mmdebstrap copied out to `debs` (apt checked them against the archive).
fn hash_archives(
    debs: &Path,
    installed: &BTreeMap<String, String>,
) -> Result<Vec<BasePackage>, BaseError> {
    let mut packages = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(debs)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for path in files {
        let Some((name, version)) = path
            .file_name()
            .and_then(|f| archive_name(&f.to_string_lossy()))
        else {
            continue;
        };
        if installed.get(&name) != Some(&version)
            || packages.iter().any(|p: &BasePackage| p.name == name)
        {
            continue;
        }
        let file = std::fs::File::open(&path).map_err(|e| BaseError::Apt {
            package: name.clone(),
            problem: format!("{}: {e}", path.display()),
        })?;
        let mut reader = HashingReader::new(file);
        std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| BaseError::Apt {
            package: name.clone(),
            problem: format!("{}: {e}", path.display()),
        })?;
        packages.push(BasePackage {
            name,
            version,
            sha256: reader.finish().0,
            metapackage: false,
        });
    }
    let missing: Vec<&str> = installed
        .keys()
        .filter(|p| !packages.iter().any(|b| &b.name == *p))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(BaseError::Apt {
            package: missing.join(","),
            problem: format!("installed, but its .deb is not in {}", debs.display()),
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(packages)
}

/// Remove what belongs to the build host or to one machine (see [`SCRUBBED`]); empty
/// the machine id and set a neutral host name.
pub fn scrub(tree: &mut Tree, epoch: i64) -> Result<(), TreeError> {
    for p in SCRUBBED {
        match tree.remove(p) {
            Ok(_) | Err(TreeError::NotFound { .. } | TreeError::ParentNotDir { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let mut file = |path: &str, text: &str| {
        let meta = tree
            .get(path)
            .map(|e| e.meta.clone())
            .unwrap_or_else(|| crate::tree::Meta::new(0o644));
        let mut entry = Entry::file(text.as_bytes().to_vec(), meta.mode);
        entry.meta = crate::tree::Meta {
            mtime: epoch,
            ..meta
        };
        tree.insert(path, entry)
    };
    file("etc/hostname", HOSTNAME)?;
    file("etc/machine-id", "")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dpkg_status_gives_installed_versions_only() {
        let status = "Package: a\nStatus: install ok installed\nVersion: 1:2.3-1\n\n\
                      Package: b\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                      Package: c\nVersion: 4\nStatus: install ok installed\n";
        let v = installed_versions(status);
        assert_eq!(v.len(), 2);
        assert_eq!(v["a"], "1:2.3-1");
        assert_eq!(v["c"], "4");
    }

    #[test]
    fn archive_names_give_package_and_version() {
        assert_eq!(
            archive_name("systemd_252.38-1~deb12u1_amd64.deb"),
            Some(("systemd".into(), "252.38-1~deb12u1".into()))
        );
        assert_eq!(
            archive_name("libc6_1%3a2.36-9_amd64.deb"),
            Some(("libc6".into(), "1:2.36-9".into()))
        );
        assert_eq!(archive_name("lock"), None);
    }

    #[test]
    fn mmdebstrap_is_asked_for_a_rootless_tar_on_stdout() {
        let a = mmdebstrap_args(
            &["systemd".into(), "dbus".into()],
            Path::new("/c/debs"),
            &[PathBuf::from("/etc/apt/sources.list.d/debian.sources")],
        );
        assert!(a.contains(&"--mode=unshare".to_string()));
        assert!(a.contains(&"--include=systemd,dbus".to_string()));
        assert!(a.contains(&"--dpkgopt=path-exclude=/usr/share/doc/*".to_string()));
        let suite = a.iter().position(|x| x == SUITE).unwrap();
        assert_eq!(
            &a[suite..],
            ["bookworm", "-", "/etc/apt/sources.list.d/debian.sources"]
        );
    }

    #[test]
    fn scrub_removes_host_and_machine_files() {
        let mut t = Tree::new();
        t.mkdir_all("etc/ssh", &crate::tree::Meta::new(0o755))
            .unwrap();
        t.insert(
            "etc/ssh/ssh_host_rsa_key",
            Entry::file(b"k".to_vec(), 0o600),
        )
        .unwrap();
        t.insert("etc/hostname", Entry::file(b"buildhost\n".to_vec(), 0o644))
            .unwrap();
        t.insert(
            "etc/resolv.conf",
            Entry::file(b"nameserver 1.1.1.1\n".to_vec(), 0o644),
        )
        .unwrap();
        scrub(&mut t, 7).unwrap();
        assert!(t.get("etc/ssh/ssh_host_rsa_key").is_none());
        assert!(t.get("etc/resolv.conf").is_none());
        assert_eq!(t.read_text("etc/hostname"), Some(HOSTNAME));
        assert_eq!(t.read_text("etc/machine-id"), Some(""));
        assert_eq!(t.get("etc/machine-id").unwrap().meta.mtime, 7);
    }
}
