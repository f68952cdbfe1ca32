//! A root read back as data, and the normalisation that lets two appliers' trees be
//! compared by meaning: Ignition's own bookkeeping dropped, shadow dates blanked, and unit
//! enablement (Ignition: a preset file; Harmony: `.wants`/`.requires` links, as
//! `systemctl enable` makes them) reduced to the set of enabled unit names.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Contents, and the path walked first that shares this inode (hard links are named
    /// by path, not inode number, so two trees compare).
    File(Vec<u8>, Option<String>),
    Directory,
    Symlink(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            Kind::File(c, link) => {
                let text = String::from_utf8_lossy(c);
                let shown: String = text.chars().take(120).collect();
                match link {
                    Some(l) => format!("file (hard link of {l}) {shown:?}"),
                    None => format!("file {shown:?}"),
                }
            }
            Kind::Directory => "directory".to_string(),
            Kind::Symlink(t) => format!("symlink -> {t}"),
            Kind::Other => "special file".to_string(),
        };
        write!(f, "{what} mode {:04o} {}:{}", self.mode, self.uid, self.gid)
    }
}

/// A root, normalised: nodes by absolute path, and the units enabled in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub nodes: BTreeMap<String, Node>,
    pub enabled_units: BTreeSet<String>,
}

/// Every node under `root`, by absolute in-root path; `/` itself is left out.
pub fn read(root: &Path) -> BTreeMap<String, Node> {
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), String> = BTreeMap::new();
    walk(root, "", &mut nodes, &mut inodes);
    nodes
}

fn walk(
    root: &Path,
    rel: &str,
    nodes: &mut BTreeMap<String, Node>,
    inodes: &mut BTreeMap<(u64, u64), String>,
) {
    let dir = root.join(rel.trim_start_matches('/'));
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    for name in names {
        let path = format!("{rel}/{name}");
        let host = root.join(path.trim_start_matches('/'));
        let m = fs::symlink_metadata(&host).unwrap_or_else(|e| panic!("{}: {e}", host.display()));
        let ft = m.file_type();
        let kind = if ft.is_symlink() {
            let t = fs::read_link(&host).expect("reading a symlink");
            Kind::Symlink(t.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            Kind::Directory
        } else if ft.is_file() {
            let contents = fs::read(&host).expect("reading a file");
            let first = if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                match inodes.get(&key) {
                    Some(p) => Some(p.clone()),
                    None => {
                        inodes.insert(key, path.clone());
                        None
                    }
                }
            } else {
                None
            };
            Kind::File(contents, first)
        } else {
            Kind::Other
        };
        let is_dir = kind == Kind::Directory;
        nodes.insert(
            path.clone(),
            Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
            },
        );
        if is_dir {
            walk(root, &path, nodes, inodes);
        }
    }
}

/// The agent's state directory (firstboot.json, the append record); not in the fixture.
const HARMONY_STATE: &str = "/var/lib/harmony";
const PRESET: &str = "/etc/systemd/system-preset/20-ignition.preset";
const UNITS: &str = "/etc/systemd/system";

/// Normalise a root one of the appliers wrote (`fixture` is the root before it ran).
pub fn normalise(mut nodes: BTreeMap<String, Node>, fixture: &BTreeMap<String, Node>) -> Tree {
    // Each applier's own bookkeeping (Ignition's result file; Harmony's state directory,
    // e.g. the record that keeps `append` idempotent), and the backups and lock useradd
    // leaves.
    nodes.retain(|p, _| {
        let in_etc = p.strip_prefix("/etc/").filter(|n| !n.contains('/'));
        !(p == "/etc/.ignition-result.json"
            || p == HARMONY_STATE
            || p.starts_with(&format!("{HARMONY_STATE}/"))
            || p == "/etc/.pwd.lock"
            || in_etc.is_some_and(|n| n.ends_with('-')))
    });
    // The day an account was last changed is the day the test ran.
    for file in ["/etc/shadow"] {
        if let Some(Node {
            kind: Kind::File(c, _),
            ..
        }) = nodes.get_mut(file)
        {
            *c = blank_field(c, 2);
        }
    }
    // Enablement: links in .wants/.requires (made by Harmony, or already in the image)...
    let mut enabled = BTreeSet::new();
    let link_dirs: Vec<String> = nodes
        .keys()
        .filter(|p| {
            p.strip_prefix(UNITS)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(|n| {
                    !n.contains('/') && (n.ends_with(".wants") || n.ends_with(".requires"))
                })
        })
        .cloned()
        .collect();
    for d in &link_dirs {
        let prefix = format!("{d}/");
        let inside: Vec<String> = nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .map(|(p, _)| p.clone())
            .collect();
        for p in inside {
            enabled.insert(p[prefix.len()..].to_string());
            nodes.remove(&p);
        }
        nodes.remove(d);
    }
    // ...then Ignition's preset lines, as systemd applies them at first boot.
    if let Some(Node {
        kind: Kind::File(c, _),
        ..
    }) = nodes.remove(PRESET)
    {
        for line in String::from_utf8_lossy(&c).lines() {
            match line.split_once(' ') {
                Some(("enable", unit)) => {
                    enabled.insert(unit.to_string());
                }
                Some(("disable", unit)) => {
                    enabled.remove(unit);
                }
                _ => panic!("{PRESET}: unexpected line {line:?}"),
            }
        }
        let dir = "/etc/systemd/system-preset";
        if !fixture.contains_key(dir) && !nodes.keys().any(|p| p.starts_with(&format!("{dir}/"))) {
            nodes.remove(dir);
        }
    }
    Tree {
        nodes,
        enabled_units: enabled,
    }
}

/// `a:b:c` lines with field `n` emptied.
fn blank_field(text: &[u8], n: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut out = String::new();
    for line in text.lines() {
        let mut fields: Vec<&str> = line.split(':').collect();
        if fields.len() > n {
            fields[n] = "";
        }
        out.push_str(&fields.join(":"));
        out.push('\n');
    }
    out.into_bytes()
}

/// Every way `a` (Ignition's) and `b` (Harmony's) differ, one line each; empty if equal.
pub fn differences(a: &Tree, b: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    let paths: BTreeSet<&String> = a.nodes.keys().chain(b.nodes.keys()).collect();
    for p in paths {
        match (a.nodes.get(p), b.nodes.get(p)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!("{p}: ignition {x}; harmony {y}")),
            (Some(x), None) => out.push(format!("{p}: only ignition: {x}")),
            (None, Some(y)) => out.push(format!("{p}: only harmony: {y}")),
            (None, None) => unreachable!("the path came from one of the trees"),
        }
    }
    if a.enabled_units != b.enabled_units {
        out.push(format!(
            "enabled units: ignition {:?}; harmony {:?}",
            a.enabled_units, b.enabled_units
        ));
    }
    out
}
