//! Run a plan against the target root. Each action leaves either the old node or the new
//! one (temp file + rename), and an action whose result is already there changes
//! nothing, so applying the same plan twice is a no-op the second time.
//!
//! Durability: each file's contents go to a temp file that is fsynced, then the batch's
//! renames happen, and every filesystem the batch wrote to is synced (`syncfs`) before and
//! after them. Every filesystem, not the root's: on a disk boot `/` is the read-only
//! image and /etc and /var are other filesystems (an overlay, the /var partition), so
//! syncing `/` alone flushed nothing that was written. A batch is flushed before any link
//! or removal, so a link never points at a file that is still a temp file.

use std::fs;
use std::io;
use std::os::unix::fs::{lchown, DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::plan::{Action, ExistingKind, Plan};
use crate::target_root::TargetRoot;

#[derive(Debug, thiserror::Error)]
#[error("{action}: {err}")]
pub struct ApplyError {
    pub action: String,
    #[source]
    pub err: io::Error,
}

/// Per action, whether it changed the root.
pub fn apply(plan: &Plan, root: &TargetRoot) -> Result<Vec<bool>, ApplyError> {
    let mut batch = RenameBatch::default();
    let result = apply_in_batches(plan, root, &mut batch);
    // On failure, temp files of the unfinished batch must not stay in the root.
    for (tmp, _, _) in batch.pending.drain(..) {
        let _cleanup = fs::remove_file(tmp);
    }
    result
}

fn apply_in_batches(
    plan: &Plan,
    root: &TargetRoot,
    batch: &mut RenameBatch,
) -> Result<Vec<bool>, ApplyError> {
    let mut changed = Vec::with_capacity(plan.actions.len());
    for a in &plan.actions {
        if !matches!(a, Action::WriteFile { .. } | Action::CreateDir { .. }) {
            batch.flush()?;
        }
        changed.push(run(a, root, batch).map_err(|err| ApplyError {
            action: a.to_string(),
            err,
        })?);
    }
    batch.flush()?;
    Ok(changed)
}

/// Files written to temp names, waiting for one sync and their renames.
#[derive(Default)]
struct RenameBatch {
    /// (temp path, final path, the action, for errors)
    pending: Vec<(PathBuf, PathBuf, String)>,
}

impl RenameBatch {
    fn flush(&mut self) -> Result<(), ApplyError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let filesystems = filesystems_of(self.pending.iter().map(|(_, host, _)| host.as_path()))
            .map_err(|err| ApplyError {
                action: "finding the filesystems written".to_string(),
                err,
            })?;
        let sync = |what: &str| {
            filesystems.iter().try_for_each(|dir| {
                sync_filesystem(dir).map_err(|err| ApplyError {
                    action: format!("sync {} ({what})", dir.display()),
                    err,
                })
            })
        };
        sync("file contents")?;
        while let Some((tmp, host, action)) = self.pending.first().cloned() {
            fs::rename(&tmp, &host).map_err(|err| ApplyError { action, err })?;
            self.pending.remove(0);
        }
        sync("renames")
    }
}

/// One directory on each distinct filesystem holding these paths (by their parents).
fn filesystems_of<'a>(paths: impl Iterator<Item = &'a Path>) -> io::Result<Vec<PathBuf>> {
    let mut seen = std::collections::BTreeMap::new();
    for p in paths {
        let dir = p.parent().unwrap_or(Path::new("/"));
        let dev = fs::metadata(dir)?.dev();
        seen.entry(dev).or_insert_with(|| dir.to_path_buf());
    }
    Ok(seen.into_values().collect())
}

fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let d = fs::File::open(dir)?;
    nix::unistd::syncfs(std::os::fd::AsRawFd::as_raw_fd(&d)).map_err(io::Error::from)
}

fn run(action: &Action, root: &TargetRoot, batch: &mut RenameBatch) -> io::Result<bool> {
    let host = root.host_path(action.path())?;
    match action {
        Action::CreateDir { mode, uid, gid, .. } => {
            let mut changed = false;
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(io::Error::other("exists and is not a directory")),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::DirBuilder::new().mode(0o700).create(&host)?;
                    changed = true;
                }
                Err(e) => return Err(e),
            }
            Ok(set_attrs(&host, *mode, *uid, *gid)? || changed)
        }
        Action::WriteFile {
            contents,
            mode,
            uid,
            gid,
            ..
        } => {
            if let Ok(m) = fs::symlink_metadata(&host) {
                if m.is_file()
                    && m.len() == contents.len()
                    && sha256_of(&host)? == contents.sha256()
                {
                    return set_attrs(&host, *mode, *uid, *gid);
                }
            }
            let tmp = temp_sibling(&host);
            let result = (|| {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode_0600()
                    .open(&tmp)?;
                // Streamed: gzip contents are inflated as they are written.
                io::copy(&mut contents.reader(), &mut f)?;
                set_attrs(&tmp, *mode, *uid, *gid)?;
                f.sync_all()
            })();
            if result.is_err() {
                let _cleanup = fs::remove_file(&tmp);
            }
            result?;
            batch.pending.push((tmp, host, action.to_string()));
            Ok(true)
        }
        Action::Symlink {
            target, uid, gid, ..
        } => {
            if fs::read_link(&host).is_ok_and(|t| t == Path::new(target)) {
                return set_owner(&host, *uid, *gid);
            }
            let tmp = temp_sibling(&host);
            std::os::unix::fs::symlink(target, &tmp)?;
            lchown(&tmp, Some(*uid), Some(*gid))?;
            fs::rename(&tmp, &host)?;
            sync_parent(&host)?;
            Ok(true)
        }
        Action::HardLink { target, .. } => {
            let target_host = root.host_path(target)?;
            let t = fs::metadata(&target_host)?;
            if let Ok(m) = fs::symlink_metadata(&host) {
                if m.dev() == t.dev() && m.ino() == t.ino() {
                    return Ok(false);
                }
            }
            let tmp = temp_sibling(&host);
            fs::hard_link(&target_host, &tmp)?;
            fs::rename(&tmp, &host)?;
            sync_parent(&host)?;
            Ok(true)
        }
        Action::Remove { existing, .. } => {
            let Ok(m) = fs::symlink_metadata(&host) else {
                return Ok(false);
            };
            let ft = m.file_type();
            let kind = if ft.is_symlink() {
                ExistingKind::Symlink
            } else if ft.is_dir() {
                ExistingKind::Directory
            } else if ft.is_file() {
                ExistingKind::File
            } else {
                ExistingKind::Other
            };
            if kind != *existing {
                return Ok(false);
            }
            if kind == ExistingKind::Directory {
                fs::remove_dir_all(&host)?;
            } else {
                fs::remove_file(&host)?;
            }
            sync_parent(&host)?;
            Ok(true)
        }
    }
}

/// A file's sha256, read in pieces (it may be large).
fn sha256_of(path: &Path) -> io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    io::copy(&mut fs::File::open(path)?, &mut h)?;
    Ok(h.finalize().into())
}

/// `.NAME.harmony-tmp` beside the target, so the rename stays in one filesystem.
fn temp_sibling(host: &Path) -> PathBuf {
    let name = host
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = host.with_file_name(format!(".{name}.harmony-tmp"));
    // A leftover from a run that died mid-write is ours to replace.
    let _stale = fs::remove_file(&tmp);
    tmp
}

/// Owner first: chown clears setuid/setgid bits, so the mode must come after it.
fn set_attrs(path: &Path, mode: u32, uid: u32, gid: u32) -> io::Result<bool> {
    let changed = set_owner(path, uid, gid)?;
    let m = fs::symlink_metadata(path)?;
    if m.mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        return Ok(true);
    }
    Ok(changed)
}

fn set_owner(path: &Path, uid: u32, gid: u32) -> io::Result<bool> {
    let m = fs::symlink_metadata(path)?;
    if m.uid() != uid || m.gid() != gid {
        lchown(path, Some(uid), Some(gid))?;
        return Ok(true);
    }
    Ok(false)
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

trait CreateMode {
    fn mode_0600(&mut self) -> &mut Self;
}

impl CreateMode for fs::OpenOptions {
    /// Private until chmod: the final mode may be tighter than the umask would give.
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

#[cfg(test)]
mod tests;
