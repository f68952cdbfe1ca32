//! `make_debian_base`: a base image built rootlessly from Debian packages, in one of two
//! modes ([`BaseMode`]):
//!
//! - unpack (the default base): apt-get downloads each package (verified against the
//!   archive's SHA256), every .deb is unpacked into one Tree with merged /usr and the
//!   kernel under usr/lib/modules/KVER, no maintainer script runs, a busybox skeleton is
//!   added. The same .debs and epoch give the same manifest digest.
//! - install (systemd images such as debian-node): the packages and what they depend on
//!   are installed with their maintainer scripts run ([`super::install`]).
//!
//! Either way the tree is written as a one-layer OCI layout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::deb::{unpack_deb, DebError};
use super::placement::{is_documentation_only, place};
use super::skeleton::{add_busybox_applets, add_skeleton, add_usrmerge_links};
use crate::oci::digest::HashingReader;
use crate::oci::{ImageDetails, LayoutWriter, OciError};
use crate::tree::layer::{diff_trees, encode_layer, EncodeError};
use crate::tree::{Entry, Kind, Meta, Tree, TreeError};

/// The Debian release the packages come from (this builder's apt sources: bookworm).
pub const DEBIAN_VERSION: &str = "12";

/// Metapackages are followed through at most this many Depends.
const MAX_METAPACKAGE_DEPTH: usize = 4;

/// How the packages become a root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BaseMode {
    /// Unpack each listed .deb (no dependencies, no maintainer scripts) over a busybox
    /// skeleton: fast and small.
    #[default]
    Unpack,
    /// Install the packages and their dependencies with maintainer scripts run
    /// (`mmdebstrap --mode=unshare`).
    Install,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianBaseOptions {
    /// Package names; `NAME: PATH PATH…` takes only those paths of the package (as the
    /// .deb lists them, e.g. `sbin/mke2fs`), with their parent directories.
    pub packages: Vec<String>,
    pub mode: BaseMode,
    /// The OCI layout directory to write (replaced atomically).
    pub out: PathBuf,
    pub tag: String,
    /// Downloaded .debs are kept in `cache/debs`.
    pub cache: PathBuf,
    pub source_date_epoch: i64,
}

/// One package that went into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePackage {
    pub name: String,
    pub version: String,
    /// `sha256:` of the .deb file.
    pub sha256: String,
    /// A metapackage contributes no files, only its first dependency.
    pub metapackage: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseSummary {
    pub out: PathBuf,
    pub tag: String,
    pub manifest_digest: String,
    pub packages: Vec<BasePackage>,
    /// Kernel versions found under usr/lib/modules with a vmlinuz.
    pub kernels: Vec<String>,
    pub entries: usize,
    pub file_bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("apt: package {package}: {problem}")]
    Apt { package: String, problem: String },
    #[error(transparent)]
    Deb(#[from] DebError),
    #[error("package {package}: placing {path}: {source}")]
    Place {
        package: String,
        path: String,
        #[source]
        source: TreeError,
    },
    #[error("skeleton: {0}")]
    Skeleton(String),
    #[error("encoding the base layer: {0}")]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Oci(#[from] OciError),
}

/// Build the base image described by `opts`.
pub fn make_debian_base(opts: &DebianBaseOptions) -> Result<BaseSummary, BaseError> {
    let (tree, packages) = match opts.mode {
        BaseMode::Unpack => unpacked_root(opts)?,
        BaseMode::Install => {
            super::install::install_root(&opts.packages, &opts.cache, opts.source_date_epoch)?
        }
    };
    write_base(opts, &tree, packages)
}

/// The unpack mode's root: each package's files placed, a busybox skeleton around them.
fn unpacked_root(opts: &DebianBaseOptions) -> Result<(Tree, Vec<BasePackage>), BaseError> {
    let epoch = opts.source_date_epoch;
    let debs = opts.cache.join("debs");
    std::fs::create_dir_all(&debs).map_err(|e| BaseError::Apt {
        package: "*".into(),
        problem: format!("creating {}: {e}", debs.display()),
    })?;
    let mut tree = Tree::new();
    add_usrmerge_links(&mut tree, epoch).map_err(|e| BaseError::Skeleton(e.to_string()))?;
    let mut packages = Vec::new();
    for requested in &opts.packages {
        let (requested, only) = package_subset(requested);
        let mut name = requested.to_string();
        for depth in 0.. {
            let (path, sha256) = download(&name, &debs)?;
            let mut files = Tree::new();
            let (control, _) = unpack_deb(&path, &mut files)?;
            let files_only = files
                .iter()
                .filter(|(_, e)| !matches!(e.kind, Kind::Dir))
                .map(|(p, _)| p);
            let metapackage = is_documentation_only(files_only);
            packages.push(BasePackage {
                name: control.package.clone(),
                version: control.version.clone(),
                sha256,
                metapackage,
            });
            if !metapackage {
                let files = match &only {
                    Some(paths) => subset(&files, paths, &control.package)?,
                    None => files,
                };
                merge_package(&mut tree, &files, &control.package)?;
                break;
            }
            let next = control
                .depends
                .first()
                .cloned()
                .ok_or_else(|| BaseError::Apt {
                    package: name.clone(),
                    problem: "a documentation-only package without Depends".into(),
                })?;
            if depth >= MAX_METAPACKAGE_DEPTH {
                return Err(BaseError::Apt {
                    package: requested.to_string(),
                    problem: "metapackage chain too long".into(),
                });
            }
            name = next;
        }
    }
    add_skeleton(&mut tree, DEBIAN_VERSION, epoch)
        .map_err(|e| BaseError::Skeleton(e.to_string()))?;
    add_busybox_applets(&mut tree, epoch).map_err(BaseError::Skeleton)?;
    Ok((tree, packages))
}

/// Write `tree` as a one-layer OCI layout, annotated with the packages it came from.
fn write_base(
    opts: &DebianBaseOptions,
    tree: &Tree,
    packages: Vec<BasePackage>,
) -> Result<BaseSummary, BaseError> {
    let epoch = opts.source_date_epoch;
    // Placed bootc-style (unpack) or where the kernel package put it (install).
    let kernels: Vec<String> = tree
        .children("usr/lib/modules")
        .map(|(kver, _)| kver.to_string())
        .filter(|kver| {
            tree.get(&format!("usr/lib/modules/{kver}/vmlinuz"))
                .is_some()
                || tree.get(&format!("boot/vmlinuz-{kver}")).is_some()
        })
        .collect();

    let layer = encode_layer(&diff_trees(&Tree::new(), tree), epoch)?;
    let mut writer = LayoutWriter::create(&opts.out, epoch)?;
    let names: Vec<String> = packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    writer.add_layer(&layer, &format!("harmony debian-base: {}", names.join(" ")))?;
    let mut annotations = BTreeMap::new();
    for p in &packages {
        annotations.insert(format!("io.harmony.package.{}", p.name), p.version.clone());
        annotations.insert(
            format!("io.harmony.package.{}.sha256", p.name),
            p.sha256.clone(),
        );
    }
    let details = ImageDetails {
        tag: opts.tag.clone(),
        labels: BTreeMap::from([("containers.bootc".to_string(), "1".to_string())]),
        annotations,
    };
    let manifest_digest = writer.finish(&details)?;
    Ok(BaseSummary {
        out: opts.out.clone(),
        tag: opts.tag.clone(),
        manifest_digest,
        packages,
        kernels,
        entries: tree.len(),
        file_bytes: tree.file_bytes(),
    })
}

/// Copy a package's entries into the image at their placed paths.
/// `NAME: PATH…` → (NAME, the paths); a plain `NAME` → (NAME, None).
fn package_subset(line: &str) -> (&str, Option<Vec<&str>>) {
    match line.split_once(':') {
        Some((name, paths)) => (
            name.trim(),
            Some(
                paths
                    .split_whitespace()
                    .map(|p| p.trim_matches('/'))
                    .collect(),
            ),
        ),
        None => (line.trim(), None),
    }
}

/// The entries of `files` named in `paths`, and the directories above them. A path the
/// package does not have is an error: the list is out of date.
fn subset(files: &Tree, paths: &[&str], package: &str) -> Result<Tree, BaseError> {
    let mut out = Tree::new();
    for path in paths {
        let entry = files.get(path).ok_or_else(|| BaseError::Apt {
            package: package.to_string(),
            problem: format!("has no {path} (the package list names it)"),
        })?;
        for (at, _) in path.match_indices('/') {
            if let Some(dir) = files.get(&path[..at]) {
                out.insert_exact(&path[..at], dir.clone());
            }
        }
        out.insert_exact(path, entry.clone());
    }
    Ok(out)
}

fn merge_package(tree: &mut Tree, files: &Tree, package: &str) -> Result<(), BaseError> {
    let err = |path: &str| {
        let path = path.to_string();
        move |source| BaseError::Place {
            package: package.to_string(),
            path,
            source,
        }
    };
    for (path, entry) in files.iter() {
        let Some(dest) = place(path) else { continue };
        if dest.is_empty() {
            continue;
        }
        if let Kind::Dir = entry.kind {
            if matches!(tree.get(&dest).map(|e| &e.kind), Some(Kind::Dir)) {
                continue;
            }
        }
        if let Some(parent) = dest.rfind('/').map(|i| &dest[..i]) {
            tree.mkdir_all(parent, &Meta::new(0o755))
                .map_err(err(path))?;
        }
        tree.insert(
            &dest,
            Entry {
                kind: entry.kind.clone(),
                meta: entry.meta.clone(),
            },
        )
        .map_err(err(path))?;
    }
    Ok(())
}

/// Download `name` into `dir` unless the file apt would fetch is already there with the
/// archive's SHA256; returns the file and its `sha256:` digest.
fn download(name: &str, dir: &Path) -> Result<(PathBuf, String), BaseError> {
    let apt = |problem: String| BaseError::Apt {
        package: name.to_string(),
        problem,
    };
    // apt prints nothing for a file already in its working directory: ask from an empty one.
    let empty = tempfile::tempdir().map_err(|e| apt(format!("temp dir: {e}")))?;
    let output = Command::new("apt-get")
        .args(["download", "--print-uris", name])
        .current_dir(empty.path())
        .output()
        .map_err(|e| apt(format!("running apt-get: {e}")))?;
    if !output.status.success() {
        return Err(apt(format!(
            "apt-get download --print-uris: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    // `'URL' FILENAME SIZE SHA256:HEX`
    let line = stdout
        .lines()
        .find(|l| l.starts_with('\''))
        .ok_or_else(|| apt(format!("no URI printed: {stdout:?}")))?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (file, expected) = match fields.as_slice() {
        [_, file, _, sum] if sum.starts_with("SHA256:") => {
            (*file, format!("sha256:{}", sum[7..].to_lowercase()))
        }
        _ => return Err(apt(format!("unexpected --print-uris line {line:?}"))),
    };
    if file.contains('/') {
        return Err(apt(format!("file name {file:?} contains a slash")));
    }
    let path = dir.join(file);
    if path.is_file() && sha256_file(&path).map_err(&apt)? == expected {
        return Ok((path, expected));
    }
    let status = Command::new("apt-get")
        .args(sandbox_args())
        .args(["download", "-q", name])
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| apt(format!("running apt-get download: {e}")))?;
    if !status.success() {
        return Err(apt(format!("apt-get download exited with {status}")));
    }
    let actual = sha256_file(&path).map_err(&apt)?;
    if actual != expected {
        return Err(apt(format!(
            "{} has {actual}, the archive says {expected}",
            path.display()
        )));
    }
    Ok((path, actual))
}

/// As root, apt drops to its `_apt` user for downloads, which cannot write into a cache
/// under /root and warns; the files are written the same either way, so say so up front.
fn sandbox_args() -> &'static [&'static str] {
    if nix::unistd::geteuid().is_root() {
        &["-o", "APT::Sandbox::User=root"]
    } else {
        &[]
    }
}

fn sha256_file(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = HashingReader::new(file);
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(reader.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{open_image, ImageRef};
    use crate::tree::unpack::apply_layer;

    fn build(out: &Path, cache: &Path, packages: &[&str]) -> BaseSummary {
        make_debian_base(&DebianBaseOptions {
            packages: packages.iter().map(|p| p.to_string()).collect(),
            mode: BaseMode::Unpack,
            out: out.to_path_buf(),
            tag: "base".into(),
            cache: cache.to_path_buf(),
            source_date_epoch: 1_700_000_000,
        })
        .unwrap()
    }

    fn read_back(out: &Path, cache: &Path) -> Tree {
        let r: ImageRef = format!("oci-layout:{}:base", out.display())
            .parse()
            .unwrap();
        let img = open_image(&r, cache).unwrap();
        assert_eq!(img.layers.len(), 1);
        let labels = img
            .config
            .config()
            .as_ref()
            .and_then(|c| c.labels().clone())
            .unwrap();
        assert_eq!(
            labels.get("containers.bootc").map(String::as_str),
            Some("1")
        );
        let mut tree = Tree::new();
        apply_layer(&mut tree, img.layers[0].open_tar().unwrap()).unwrap();
        tree
    }

    /// A .deb the machine already downloaded (the user's Harmony cache) is copied in, so
    /// the test needs the mirror only on a machine that never fetched it; it is still
    /// checked against the archive's SHA256 before use.
    fn seed_debs_from_the_user_cache(cache: &Path, prefix: &str) {
        let user = std::env::var_os("HARMONY_CACHE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(crate::cache::default_dir)
            .join("debs");
        let debs = cache.join("debs");
        std::fs::create_dir_all(&debs).unwrap();
        for entry in std::fs::read_dir(&user).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with(prefix) {
                std::fs::copy(entry.path(), debs.join(entry.file_name())).unwrap();
            }
        }
    }

    /// Uses the real apt-get (and the Debian mirror unless the .deb is cached; ~1 MB).
    #[test]
    fn a_package_line_may_take_only_some_paths() {
        assert_eq!(package_subset("busybox-static"), ("busybox-static", None));
        assert_eq!(
            package_subset("e2fsprogs: sbin/mke2fs /sbin/e2fsck"),
            ("e2fsprogs", Some(vec!["sbin/mke2fs", "sbin/e2fsck"]))
        );
        let mut files = Tree::new();
        let file = |bytes: &[u8]| Entry {
            kind: Kind::File(bytes.to_vec().into()),
            meta: Meta::new(0o755),
        };
        files.mkdir_all("sbin", &Meta::new(0o755)).unwrap();
        files.insert("sbin/mke2fs", file(b"mk")).unwrap();
        files.insert("sbin/debugfs", file(b"dbg")).unwrap();
        let picked = subset(&files, &["sbin/mke2fs"], "e2fsprogs").unwrap();
        let paths: Vec<&str> = picked.iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["", "sbin", "sbin/mke2fs"]);
        let e = subset(&files, &["sbin/e2fsck"], "e2fsprogs").unwrap_err();
        assert_eq!(
            e.to_string(),
            "apt: package e2fsprogs: has no sbin/e2fsck (the package list names it)"
        );
    }

    #[test]
    fn busybox_base_is_reproducible_and_bootable_shaped() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        seed_debs_from_the_user_cache(&cache, "busybox-static_");
        let first = build(&dir.path().join("a"), &cache, &["busybox-static"]);
        let second = build(&dir.path().join("b"), &cache, &["busybox-static"]);
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(first.packages.len(), 1);
        assert!(first.packages[0].sha256.starts_with("sha256:"));
        assert_eq!(
            std::fs::read_dir(cache.join("debs")).unwrap().count(),
            1,
            "the second build reused the .deb"
        );

        let tree = read_back(&dir.path().join("a"), &cache);
        assert!(matches!(
            tree.get("usr/bin/busybox").map(|e| &e.kind),
            Some(Kind::File(_))
        ));
        assert_eq!(
            tree.get("bin").unwrap().kind,
            Kind::Symlink("usr/bin".into())
        );
        assert_eq!(tree.resolve_all("bin/sh").unwrap(), "usr/bin/busybox");
        assert_eq!(tree.resolve_all("sbin/init").unwrap(), "usr/bin/busybox");
        assert!(tree.get("usr/share/doc").is_none());
        assert_eq!(tree.get("tmp").unwrap().meta.mode, 0o1777);
        assert!(tree.get("etc/inittab").is_some() && tree.get("etc/init.d/rcS").is_some());
    }

    /// The default package list follows linux-image-cloud-amd64 to the versioned kernel
    /// package and relocates the kernel (checked on the default base the vm-tests share).
    #[test]
    fn default_packages_with_the_kernel() {
        let tree = crate::build::default_base::tests::default_base_tree();
        let kernels: Vec<&str> = tree
            .iter()
            .filter_map(|(p, _)| p.strip_prefix("usr/lib/modules/")?.strip_suffix("/vmlinuz"))
            .collect();
        assert_eq!(kernels.len(), 1, "{kernels:?}");
        let kver = kernels[0];
        assert!(kver.ends_with("-cloud-amd64"), "{kver}");
        assert!(tree
            .get(&format!("usr/lib/modules/{kver}/config"))
            .is_some());
        assert!(tree.get("boot").is_none_or(|e| e.kind == Kind::Dir));
        assert!(!tree.iter().any(|(p, _)| p.starts_with("boot/")));
        assert!(tree
            .get(&format!("usr/lib/modules/{kver}/kernel"))
            .is_some());
    }
}
