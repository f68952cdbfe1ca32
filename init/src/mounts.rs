//! The mounts harmony-init makes, each failure naming source, target and type.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {fstype} {source_name} at {}: {errno}", target.display())]
    Mount {
        fstype: String,
        source_name: String,
        target: PathBuf,
        errno: Errno,
    },
    #[error("move mount {} to {}: {errno}", from.display(), to.display())]
    Move {
        from: PathBuf,
        to: PathBuf,
        errno: Errno,
    },
    #[error("create directory {}: {error}", path.display())]
    CreateDir { path: PathBuf, error: io::Error },
}

/// `mkdir -p`, with the path in the error.
pub fn create_dir(path: &Path) -> Result<(), MountError> {
    fs::create_dir_all(path).map_err(|error| MountError::CreateDir {
        path: path.to_path_buf(),
        error,
    })
}

/// Mounts `source` (a device or a pseudo-filesystem name) at `target`,
/// creating `target` first.
pub fn mount_fs(
    source: &str,
    target: &Path,
    fstype: &str,
    flags: MsFlags,
    options: Option<&str>,
) -> Result<(), MountError> {
    create_dir(target)?;
    mount(Some(source), target, Some(fstype), flags, options).map_err(|errno| MountError::Mount {
        fstype: fstype.to_string(),
        source_name: source.to_string(),
        target: target.to_path_buf(),
        errno,
    })
}

/// The kernel's pseudo-filesystems init needs, in the order it needs them.
/// The kernel lacks DEVTMPFS_MOUNT, so /dev is ours to mount too.
pub fn mount_early_filesystems() -> Result<(), MountError> {
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", Path::new("/proc"), "proc", nodev, None)?;
    mount_fs("sysfs", Path::new("/sys"), "sysfs", nodev, None)?;
    mount_fs(
        "devtmpfs",
        Path::new("/dev"),
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    )?;
    mount_fs(
        "tmpfs",
        Path::new("/run"),
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
}

/// Where a UEFI boot's kernel shows the firmware, and where its variables are mounted.
pub const EFI_FIRMWARE_DIR: &str = "/sys/firmware/efi";
pub const EFIVARS_DIR: &str = "/sys/firmware/efi/efivars";

/// efivarfs on a UEFI boot (after the modules: it is `efivarfs.ko` in Debian's kernels),
/// as systemd mounts it: harmony-agent reads the SecureBoot variable there, and it moves
/// to the new root with /sys. Ok(false): not a UEFI boot.
pub fn mount_efivars() -> Result<bool, MountError> {
    if !Path::new(EFI_FIRMWARE_DIR).is_dir() {
        return Ok(false);
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("efivarfs", Path::new(EFIVARS_DIR), "efivarfs", flags, None)?;
    Ok(true)
}

/// `mount --move from to`, creating `to` first.
pub fn move_mount(from: &Path, to: &Path) -> Result<(), MountError> {
    create_dir(to)?;
    mount(Some(from), to, None::<&str>, MsFlags::MS_MOVE, None::<&str>).map_err(|errno| {
        MountError::Move {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            errno,
        }
    })
}
