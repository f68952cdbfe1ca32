//! Handing the machine to the real root: carry the kernel's filesystems
//! over, make the new root `/`, and exec its init.

use std::convert::Infallible;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};
use nix::unistd::{chdir, chroot, execv};

use crate::mounts::move_mount;

/// Kernel filesystems every init expects to find already mounted.
const API_FILESYSTEMS: [&str; 4] = ["/proc", "/sys", "/dev", "/run"];

/// A mount to carry into the new root, at a path relative to it.
pub struct Carry {
    pub from: PathBuf,
    pub to: PathBuf,
}

/// Moves `/proc /sys /dev /run` and then `carry` (in order) under
/// `new_root`, makes `new_root` the root and execs `init` with `init_args`.
/// Returns only on failure.
pub fn switch_root(
    new_root: &Path,
    init: &Path,
    init_args: &[OsString],
    carry: &[Carry],
) -> anyhow::Result<Infallible> {
    check_init_present(new_root, init)?;
    let argv = exec_argv(init, init_args)?;

    for fs in API_FILESYSTEMS {
        let from = Path::new(fs);
        move_mount(from, &new_root.join(&fs[1..]))?;
    }
    for c in carry {
        move_mount(&c.from, &new_root.join(&c.to))?;
    }

    chdir(new_root).with_context(|| format!("chdir {}", new_root.display()))?;
    // The initramfs is rootfs, which cannot be pivot_root'ed away: move the
    // new root over it instead, as util-linux's switch_root does.
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .with_context(|| format!("move mount {} to /", new_root.display()))?;
    chroot(".").context("chroot into the new root")?;
    chdir("/").context("chdir / in the new root")?;

    let never = execv(&argv[0], &argv).with_context(|| format!("exec {}", init.display()))?;
    match never {}
}

/// Checked before anything moves, so the error is clear. Symlinks are not
/// followed: /sbin/init is often an absolute one that resolves only inside
/// the new root.
fn check_init_present(new_root: &Path, init: &Path) -> anyhow::Result<()> {
    let init_in_new_root = new_root.join(init.strip_prefix("/").unwrap_or(init));
    if init_in_new_root.symlink_metadata().is_err() {
        bail!(
            "harmony.init {} does not exist in the root image ({} is missing)",
            init.display(),
            init_in_new_root.display()
        );
    }
    Ok(())
}

/// `argv` for the new init: its own path as argv[0], then the arguments the
/// kernel gave us (e.g. `single`), passed through untouched.
fn exec_argv(init: &Path, args: &[OsString]) -> anyhow::Result<Vec<CString>> {
    std::iter::once(init.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|arg| {
            CString::new(arg.as_bytes())
                .with_context(|| format!("argument {arg:?} for {} contains a NUL", init.display()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_starts_with_the_init_path_and_passes_args_through() {
        let argv = exec_argv(Path::new("/sbin/init"), &["single".into()]).unwrap();
        assert_eq!(argv, vec![c"/sbin/init".to_owned(), c"single".to_owned()]);
    }

    #[test]
    fn missing_init_is_named() {
        let root = tempfile::tempdir().unwrap();
        let err = check_init_present(root.path(), Path::new("/sbin/init")).unwrap_err();
        let message = format!("{err:#}");
        assert!(
            message.contains("harmony.init /sbin/init does not exist"),
            "{message}"
        );
    }

    #[test]
    fn dangling_absolute_symlink_counts_as_present() {
        // /sbin/init -> /lib/systemd/systemd resolves only after the chroot.
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sbin")).unwrap();
        std::os::unix::fs::symlink("/nonexistent/systemd", root.path().join("sbin/init")).unwrap();
        check_init_present(root.path(), Path::new("/sbin/init")).unwrap();
    }
}
