//! The writable /var of a disk boot: a GPT partition after the image's own, made
//! at first boot in the disk's free space (or grown when the disk grew), with an ext4
//! filesystem (journal) made by the image's e2fsprogs `mke2fs` and checked by its
//! `e2fsck` before every later mount. A fresh one gets a copy of the image's /var, so
//! what the image ships there stays visible.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::block_probe::{ext4_label, read_header};
use crate::console::{say, warn};
use crate::gpt::{ensure_partition, guid, set_attributes, Outcome, PartitionSpec};
use crate::partitions::Partition;
use crate::root_tools::{find_tool, run_in_root};

/// The Discoverable Partitions Specification's type for /var.
pub const VAR_TYPE: [u8; 16] = guid("4d21b016-b534-45c2-a9fb-5c16e091fd2d");
/// GPT attribute bit 55 (of the type-specific bits 48-63): Harmony made this partition
/// (the builder in disk.raw, or harmony-init in the free space) and its /var is not
/// complete yet. While it is set, harmony-init makes the filesystem anew and copies the
/// image's /var (a power cut half-way leaves it set); it clears it when /var is whole and
/// synced. A partition without it is never formatted. The builder's copy of this
/// contract: builder/src/emit/verified_root.rs `VAR_UNFORMATTED_ATTRIBUTE`.
pub const UNFORMATTED: u64 = 1 << 55;
/// Below this, first boot refuses: the node would fill it at once.
pub const MIN_VAR_BYTES: u64 = 64 << 20;
/// ext4 labels hold 16 bytes; the filesystem label is fixed, the partition name is not.
pub const VAR_LABEL: &str = "harmony-var";
const REREAD_ATTEMPTS: usize = 20;

// BLKRRPART makes the kernel re-read the partition table we just wrote;
// EXT4_IOC_RESIZE_FS grows a mounted filesystem to a new block count. Both get
// an open fd of the right device; the resize reads one u64 that lives across the call.
#[allow(unsafe_code)]
mod ioctl {
    nix::ioctl_none!(blkrrpart, 0x12, 95);
    nix::ioctl_write_ptr!(ext4_resize_fs, b'f', 16, u64);

    pub fn reread_partitions(fd: i32) -> nix::Result<()> {
        // SAFETY: BLKRRPART takes no argument; a bad fd is an error, not UB.
        unsafe { blkrrpart(fd) }.map(drop)
    }

    pub fn resize_ext4(fd: i32, blocks: u64) -> nix::Result<()> {
        // SAFETY: `blocks` is a live u64 the kernel only reads during the call.
        unsafe { ext4_resize_fs(fd, &blocks) }.map(drop)
    }
}

/// Makes sure the disk holds the partition `name` (one, made [`UNFORMATTED`] if it is
/// new); tells the kernel when the table changed. Must run before any partition of the
/// disk is opened (BLKRRPART refuses while one is busy). Returns what it did and the
/// partition's attribute bits.
pub fn ensure_var_partition(disk: &Path, name: &str) -> anyhow::Result<(Outcome, u64)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .with_context(|| format!("open {} to add the /var partition", disk.display()))?;
    let spec = PartitionSpec {
        name,
        type_guid: VAR_TYPE,
        min_bytes: MIN_VAR_BYTES,
        attributes: UNFORMATTED,
    };
    let (outcome, attributes) =
        ensure_partition(&file, &disk.to_string_lossy(), &spec, random_guid()?)?;
    if !matches!(outcome, Outcome::Unchanged { .. }) {
        let mut attempt = 0;
        loop {
            match ioctl::reread_partitions(file.as_raw_fd()) {
                Ok(()) => break,
                // udev-less, but a probe may still hold the disk for a moment.
                Err(nix::errno::Errno::EBUSY) if attempt < REREAD_ATTEMPTS => {
                    attempt += 1;
                    sleep(Duration::from_millis(100));
                }
                Err(e) => bail!("{}: re-read the partition table: {e}", disk.display()),
            }
        }
    }
    Ok((outcome, attributes))
}

fn random_guid() -> anyhow::Result<[u8; 16]> {
    let mut g = [0u8; 16];
    use std::io::Read;
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut g))
        .context("read /dev/urandom for the partition's GUID")?;
    // Version 4 (random); the variant bits sit in byte 8 of the on-disk form.
    g[7] = (g[7] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    Ok(g)
}

/// Mounts the /var partition at `staging`. One Harmony made and has not finished
/// ([`UNFORMATTED`] in `attributes`) gets a new filesystem and a copy of the image's
/// /var from `root`, synced, and then loses the bit; one without the bit must already
/// hold a filesystem (it is never formatted), grown if the partition grew. Returns true
/// when the filesystem is new.
pub fn mount_var(
    partition: &Partition,
    root: &Path,
    staging: &Path,
    outcome: Outcome,
    attributes: u64,
) -> anyhow::Result<bool> {
    let device = &partition.device;
    let header = read_header(device).with_context(|| format!("read {}", device.display()))?;
    let fresh = attributes & UNFORMATTED != 0;
    if !fresh && ext4_label(&header).is_none() {
        bail!(
            "{} (partition {} of {}) has no ext2/3/4 filesystem and Harmony did not make it \
             (GPT attribute bit 55 is clear): refusing to format a partition it did not create; \
             delete it, or give it a filesystem labelled {VAR_LABEL}",
            device.display(),
            partition.number,
            partition.disk.display()
        );
    }
    if fresh {
        make_filesystem(device, root)?;
    } else {
        check_filesystem(device, root)?;
    }
    crate::mounts::mount_fs(
        &device.to_string_lossy(),
        staging,
        "ext4",
        nix::mount::MsFlags::empty(),
        None,
    )?;
    if fresh {
        copy_tree(&root.join("var"), staging)
            .with_context(|| format!("copy the image's /var onto {}", device.display()))?;
        let dir = fs::File::open(staging).with_context(|| format!("open {}", staging.display()))?;
        nix::unistd::syncfs(dir.as_raw_fd())
            .with_context(|| format!("sync the new /var on {}", device.display()))?;
        mark_complete(partition, attributes)?;
    } else if let Outcome::Grown { to, .. } = outcome {
        grow_filesystem(staging, &header, to * 512);
    }
    Ok(fresh)
}

/// Clears [`UNFORMATTED`]: from now on the partition is this node's /var, kept as it is.
fn mark_complete(partition: &Partition, attributes: u64) -> anyhow::Result<()> {
    let disk = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&partition.disk)
        .with_context(|| format!("open {} to mark /var complete", partition.disk.display()))?;
    set_attributes(
        &disk,
        &partition.disk.to_string_lossy(),
        partition.number,
        attributes & !UNFORMATTED,
    )?;
    Ok(())
}

/// e2fsprogs' tool `name` in the image, or an error saying the disk boot needs it.
fn e2fsprogs_tool(root: &Path, name: &str, device: &Path) -> anyhow::Result<PathBuf> {
    find_tool(root, name).ok_or_else(|| {
        anyhow!(
            "{}: the image has no {name} (e2fsprogs) in /usr/sbin or /sbin; a disk boot's /var \
             needs mke2fs and e2fsck",
            device.display()
        )
    })
}

/// ext4 with a journal (so a power cut costs at most the last seconds, never the
/// filesystem), 4096-byte blocks (online growth by any amount).
fn make_filesystem(device: &Path, root: &Path) -> anyhow::Result<()> {
    let mke2fs = e2fsprogs_tool(root, "mke2fs", device)?;
    let args: [&OsStr; 9] = [
        "-t".as_ref(),
        "ext4".as_ref(),
        "-b".as_ref(),
        "4096".as_ref(),
        "-F".as_ref(),
        "-q".as_ref(),
        "-L".as_ref(),
        VAR_LABEL.as_ref(),
        device.as_os_str(),
    ];
    let out = run_in_root(root, &mke2fs, &args)?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            mke2fs.display(),
            device.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    say(format_args!(
        "var: made an ext4 filesystem with a journal (label {VAR_LABEL}) on {}",
        device.display()
    ));
    Ok(())
}

/// `e2fsck -p` before every mount of a kept /var: replays the journal after a power cut
/// and repairs what is safe to repair unattended; anything more stops the boot.
fn check_filesystem(device: &Path, root: &Path) -> anyhow::Result<()> {
    let e2fsck = e2fsprogs_tool(root, "e2fsck", device)?;
    let out = run_in_root(root, &e2fsck, &["-p".as_ref(), device.as_os_str()])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("").trim();
    match out.status.code() {
        // 0: clean; 1: errors fixed; 2: fixed, and a mounted root would need a reboot.
        Some(code @ 0..=2) => {
            say(format_args!(
                "var: e2fsck {}: {}",
                device.display(),
                match code {
                    0 => "clean",
                    _ => "changed (journal replayed or errors repaired)",
                }
            ));
            if code > 0 {
                say(format_args!("var: e2fsck: {last}"));
            }
            Ok(())
        }
        _ => bail!(
            "e2fsck -p {} found errors it cannot repair unattended ({}): {}{}; run e2fsck -f on it by hand",
            device.display(),
            out.status,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// Online resize to the partition's new size; a failure leaves /var usable at its
/// old size, so it is a warning, not a reason to stop the boot.
fn grow_filesystem(mounted: &Path, header: &[u8], partition_bytes: u64) {
    // s_log_block_size at 1024 + 24: block size is 1024 << it.
    let log = header
        .get(1024 + 24..1024 + 28)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(0);
    let blocks = partition_bytes / (1024u64 << log.min(6));
    let result = fs::File::open(mounted)
        .map_err(|e| anyhow!("open {}: {e}", mounted.display()))
        .and_then(|dir| {
            ioctl::resize_ext4(dir.as_raw_fd(), blocks)
                .map_err(|e| anyhow!("EXT4_IOC_RESIZE_FS: {e}"))
        });
    match result {
        Ok(()) => say(format_args!("var: filesystem grown to {blocks} blocks")),
        Err(e) => warn(format_args!(
            "var: partition grew but the filesystem did not: {e:#}"
        )),
    }
}

/// Copies directories, regular files and symlinks with their modes and owners.
fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    let meta = fs::symlink_metadata(from)?;
    fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst): (PathBuf, PathBuf) = (entry.path(), to.join(entry.file_name()));
        let meta = fs::symlink_metadata(&src)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&dst).with_context(|| format!("create {}", dst.display()))?;
            copy_tree(&src, &dst)?;
            continue;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src)?, &dst)
                .with_context(|| format!("create {}", dst.display()))?;
        } else if kind.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copy {}", src.display()))?;
        } else {
            warn(format_args!(
                "var: {} is neither file, directory nor link; not copied",
                src.display()
            ));
            continue;
        }
        lchown(&dst, Some(meta.uid()), Some(meta.gid()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_files_dirs_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("from"), dir.path().join("to"));
        fs::create_dir_all(from.join("lib/harmony")).unwrap();
        fs::write(from.join("lib/motd"), b"hi").unwrap();
        fs::set_permissions(from.join("lib/motd"), fs::Permissions::from_mode(0o640)).unwrap();
        fs::set_permissions(from.join("lib/harmony"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("../run", from.join("run")).unwrap();
        fs::create_dir(&to).unwrap();
        copy_tree(&from, &to).unwrap();
        assert_eq!(fs::read(to.join("lib/motd")).unwrap(), b"hi");
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&to.join("lib/motd")), 0o640);
        assert_eq!(mode(&to.join("lib/harmony")), 0o700);
        assert_eq!(fs::read_link(to.join("run")).unwrap(), Path::new("../run"));
    }

    #[test]
    fn var_type_is_the_discoverable_partitions_guid() {
        assert_eq!(
            VAR_TYPE,
            [
                0x16, 0xb0, 0x21, 0x4d, 0x34, 0xb5, 0xc2, 0x45, 0xa9, 0xfb, 0x5c, 0x16, 0xe0, 0x91,
                0xfd, 0x2d
            ]
        );
    }
}
