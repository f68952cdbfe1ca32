//! Running the image's own tools (e2fsprogs' mke2fs and e2fsck) on the mounted, not yet
//! switched root: chrooted into it, so a dynamically linked tool finds its loader and
//! libraries there, with /dev and /proc mounted inside for the time of the run (the
//! device node, and the tools' "is it mounted?" check).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{bail, Context};
use nix::mount::{umount2, MntFlags, MsFlags};

use crate::mounts::mount_fs;

/// Where a tool may be in an image, relative to its root, in order of preference.
const TOOL_DIRS: [&str; 4] = ["usr/sbin", "sbin", "usr/bin", "bin"];

// chroot(2) and chdir(2) between fork and exec: both async-signal-safe syscalls.
#[allow(unsafe_code)]
mod spawn {
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::Command;

    pub fn chrooted(command: &mut Command, root: PathBuf) {
        // SAFETY: the closure only makes two syscalls and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                nix::unistd::chroot(&root)?;
                nix::unistd::chdir("/")?;
                Ok(())
            });
        }
    }
}

/// The tool's path inside the image (`/usr/sbin/mke2fs`), if the image has it.
pub fn find_tool(root: &Path, name: &str) -> Option<PathBuf> {
    TOOL_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| root.join(path).is_file())
        .map(|path| Path::new("/").join(path))
}

/// Runs `tool` (a path inside `root`) with `args` chrooted into `root`.
pub fn run_in_root(root: &Path, tool: &Path, args: &[&OsStr]) -> anyhow::Result<Output> {
    let dev = root.join("dev");
    let proc = root.join("proc");
    if !dev.is_dir() || !proc.is_dir() {
        bail!(
            "the image has no /dev or /proc directory to run {} in",
            tool.display()
        );
    }
    mount_fs("devtmpfs", &dev, "devtmpfs", MsFlags::MS_NOSUID, None)?;
    let output = mount_fs("proc", &proc, "proc", MsFlags::MS_NOSUID, None)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            let mut command = Command::new(tool);
            command
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
            spawn::chrooted(&mut command, root.to_path_buf());
            let output = command
                .output()
                .with_context(|| format!("run the image's {}", tool.display()));
            let _ = umount2(&proc, MntFlags::MNT_DETACH);
            output
        });
    let _ = umount2(&dev, MntFlags::MNT_DETACH);
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_in_the_image_s_sbin_first() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(find_tool(root.path(), "mke2fs"), None);
        std::fs::create_dir_all(root.path().join("sbin")).unwrap();
        std::fs::write(root.path().join("sbin/mke2fs"), b"").unwrap();
        assert_eq!(
            find_tool(root.path(), "mke2fs"),
            Some(PathBuf::from("/sbin/mke2fs"))
        );
        std::fs::create_dir_all(root.path().join("usr/sbin")).unwrap();
        std::fs::write(root.path().join("usr/sbin/mke2fs"), b"").unwrap();
        assert_eq!(
            find_tool(root.path(), "mke2fs"),
            Some(PathBuf::from("/usr/sbin/mke2fs"))
        );
    }
}
