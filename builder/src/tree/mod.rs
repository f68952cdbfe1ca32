//! The image's root filesystem as data: every entry with its metadata, no disk, no root.
//!
//! Layers are applied onto a `Tree`, steps edit it, emitters (squashfs, cpio, tar) read it.
//! Ownership, modes and device numbers are plain values here, which is what lets the
//! builder run unprivileged and produce the same bytes every time.

pub mod diff;
pub mod layer;
pub mod unpack;

use std::collections::BTreeMap;
use std::sync::Arc;

/// File contents, shared so that hard links and unchanged files cost nothing to copy.
pub type Contents = Arc<Vec<u8>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including setuid/setgid/sticky (`0o7777`), never the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch; emitters clamp it to SOURCE_DATE_EPOCH.
    pub mtime: i64,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Meta {
    pub fn new(mode: u32) -> Self {
        Meta {
            mode: mode & 0o7777,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File(Contents),
    Dir,
    /// Target exactly as stored (relative or absolute).
    Symlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub meta: Meta,
}

impl Entry {
    /// A regular file owned by root.
    pub fn file(bytes: impl Into<Vec<u8>>, mode: u32) -> Self {
        Entry {
            kind: Kind::File(Arc::new(bytes.into())),
            meta: Meta::new(mode),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    #[error("{path}: parent {parent} is not a directory")]
    ParentNotDir { path: String, parent: String },
    #[error("{path}: path escapes the root or is empty")]
    BadPath { path: String },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path}: no such entry")]
    NotFound { path: String },
}

/// A root filesystem. Keys are normalised relative paths (`usr/bin/sh`); the root
/// directory itself is the empty key and always exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

/// Normalise `/a//b/./c` to `a/b/c`; `..` is resolved lexically and may not leave the root.
pub fn normalize(path: &str) -> Result<String, TreeError> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(TreeError::BadPath {
                        path: path.to_string(),
                    });
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn parent_of(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

fn name_of(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

impl Tree {
    pub fn new() -> Self {
        let mut entries = BTreeMap::new();
        entries.insert(
            String::new(),
            Entry {
                kind: Kind::Dir,
                meta: Meta::new(0o755),
            },
        );
        Tree { entries }
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&normalize(path).ok()?)
    }

    /// The entry stored under an already-normalised key, with no path cleaning.
    pub fn get_exact(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The entry `path` names after following symlinks in every component.
    pub fn get_resolved(&self, path: &str) -> Option<&Entry> {
        self.entries.get(&self.resolve_all(path).ok()?)
    }

    /// A regular file's contents as text, following symlinks; None if absent, not a
    /// file, or not UTF-8.
    pub fn read_text(&self, path: &str) -> Option<&str> {
        match &self.get_resolved(path)?.kind {
            Kind::File(c) => std::str::from_utf8(c).ok(),
            _ => None,
        }
    }

    /// Insert under an already-resolved key (as `iter` yields them), following no links:
    /// for copying entries between trees. The caller makes the parents.
    pub fn insert_exact(&mut self, key: &str, entry: Entry) {
        self.entries.insert(key.to_string(), entry);
    }

    pub fn get_mut(&mut self, path: &str) -> Option<&mut Entry> {
        self.entries.get_mut(&normalize(path).ok()?)
    }

    /// Every entry in path order; a directory always comes before what it contains.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(p, e)| (p.as_str(), e))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.len() <= 1
    }

    /// Direct children of a directory, by name.
    pub fn children<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        let dir = normalize(dir).unwrap_or_default();
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.entries
            .range(prefix.clone()..)
            .skip_while(move |(p, _)| p.is_empty())
            .take_while(move |(p, _)| p.starts_with(&prefix))
            .filter(move |(p, _)| !p[prefix_len(&dir)..].contains('/'))
            .map(|(p, e)| (name_of(p), e))
    }

    /// Resolve symlinks in the *parent* components of `path`, staying inside the root
    /// (an absolute link target is taken relative to this tree, as container runtimes do).
    /// The last component is not followed.
    pub fn resolve_parent(&self, path: &str) -> Result<String, TreeError> {
        let norm = normalize(path)?;
        if norm.is_empty() {
            return Ok(norm);
        }
        let parent = self.resolve(parent_of(&norm), 0)?;
        Ok(join(&parent, name_of(&norm)))
    }

    /// Resolve every component of `path`, following symlinks inside the root.
    pub fn resolve_all(&self, path: &str) -> Result<String, TreeError> {
        self.resolve(&normalize(path)?, 0)
    }

    fn resolve(&self, path: &str, depth: usize) -> Result<String, TreeError> {
        if depth > 40 {
            return Err(TreeError::SymlinkLoop {
                path: path.to_string(),
            });
        }
        let mut resolved = String::new();
        let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        for (i, comp) in components.iter().enumerate() {
            let candidate = join(&resolved, comp);
            match self.entries.get(&candidate).map(|e| &e.kind) {
                Some(Kind::Symlink(target)) => {
                    let base = if target.starts_with('/') {
                        String::new()
                    } else {
                        resolved.clone()
                    };
                    let rest = components[i + 1..].join("/");
                    let next = normalize(&format!("{base}/{target}/{rest}"))?;
                    return self.resolve(&next, depth + 1);
                }
                _ => resolved = candidate,
            }
        }
        Ok(resolved)
    }

    /// Insert or replace an entry. The parent must exist and be a directory (after
    /// following symlinks in the parent path). Replacing a directory with a
    /// non-directory removes what it contained; replacing a directory with a
    /// directory keeps the children (tar semantics).
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<String, TreeError> {
        let key = self.resolve_parent(path)?;
        if key.is_empty() {
            if let Kind::Dir = entry.kind {
                self.entries.insert(key.clone(), entry);
                return Ok(key);
            }
            return Err(TreeError::BadPath {
                path: path.to_string(),
            });
        }
        let parent = parent_of(&key).to_string();
        match self.entries.get(&parent).map(|e| &e.kind) {
            Some(Kind::Dir) => {}
            _ => {
                return Err(TreeError::ParentNotDir {
                    path: path.to_string(),
                    parent: format!("/{parent}"),
                })
            }
        }
        let was_dir = matches!(self.entries.get(&key).map(|e| &e.kind), Some(Kind::Dir));
        if was_dir && !matches!(entry.kind, Kind::Dir) {
            self.remove_children(&key);
        }
        self.entries.insert(key.clone(), entry);
        Ok(key)
    }

    /// Create `path` and any missing parents as directories with `meta`; existing
    /// directories are left as they are.
    pub fn mkdir_all(&mut self, path: &str, meta: &Meta) -> Result<String, TreeError> {
        let norm = normalize(path)?;
        let mut current = String::new();
        for comp in norm.split('/').filter(|c| !c.is_empty()) {
            let candidate = self.resolve_all(&join(&current, comp))?;
            match self.entries.get(&candidate).map(|e| &e.kind) {
                Some(Kind::Dir) => {}
                Some(_) => {
                    return Err(TreeError::ParentNotDir {
                        path: path.to_string(),
                        parent: format!("/{candidate}"),
                    })
                }
                None => {
                    self.entries.insert(
                        candidate.clone(),
                        Entry {
                            kind: Kind::Dir,
                            meta: meta.clone(),
                        },
                    );
                }
            }
            current = candidate;
        }
        Ok(current)
    }

    /// Remove an entry and, for a directory, everything below it. Returns whether it existed.
    pub fn remove(&mut self, path: &str) -> Result<bool, TreeError> {
        let key = self.resolve_parent(path)?;
        if key.is_empty() {
            return Err(TreeError::BadPath {
                path: path.to_string(),
            });
        }
        self.remove_children(&key);
        Ok(self.entries.remove(&key).is_some())
    }

    /// Remove everything below a directory but keep the directory (an opaque whiteout).
    pub fn remove_children(&mut self, dir: &str) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| !p.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        for p in doomed {
            self.entries.remove(&p);
        }
    }

    /// Sum of regular file sizes (hard links counted once per path).
    pub fn file_bytes(&self) -> u64 {
        self.entries
            .values()
            .map(|e| match &e.kind {
                Kind::File(c) => c.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

fn prefix_len(dir: &str) -> usize {
    if dir.is_empty() {
        0
    } else {
        dir.len() + 1
    }
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else {
        format!("{base}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &[u8]) -> Entry {
        Entry::file(data, 0o644)
    }

    #[test]
    fn insert_follows_symlinked_parents_inside_the_root() {
        let mut t = Tree::new();
        t.mkdir_all("usr/lib", &Meta::new(0o755)).unwrap();
        t.insert(
            "lib",
            Entry {
                kind: Kind::Symlink("/usr/lib".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        let key = t.insert("/lib/modules.txt", file(b"x")).unwrap();
        assert_eq!(key, "usr/lib/modules.txt");
        assert!(t.get("usr/lib/modules.txt").is_some());
    }

    #[test]
    fn absolute_link_targets_cannot_escape() {
        let mut t = Tree::new();
        t.insert(
            "up",
            Entry {
                kind: Kind::Symlink("../../..".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        assert!(t.insert("up/x", file(b"x")).is_err());
    }

    #[test]
    fn replacing_a_directory_with_a_file_drops_its_children() {
        let mut t = Tree::new();
        t.mkdir_all("a/b", &Meta::new(0o755)).unwrap();
        t.insert("a/b/c", file(b"c")).unwrap();
        t.insert("a-b", file(b"sibling")).unwrap();
        t.insert("a", file(b"now a file")).unwrap();
        assert!(t.get("a/b/c").is_none());
        assert!(t.get("a-b").is_some());
        assert_eq!(t.children("").count(), 2);
    }

    #[test]
    fn missing_parent_is_an_error() {
        let mut t = Tree::new();
        assert!(matches!(
            t.insert("no/such", file(b"")),
            Err(TreeError::ParentNotDir { .. })
        ));
    }

    #[test]
    fn children_lists_only_direct_entries() {
        let mut t = Tree::new();
        t.mkdir_all("etc/ssh", &Meta::new(0o755)).unwrap();
        t.insert("etc/hosts", file(b"")).unwrap();
        t.insert("etc/ssh/sshd_config", file(b"")).unwrap();
        let names: Vec<&str> = t.children("etc").map(|(n, _)| n).collect();
        assert_eq!(names, vec!["hosts", "ssh"]);
    }
}
