//! The container's filesystem view, set up in its own mount namespace before the process
//! starts (as runc's defaults): the image root bind-mounted on itself and then made
//! read-only, and only these writable or special mounts on it:
//!
//! - `/dev`: a tmpfs with null, zero, full, random, urandom and tty, a private devpts at
//!   `/dev/pts` (`/dev/ptmx` leads there), a tmpfs at `/dev/shm`, and the `fd`,
//!   `stdin`, `stdout`, `stderr` links; never the host's /dev;
//! - `/tmp` and `/run` tmpfs (`/run/secrets` is a tmpfs of its own, see `secrets`);
//! - the rendered config read-only at the entry's `config_mount`;
//! - the data directory writable at the entry's `data_mount`.
//!
//! `/proc` is mounted by the process itself (see `privileges`), once it is PID 1 of the
//! new PID namespace. Every mount point is reached inside the rootfs only (openat2
//! `RESOLVE_IN_ROOT`, then `/proc/self/fd/N`): a symlink the image plants at `/tmp`
//! leads back into the rootfs, never to the host.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::Context;
use nix::mount::{mount, MsFlags};
use rustix::fs::{FileType, Mode};

use super::in_root::{InRoot, InRootPath};
use super::secrets::{self, Handed};

/// Character devices a container gets (runc's default list): name, major, minor.
const DEVICES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// What goes where besides the image itself.
pub struct Mounts<'a> {
    /// The rendered config directory and where it is mounted.
    pub config: Option<(&'a Path, &'a str)>,
    /// The data directory and where it is mounted.
    pub data: Option<(&'a Path, &'a str)>,
}

/// Set the view up (we are in a fresh mount namespace); returns the directory `/proc`
/// is to be mounted on.
pub fn prepare(
    rootfs: &Path,
    mounts: &Mounts<'_>,
    handed: &Handed,
    uid: u32,
    gid: u32,
) -> anyhow::Result<OwnedFd> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {} on itself", rootfs.display()))?;
    // Opened after the bind: mount points must be in the bind mount, not under it.
    let tree = InRoot::open(rootfs).with_context(|| format!("opening {}", rootfs.display()))?;
    let at = |path: &str| -> anyhow::Result<OwnedFd> {
        let rel = InRootPath::parse(Path::new(path))
            .ok_or_else(|| anyhow::anyhow!("mount point {path} climbs out of the root"))?;
        tree.dir_creating(&rel)
            .with_context(|| format!("creating the mount point {path} in {}", rootfs.display()))
    };
    let proc = at("/proc")?;

    let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    on(
        &at("/dev")?,
        "/dev",
        Some("tmpfs"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=755,size=64k"),
    )?;
    populate_dev(&at("/dev")?).context("populating /dev")?;
    on(
        &at("/dev/pts")?,
        "/dev/pts",
        Some("devpts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    on(
        &at("/dev/shm")?,
        "/dev/shm",
        Some("tmpfs"),
        Some("tmpfs"),
        nosuid_nodev | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=64m"),
    )?;
    on(
        &at("/tmp")?,
        "/tmp",
        Some("tmpfs"),
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=1777"),
    )?;
    on(
        &at("/run")?,
        "/run",
        Some("tmpfs"),
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=755"),
    )?;
    secrets::install(rootfs, handed, uid, gid)?;
    if let Some((source, target)) = mounts.config {
        bind(&at(target)?, source, target)?;
        remount_read_only(&at(target)?, target)?;
    }
    if let Some((source, target)) = mounts.data {
        bind(&at(target)?, source, target)?;
    }
    mount(
        None::<&str>,
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | nosuid_nodev,
        None::<&str>,
    )
    .with_context(|| format!("making {} read-only", rootfs.display()))?;
    Ok(proc)
}

/// The path the kernel resolves to the directory `fd` holds (no symlink followed again).
pub fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn on(
    dir: &OwnedFd,
    shown: &str,
    source: Option<&str>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> anyhow::Result<()> {
    mount(source, fd_path(dir).as_str(), fstype, flags, data)
        .with_context(|| format!("mounting {} on {shown}", fstype.unwrap_or("?")))
}

fn bind(dir: &OwnedFd, source: &Path, shown: &str) -> anyhow::Result<()> {
    mount(
        Some(source),
        fd_path(dir).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {} on {shown}", source.display()))
}

/// `dir` must be the mount's root (opened after the bind).
fn remount_read_only(dir: &OwnedFd, shown: &str) -> anyhow::Result<()> {
    mount(
        None::<&str>,
        fd_path(dir).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .with_context(|| format!("making {shown} read-only"))
}

fn populate_dev(dev: &OwnedFd) -> anyhow::Result<()> {
    for (name, major, minor) in DEVICES {
        let mode = Mode::from_raw_mode(0o666);
        rustix::fs::mknodat(
            dev,
            *name,
            FileType::CharacterDevice,
            mode,
            rustix::fs::makedev(*major, *minor),
        )
        .with_context(|| format!("mknod /dev/{name}"))?;
        // mknod's mode went through the umask.
        rustix::fs::chmodat(dev, *name, mode, rustix::fs::AtFlags::empty())
            .with_context(|| format!("chmod /dev/{name}"))?;
    }
    for (name, target) in DEV_LINKS {
        rustix::fs::symlinkat(*target, dev, *name).with_context(|| format!("/dev/{name}"))?;
    }
    for name in ["pts", "shm"] {
        rustix::fs::mkdirat(dev, name, Mode::from_raw_mode(0o755))
            .with_context(|| format!("/dev/{name}"))?;
    }
    Ok(())
}
