//! Finding partitions by their GPT partition name: the kernel puts it in each
//! partition's `/sys/class/block/NAME/uevent` as `PARTNAME=` (it exposes no
//! PARTUUID there). Virtio disks probe asynchronously, so callers poll.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub const SYS_CLASS_BLOCK: &str = "/sys/class/block";
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A partition the kernel knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// `/dev/vda2`.
    pub device: PathBuf,
    /// The whole disk's node, `/dev/vda`.
    pub disk: PathBuf,
    /// 1-based partition number (`PARTN`).
    pub number: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no partition named {name:?} appeared within {} s (partitions seen: {})",
    waited.as_secs(),
    if seen.is_empty() { "none".to_string() } else { seen.join(" ") }
)]
pub struct PartitionNotFound {
    pub name: String,
    pub waited: Duration,
    /// `dev=name` of every named partition seen.
    pub seen: Vec<String>,
}

/// Polls until a partition named `name` shows up or `timeout` passes.
pub fn wait_for_partition(name: &str, timeout: Duration) -> Result<Partition, PartitionNotFound> {
    let start = Instant::now();
    loop {
        let (found, seen) = scan(Path::new(SYS_CLASS_BLOCK), name);
        if let Some(found) = found {
            return Ok(found);
        }
        if start.elapsed() >= timeout {
            return Err(PartitionNotFound {
                name: name.into(),
                waited: timeout,
                seen,
            });
        }
        sleep(POLL_INTERVAL);
    }
}

/// One look: the first partition (in device name order) named `name`, and every
/// named partition seen as `dev=name`.
pub fn scan(sys_class_block: &Path, name: &str) -> (Option<Partition>, Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(sys_class_block)
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    let mut seen = Vec::new();
    let mut found = None;
    for entry in entries {
        let Ok(uevent) = fs::read_to_string(entry.join("uevent")) else {
            continue;
        };
        let field = |key: &str| {
            uevent
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_string)
        };
        let (Some(dev), Some(part_name), Some(number)) = (
            field("DEVNAME"),
            field("PARTNAME"),
            field("PARTN").and_then(|n| n.parse().ok()),
        ) else {
            continue;
        };
        seen.push(format!("{dev}={part_name}"));
        if part_name != name || found.is_some() {
            continue;
        }
        // A partition's sysfs directory sits inside its disk's.
        let disk = fs::canonicalize(&entry)
            .ok()
            .and_then(|p| p.parent()?.file_name().map(|n| n.to_owned()));
        if let Some(disk) = disk {
            found = Some(Partition {
                device: Path::new("/dev").join(&dev),
                disk: Path::new("/dev").join(disk),
                number,
            });
        }
    }
    (found, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs: devices/…/block/DISK/PART with uevent files, and class/block
    /// symlinks to them, as the kernel lays them out.
    fn fake(parts: &[(&str, &str, u32, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let class = root.path().join("class/block");
        fs::create_dir_all(&class).unwrap();
        for (disk, dev, n, name) in parts {
            let dir = root.path().join("devices/pci0/virtio1/block").join(disk);
            fs::create_dir_all(dir.join(dev)).unwrap();
            fs::write(
                dir.join(dev).join("uevent"),
                format!("MAJOR=254\nMINOR={n}\nDEVNAME={dev}\nDEVTYPE=partition\nPARTN={n}\nPARTNAME={name}\n"),
            )
            .unwrap();
            fs::write(
                dir.join("uevent"),
                format!("MAJOR=254\nMINOR=0\nDEVNAME={disk}\nDEVTYPE=disk\n"),
            )
            .unwrap();
            let _ = std::os::unix::fs::symlink(dir.clone(), class.join(disk));
            std::os::unix::fs::symlink(dir.join(dev), class.join(dev)).unwrap();
        }
        root
    }

    #[test]
    fn finds_a_partition_and_its_disk_by_name() {
        let root = fake(&[
            ("vda", "vda1", 1, "esp"),
            ("vda", "vda2", 2, "harmony-root"),
            ("vda", "vda3", 3, "harmony-root-verity"),
        ]);
        let (found, seen) = scan(&root.path().join("class/block"), "harmony-root");
        assert_eq!(
            found,
            Some(Partition {
                device: "/dev/vda2".into(),
                disk: "/dev/vda".into(),
                number: 2
            })
        );
        assert_eq!(
            seen,
            ["vda1=esp", "vda2=harmony-root", "vda3=harmony-root-verity"]
        );
    }

    #[test]
    fn names_match_exactly_and_disks_are_not_partitions() {
        let root = fake(&[("vdb", "vdb1", 1, "harmony-root-verity")]);
        let (found, seen) = scan(&root.path().join("class/block"), "harmony-root");
        assert_eq!(found, None);
        assert_eq!(seen, ["vdb1=harmony-root-verity"]);
    }

    #[test]
    fn not_found_names_the_partition_and_what_was_seen() {
        let e = PartitionNotFound {
            name: "harmony-root".into(),
            waited: Duration::from_secs(30),
            seen: vec!["vda1=esp".into()],
        };
        assert_eq!(
            e.to_string(),
            "no partition named \"harmony-root\" appeared within 30 s (partitions seen: vda1=esp)"
        );
    }
}
