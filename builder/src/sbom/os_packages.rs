//! The distribution packages installed in an image, read from the image's own package
//! database: dpkg's `var/lib/dpkg/status`, apk's `lib/apk/db/installed`, rpm's
//! `rpmdb.sqlite` (see [`super::rpmdb`]).

use crate::tree::{Kind, Tree};

/// One installed package, as its package manager records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OsPackage {
    pub name: String,
    /// As the package manager writes it (`2.36-9+deb12u4`, `1.36.1-r29`, `5.1.8-6.el9`).
    pub version: String,
    pub arch: String,
    /// rpm's epoch, when the header has one.
    pub epoch: Option<u32>,
}

/// Which package manager recorded a package: the purl type and its default namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Manager {
    Dpkg,
    Apk,
    Rpm,
}

impl Manager {
    pub fn purl_type(self) -> &'static str {
        match self {
            Manager::Dpkg => "deb",
            Manager::Apk => "apk",
            Manager::Rpm => "rpm",
        }
    }

    /// The purl namespace when the image has no os-release ID.
    pub fn default_namespace(self) -> &'static str {
        match self {
            Manager::Dpkg => "debian",
            Manager::Apk => "alpine",
            Manager::Rpm => "centos",
        }
    }
}

pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
pub const APK_INSTALLED: &str = "lib/apk/db/installed";

#[derive(Debug, thiserror::Error)]
pub enum PackageDbError {
    #[error("/{path}: not UTF-8 text")]
    NotText { path: String },
    #[error("/{path}: stanza {stanza}: no `{field}` field")]
    MissingField {
        path: String,
        stanza: usize,
        field: &'static str,
    },
    #[error("/{path}: {problem}")]
    Rpm { path: String, problem: String },
}

/// The text of a database file, or None when the image has none.
fn database_text<'a>(tree: &'a Tree, path: &str) -> Result<Option<&'a str>, PackageDbError> {
    match tree.get_resolved(path).map(|e| &e.kind) {
        Some(Kind::File(bytes)) => {
            std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| PackageDbError::NotText {
                    path: path.to_string(),
                })
        }
        _ => Ok(None),
    }
}

/// Stanzas separated by blank lines, each a list of (field, value) with continuation
/// lines (dpkg: leading space) left out: only single-line fields are read.
fn stanzas(text: &str, separator: char) -> Vec<Vec<(&str, &str)>> {
    text.split("\n\n")
        .map(|stanza| {
            stanza
                .lines()
                .filter(|l| !l.starts_with([' ', '\t']))
                .filter_map(|l| l.split_once(separator))
                .map(|(k, v)| (k, v.trim()))
                .collect::<Vec<_>>()
        })
        .filter(|fields| !fields.is_empty())
        .collect()
}

fn field<'a>(fields: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

/// dpkg's status file: the packages whose Status ends in `installed`.
pub fn dpkg_packages(tree: &Tree) -> Result<Vec<OsPackage>, PackageDbError> {
    let Some(text) = database_text(tree, DPKG_STATUS)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, fields) in stanzas(text, ':').iter().enumerate() {
        let need = |name: &'static str| {
            field(fields, name).ok_or(PackageDbError::MissingField {
                path: DPKG_STATUS.to_string(),
                stanza: i + 1,
                field: name,
            })
        };
        let status = need("Status")?;
        if status.split_whitespace().last() != Some("installed") {
            continue;
        }
        out.push(OsPackage {
            name: need("Package")?.to_string(),
            version: need("Version")?.to_string(),
            arch: need("Architecture")?.to_string(),
            epoch: None,
        });
    }
    out.sort();
    Ok(out)
}

/// apk's installed database: `P:` name, `V:` version, `A:` architecture per stanza.
pub fn apk_packages(tree: &Tree) -> Result<Vec<OsPackage>, PackageDbError> {
    let Some(text) = database_text(tree, APK_INSTALLED)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, fields) in stanzas(text, ':').iter().enumerate() {
        let need = |name: &'static str| {
            field(fields, name).ok_or(PackageDbError::MissingField {
                path: APK_INSTALLED.to_string(),
                stanza: i + 1,
                field: name,
            })
        };
        out.push(OsPackage {
            name: need("P")?.to_string(),
            version: need("V")?.to_string(),
            arch: need("A")?.to_string(),
            epoch: None,
        });
    }
    out.sort();
    Ok(out)
}

/// `ID=` of the image's os-release: the purl namespace (debian, ubuntu, alpine, centos).
pub fn os_release_id(tree: &Tree) -> Option<String> {
    let text = tree
        .read_text("etc/os-release")
        .or_else(|| tree.read_text("usr/lib/os-release"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tree::Entry;

    fn tree_with(path: &str, text: &str) -> Tree {
        let mut tree = Tree::new();
        put(&mut tree, path, text.as_bytes().to_vec());
        tree
    }

    /// Insert a file, making its parent directories.
    pub(crate) fn put(tree: &mut Tree, path: &str, bytes: Vec<u8>) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            tree.mkdir_all(parent, &crate::tree::Meta::new(0o755))
                .unwrap();
        }
        tree.insert(path, Entry::file(bytes, 0o644)).unwrap();
    }

    #[test]
    fn dpkg_lists_installed_packages_only_and_skips_continuation_lines() {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
Version: 2.36-9+deb12u4\nDescription: GNU C Library\n Contains: the\n Package: fake\n\n\
Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u4\n";
        let pkgs = dpkg_packages(&tree_with(DPKG_STATUS, status)).unwrap();
        let shown: Vec<_> = pkgs
            .iter()
            .map(|p| format!("{} {} {}", p.name, p.version, p.arch))
            .collect();
        assert_eq!(
            shown,
            ["libc6 2.36-9+deb12u4 amd64", "libc6 2.36-9+deb12u4 i386"]
        );
    }

    #[test]
    fn dpkg_stanza_without_version_names_file_stanza_and_field() {
        let status = "Package: a\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n\n\
Package: b\nStatus: install ok installed\nArchitecture: all\n";
        let err = dpkg_packages(&tree_with(DPKG_STATUS, status))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "/var/lib/dpkg/status: stanza 2: no `Version` field");
    }

    #[test]
    fn apk_reads_name_version_and_arch() {
        let db = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n\n\
C:Q1def=\nP:busybox\nV:1.36.1-r29\nA:x86_64\n\n";
        let pkgs = apk_packages(&tree_with(APK_INSTALLED, db)).unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(pkgs[0].name, "busybox");
        assert_eq!(pkgs[1].version, "1.2.5-r0");
    }

    #[test]
    fn no_database_means_no_packages() {
        assert!(dpkg_packages(&Tree::new()).unwrap().is_empty());
        assert!(apk_packages(&Tree::new()).unwrap().is_empty());
    }

    #[test]
    fn os_release_id_unquoted() {
        let tree = tree_with("usr/lib/os-release", "NAME=\"CentOS\"\nID=\"centos\"\n");
        assert_eq!(os_release_id(&tree).as_deref(), Some("centos"));
    }
}
