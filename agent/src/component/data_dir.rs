//! A component's persistent state: `/var/lib/harmony/components/NAME` on the node's
//! writable /var, mounted writable at the entry's `data_mount`, owned by the uid the
//! process runs as and closed to everyone else (0700). It is never emptied: what the
//! process wrote is there at the next start and after a reboot.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

pub const DATA_DIR: &str = "var/lib/harmony/components";

/// The data directory of `name`, created if missing, handed to `uid:gid` (the entry's
/// user can change with the image).
pub fn ensure(root: &Path, name: &str, uid: u32, gid: u32) -> anyhow::Result<PathBuf> {
    let parent = root.join(DATA_DIR);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let dir = parent.join(name);
    match std::fs::create_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        other => other.with_context(|| format!("creating {}", dir.display()))?,
    }
    // lchown: a symlink left at the name is changed itself, never what it points to;
    // the mount then refuses it as not a directory.
    std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
        .with_context(|| format!("chown {uid}:{gid} {}", dir.display()))?;
    if !std::fs::symlink_metadata(&dir)?.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    Ok(dir)
}
