//! A directory tree reached only through descriptors: every path is resolved by the
//! kernel with the tree's root as `/` (openat2 RESOLVE_IN_ROOT), and every change is made
//! relative to a directory descriptor, never by a final path. A symlink the tree plants
//! (`x -> /`) therefore leads back into the tree, never to the host.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

pub struct InRoot {
    root: OwnedFd,
}

/// A path inside the tree, made only of normal components: no empty, `.` or `..` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InRootPath(Vec<String>);

impl InRootPath {
    /// `None` for a path that climbs (`..`) or holds a name that is not UTF-8; leading
    /// `/` and `./` are the tree's root.
    pub fn parse(path: &Path) -> Option<InRootPath> {
        let mut out = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => out.push(n.to_str()?.to_string()),
                Component::CurDir | Component::RootDir => {}
                Component::ParentDir | Component::Prefix(_) => return None,
            }
        }
        Some(InRootPath(out))
    }

    /// The parent and the last name; `None` for the root itself.
    pub fn split_last(&self) -> Option<(InRootPath, &str)> {
        let (last, parent) = self.0.split_last()?;
        Some((InRootPath(parent.to_vec()), last))
    }

    fn relative(&self) -> PathBuf {
        if self.0.is_empty() {
            PathBuf::from(".")
        } else {
            self.0.iter().collect()
        }
    }
}

/// A single name in a directory: not empty, not `.` or `..`, no `/`.
pub fn is_plain_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..") && !name.contains('/')
}

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

impl InRoot {
    pub fn open(root: &Path) -> io::Result<InRoot> {
        let root = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(InRoot { root })
    }

    /// The directory at `dir` (symlinks on the way resolved inside the tree); `None`
    /// when it does not exist.
    pub fn dir(&self, dir: &InRootPath) -> io::Result<Option<OwnedFd>> {
        match rustix::fs::openat2(
            &self.root,
            dir.relative(),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory at `dir`, creating what is missing (0755, as tar does for parents
    /// a layer does not list).
    pub fn dir_creating(&self, dir: &InRootPath) -> io::Result<OwnedFd> {
        if let Some(fd) = self.dir(dir)? {
            return Ok(fd);
        }
        let mut cur = self.dir(&InRootPath(Vec::new()))?.ok_or_else(not_found)?;
        for i in 0..dir.0.len() {
            let prefix = InRootPath(dir.0[..=i].to_vec());
            cur = match self.dir(&prefix)? {
                Some(fd) => fd,
                None => {
                    rustix::fs::mkdirat(&cur, dir.0[i].as_str(), Mode::from_raw_mode(0o755))?;
                    self.dir(&prefix)?.ok_or_else(not_found)?
                }
            };
        }
        Ok(cur)
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// What `name` in `dir` is, without following it; `None` when absent.
pub fn kind_at(dir: impl AsFd, name: &str) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Remove `name` from `dir`, a directory with everything under it, never following a
/// symlink; absent is fine.
pub fn remove_at(dir: impl AsFd, name: &str) -> io::Result<()> {
    let dir = dir.as_fd();
    match kind_at(dir, name)? {
        None => Ok(()),
        Some(FileType::Directory) => {
            let child = rustix::fs::openat(
                dir,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            empty_dir(&child)?;
            Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
        }
        Some(_) => Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?),
    }
}

/// Remove everything inside `dir`.
pub fn empty_dir(dir: impl AsFd) -> io::Result<()> {
    let dir = dir.as_fd();
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    for name in names {
        remove_at(dir, &name)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_or_name_nothing_are_refused() {
        assert_eq!(
            InRootPath::parse(Path::new("./etc/x")),
            Some(InRootPath(vec!["etc".into(), "x".into()]))
        );
        assert_eq!(InRootPath::parse(Path::new("etc/../../x")), None);
        for bad in ["", ".", "..", "a/b"] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        assert!(is_plain_name(".wh"));
    }

    #[test]
    fn an_absolute_symlink_leads_back_into_the_tree() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/", root.join("x")).unwrap();
        let r = InRoot::open(&root).unwrap();
        let etc_via_x = r
            .dir(&InRootPath::parse(Path::new("x/etc")).unwrap())
            .unwrap()
            .unwrap();
        let st = rustix::fs::fstat(&etc_via_x).unwrap();
        let etc = std::fs::metadata(root.join("etc")).unwrap();
        assert_eq!(st.st_ino, std::os::unix::fs::MetadataExt::ino(&etc));
    }
}
