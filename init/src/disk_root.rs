//! A disk boot (docs/boot-flow.md, "Disk boot"): the root partition through
//! dm-verity, read-only as `/`; /var on its own partition (made at first boot);
//! /etc and the other places a node writes as overlays whose upper layers live
//! on /var. The root partition is never written.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use nix::mount::MsFlags;

use crate::block_probe::{read_header, root_fs_type};
use crate::console::{say, warn};
use crate::device_mapper::{create_read_only, Table};
use crate::disk_args::{DiskArgs, VerityArgs};
use crate::gpt::Outcome;
use crate::mounts::{create_dir, mount_fs, move_mount};
use crate::partitions::{wait_for_root, wait_on_disk, Partition};
use crate::var_volume::{ensure_var_partition, mount_var};

/// How long virtio gets to show the disk's partitions.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(30);
const VERITY_DEVICE: &str = "harmony-root";
const VERITY_BLOCK: u64 = 4096;
/// The hash partition starts with veritysetup's superblock; the tree follows.
const HASH_START_BLOCK: u64 = 1;
/// Where /var is mounted before it moves under the new root.
const VAR_STAGING: &str = "/var-staging";
/// Upper and work directories of the overlays, on /var.
const OVERLAY_HOME: &str = ".harmony-overlay";
/// Writable views of the read-only root, each an overlay if the image has the directory.
const OVERLAID: [&str; 6] = ["etc", "root", "home", "srv", "opt", "usr/local"];

/// Mounts the whole tree of a disk boot at `sysroot`.
pub fn mount_disk_root(args: &DiskArgs, sysroot: &Path) -> anyhow::Result<()> {
    // The root's disk is the node's: the verity and /var partitions come from it alone.
    let root = wait_for_root(&args.root_partition, PARTITION_TIMEOUT)?;
    // Before dm-verity holds the root partition open: re-reading the table needs an idle disk.
    let var = match &args.var_partition {
        Some(name) => {
            let (outcome, attributes) = ensure_var_partition(&root.disk, name)?;
            match outcome {
                Outcome::Created { sectors, .. } => say(format_args!(
                    "var: created partition {name:?} ({} MiB) on {}",
                    sectors >> 11,
                    root.disk.display()
                )),
                Outcome::Grown { from, to, .. } => say(format_args!(
                    "var: grew partition {name:?} from {} to {} MiB",
                    from >> 11,
                    to >> 11
                )),
                Outcome::Unchanged { .. } => {}
            }
            let partition = wait_on_disk(name, &root.disk, PARTITION_TIMEOUT)?;
            Some((partition, outcome, attributes))
        }
        None => None,
    };

    let device = match &args.verity {
        Some(verity) => open_verity(&root, verity)?,
        None => {
            warn(format_args!(
                "root {} is not verified (no harmony.verity.roothash=)",
                root.device.display()
            ));
            root.device.clone()
        }
    };
    let header = read_header(&device).with_context(|| format!("read {}", device.display()))?;
    let fs_type = root_fs_type(&header)
        .ok_or_else(|| anyhow!("{} is neither squashfs nor erofs", device.display()))?;
    mount_fs(
        &device.to_string_lossy(),
        sysroot,
        fs_type.fstype(),
        MsFlags::MS_RDONLY,
        None,
    )?;
    say(format_args!(
        "root {} ({fs_type}) read-only at {}",
        device.display(),
        sysroot.display()
    ));

    let var_dir = sysroot.join("var");
    match var {
        Some((partition, outcome, attributes)) => {
            let staging = Path::new(VAR_STAGING);
            let fresh = mount_var(&partition, sysroot, staging, outcome, attributes)?;
            move_mount(staging, &var_dir)?;
            say(format_args!(
                "var: {} at /var ({})",
                partition.device.display(),
                if fresh { "first boot" } else { "kept" }
            ));
        }
        None => {
            mount_fs(
                "tmpfs",
                &var_dir,
                "tmpfs",
                MsFlags::empty(),
                Some("mode=0755"),
            )?;
            say("var: tmpfs (no harmony.var=; changes are lost at power off)");
        }
    }
    for dir in OVERLAID {
        let lower = sysroot.join(dir);
        if !lower.is_dir() {
            continue;
        }
        let home = var_dir.join(OVERLAY_HOME).join(dir.replace('/', "-"));
        let (upper, work) = (home.join("upper"), home.join("work"));
        create_dir(&upper)?;
        create_dir(&work)?;
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        mount_fs(
            "overlay",
            &lower,
            "overlay",
            MsFlags::empty(),
            Some(&options),
        )?;
    }
    let tmp = sysroot.join("tmp");
    if tmp.is_dir() {
        mount_fs("tmpfs", &tmp, "tmpfs", MsFlags::empty(), Some("mode=1777"))?;
    }
    Ok(())
}

/// Creates the dm-verity device over the root partition and reads all of it once,
/// so a corrupted root stops the boot here rather than some file read later.
fn open_verity(root: &Partition, verity: &VerityArgs) -> anyhow::Result<PathBuf> {
    let hash = wait_on_disk(&verity.hash_partition, &root.disk, PARTITION_TIMEOUT)?;
    let params = verity_table(&root.device, &hash.device, verity);
    let table = Table {
        sectors: verity.data_blocks * (VERITY_BLOCK / 512),
        target: "verity",
        params: &params,
    };
    let device = create_read_only(VERITY_DEVICE, &table)
        .with_context(|| format!("dm-verity over {}", root.device.display()))?;
    check_every_block(&device).map_err(|e| {
        anyhow!(
            "dm-verity: root partition {} does not match harmony.verity.roothash={}: {e}; refusing to boot",
            root.device.display(),
            verity.root_hash
        )
    })?;
    say(format_args!(
        "verity: {} verified ({} blocks) as {} at uptime {}",
        root.device.display(),
        verity.data_blocks,
        device.display(),
        crate::boot::uptime()
    ));
    Ok(device)
}

/// The verity target's table (Documentation/admin-guide/device-mapper/verity.rst):
/// version 1, 4096-byte blocks, the tree after the superblock block.
pub fn verity_table(data: &Path, hash: &Path, v: &VerityArgs) -> String {
    format!(
        "1 {} {} {VERITY_BLOCK} {VERITY_BLOCK} {} {HASH_START_BLOCK} sha256 {} {}",
        data.display(),
        hash.display(),
        v.data_blocks,
        v.root_hash,
        v.salt
    )
}

fn check_every_block(device: &Path) -> anyhow::Result<()> {
    let mut file = File::open(device).with_context(|| format!("open {}", device.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => offset += n as u64,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => bail!("read error at byte {offset}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_the_documented_verity_line() {
        let v = VerityArgs {
            hash_partition: "harmony-root-verity".into(),
            root_hash: "ab".repeat(32),
            salt: "cd".repeat(32),
            data_blocks: 9000,
        };
        assert_eq!(
            verity_table(Path::new("/dev/vda2"), Path::new("/dev/vda3"), &v),
            format!(
                "1 /dev/vda2 /dev/vda3 4096 4096 9000 1 sha256 {} {}",
                "ab".repeat(32),
                "cd".repeat(32)
            )
        );
    }

    #[test]
    fn reading_a_whole_file_is_fine_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("dev");
        std::fs::write(&f, vec![1u8; 3 << 20]).unwrap();
        check_every_block(&f).unwrap();
        let e = check_every_block(&dir.path().join("nope")).unwrap_err();
        assert!(format!("{e:#}").contains("nope"), "{e:#}");
    }
}
