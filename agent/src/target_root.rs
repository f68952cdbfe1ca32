//! The root the agent configures (`/` at boot, a scratch dir in tests), seen as the node
//! will see it: symlinks in the middle of a path are followed inside the root (an absolute
//! link target means the root's `/`, never the host's), the last component is not.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What sits at a path, without following a final symlink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        dev: u64,
        ino: u64,
    },
    Directory,
    Symlink {
        target: String,
    },
    Other,
}

#[derive(Debug, Clone)]
pub struct TargetRoot {
    root: PathBuf,
}

const MAX_LINK_HOPS: usize = 40;

impl TargetRoot {
    pub fn new(root: impl Into<PathBuf>) -> TargetRoot {
        TargetRoot { root: root.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The host path for an absolute in-root path, ancestors' symlinks resolved inside
    /// the root, the last component left alone.
    pub fn host_path(&self, abs: &str) -> io::Result<PathBuf> {
        let (parent, name) = match abs.rsplit_once('/') {
            Some((p, n)) if !n.is_empty() => (p, n),
            _ => return Ok(self.root.clone()),
        };
        Ok(self.resolve_dir(parent)?.join(name))
    }

    /// Follow every component (including the last) inside the root.
    fn resolve_dir(&self, abs: &str) -> io::Result<PathBuf> {
        let mut pending: Vec<String> = abs
            .split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_string)
            .collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(c) = pending.pop() {
            match c.as_str() {
                "." => continue,
                ".." => {
                    cur.pop();
                    continue;
                }
                _ => {}
            }
            let host = self.root.join(cur.join("/")).join(&c);
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_LINK_HOPS {
                        return Err(io::Error::other(format!(
                            "too many levels of symbolic links under {abs}"
                        )));
                    }
                    let target = std::fs::read_link(&host)?.to_string_lossy().into_owned();
                    if target.starts_with('/') {
                        cur.clear();
                    }
                    pending.extend(
                        target
                            .split('/')
                            .filter(|c| !c.is_empty())
                            .rev()
                            .map(str::to_string),
                    );
                }
                _ => cur.push(c),
            }
        }
        Ok(self.root.join(cur.join("/")))
    }

    pub fn node(&self, abs: &str) -> io::Result<Option<NodeKind>> {
        let host = self.host_path(abs)?;
        let m = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            // A file where a directory should be: nothing can exist below it.
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => return Ok(None),
            Err(e) => return Err(e),
        };
        let ft = m.file_type();
        Ok(Some(if ft.is_symlink() {
            NodeKind::Symlink {
                target: std::fs::read_link(&host)?.to_string_lossy().into_owned(),
            }
        } else if ft.is_dir() {
            NodeKind::Directory
        } else if ft.is_file() {
            NodeKind::File {
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                dev: m.dev(),
                ino: m.ino(),
            }
        } else {
            NodeKind::Other
        }))
    }

    /// Is `abs` a directory once every symlink (the last one too) is followed in the root?
    pub fn is_dir_followed(&self, abs: &str) -> bool {
        self.resolve_dir(abs).is_ok_and(|p| p.is_dir())
    }

    /// Read a file, following symlinks inside the root; `None` when it does not exist.
    pub fn read(&self, abs: &str) -> io::Result<Option<Vec<u8>>> {
        let host = self.resolve_dir(abs)?;
        match std::fs::read(&host) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Names in a directory (sorted), empty when it does not exist.
    pub fn list(&self, abs: &str) -> io::Result<Vec<String>> {
        let host = self.resolve_dir(abs)?;
        let mut names = match std::fs::read_dir(&host) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<io::Result<Vec<_>>>()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        names.sort();
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_in_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = TargetRoot::new(dir.path());
        std::fs::create_dir_all(dir.path().join("usr/lib/x")).unwrap();
        symlink("/usr/lib", dir.path().join("lib")).unwrap();
        symlink("/etc", dir.path().join("hostetc")).unwrap();
        std::fs::write(dir.path().join("usr/lib/x/f"), b"hi").unwrap();
        assert_eq!(
            root.host_path("/lib/x/f").unwrap(),
            dir.path().join("usr/lib/x/f")
        );
        assert_eq!(root.read("/lib/x/f").unwrap().as_deref(), Some(&b"hi"[..]));
        // /hostetc points at the root's /etc, which does not exist, not the host's.
        assert_eq!(root.read("/hostetc/passwd").unwrap(), None);
        assert_eq!(
            root.node("/lib").unwrap(),
            Some(NodeKind::Symlink {
                target: "/usr/lib".into()
            })
        );
        assert!(root.is_dir_followed("/lib"));
        assert_eq!(root.node("/usr/lib/x/f/below").unwrap(), None);
    }
}
