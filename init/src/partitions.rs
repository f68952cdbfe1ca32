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
pub enum PartitionError {
    #[error(
        "no partition named {name:?} appeared{} within {} s (partitions seen: {})",
        disk.as_ref().map(|d| format!(" on {}", d.display())).unwrap_or_default(),
        waited.as_secs(),
        if seen.is_empty() { "none".to_string() } else { seen.join(" ") }
    )]
    NotFound {
        name: String,
        /// The disk it had to be on, if any.
        disk: Option<PathBuf>,
        waited: Duration,
        /// `dev=name` of every named partition seen.
        seen: Vec<String>,
    },
    #[error(
        "{} partitions are named {name:?} ({}){}; refusing to guess which is this node's",
        devices.len(),
        devices.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" "),
        if *other_disks { ": another disk carries this image's partitions (detach it, or rename its partitions)" } else { " on one disk" }
    )]
    Duplicate {
        name: String,
        devices: Vec<PathBuf>,
        /// They are on more than one disk.
        other_disks: bool,
    },
}

/// Polls until the root partition `name` shows up or `timeout` passes. Its disk is
/// the node's: every other partition is taken from it ([`wait_on_disk`]). A second
/// partition of that name, on this disk or another, is refused: a stick carrying a
/// copy of the image (whose root verifies) would otherwise bring its own /var.
pub fn wait_for_root(name: &str, timeout: Duration) -> Result<Partition, PartitionError> {
    wait(name, None, timeout)
}

/// Polls until the partition `name` shows up on `disk`; partitions of that name on
/// other disks are never taken, and two on `disk` are refused.
pub fn wait_on_disk(
    name: &str,
    disk: &Path,
    timeout: Duration,
) -> Result<Partition, PartitionError> {
    wait(name, Some(disk), timeout)
}

fn wait(name: &str, disk: Option<&Path>, timeout: Duration) -> Result<Partition, PartitionError> {
    let start = Instant::now();
    loop {
        let (found, seen) = scan(Path::new(SYS_CLASS_BLOCK), name);
        if let Some(found) = pick(found, name, disk)? {
            return Ok(found);
        }
        if start.elapsed() >= timeout {
            return Err(PartitionError::NotFound {
                name: name.into(),
                disk: disk.map(Path::to_path_buf),
                waited: timeout,
                seen,
            });
        }
        sleep(POLL_INTERVAL);
    }
}

/// The one partition among `found` (all named `name`) on `disk` (any disk if `None`).
pub fn pick(
    found: Vec<Partition>,
    name: &str,
    disk: Option<&Path>,
) -> Result<Option<Partition>, PartitionError> {
    let mut mine: Vec<Partition> = found
        .into_iter()
        .filter(|p| disk.is_none_or(|d| p.disk == d))
        .collect();
    if mine.len() > 1 {
        let other_disks = mine.iter().any(|p| p.disk != mine[0].disk);
        return Err(PartitionError::Duplicate {
            name: name.into(),
            devices: mine.into_iter().map(|p| p.device).collect(),
            other_disks,
        });
    }
    Ok(mine.pop())
}

/// One look: every partition named `name` (in device name order), and every named
/// partition seen as `dev=name`.
pub fn scan(sys_class_block: &Path, name: &str) -> (Vec<Partition>, Vec<String>) {
    let mut entries: Vec<_> = fs::read_dir(sys_class_block)
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    let mut seen = Vec::new();
    let mut found = Vec::new();
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
        if part_name != name {
            continue;
        }
        // A partition's sysfs directory sits inside its disk's.
        let disk = fs::canonicalize(&entry)
            .ok()
            .and_then(|p| p.parent()?.file_name().map(|n| n.to_owned()));
        if let Some(disk) = disk {
            found.push(Partition {
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
            pick(found, "harmony-root", None).unwrap(),
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
        assert_eq!(found, []);
        assert_eq!(seen, ["vdb1=harmony-root-verity"]);
    }

    #[test]
    fn not_found_names_the_partition_the_disk_and_what_was_seen() {
        let e = PartitionError::NotFound {
            name: "harmony-root".into(),
            disk: None,
            waited: Duration::from_secs(30),
            seen: vec!["vda1=esp".into()],
        };
        assert_eq!(
            e.to_string(),
            "no partition named \"harmony-root\" appeared within 30 s (partitions seen: vda1=esp)"
        );
        let e = PartitionError::NotFound {
            name: "harmony-var".into(),
            disk: Some("/dev/vda".into()),
            waited: Duration::from_secs(30),
            seen: vec!["sda1=harmony-var".into()],
        };
        assert_eq!(
            e.to_string(),
            "no partition named \"harmony-var\" appeared on /dev/vda within 30 s (partitions seen: sda1=harmony-var)"
        );
    }

    /// A USB stick (sda, sorting before vda) with its own harmony-var and verity
    /// partitions next to the node's disk.
    fn with_a_stick() -> tempfile::TempDir {
        fake(&[
            ("sda", "sda1", 1, "harmony-var"),
            ("sda", "sda2", 2, "harmony-root-verity"),
            ("vda", "vda1", 1, "esp"),
            ("vda", "vda2", 2, "harmony-root"),
            ("vda", "vda3", 3, "harmony-root-verity"),
            ("vda", "vda4", 4, "harmony-var"),
        ])
    }

    #[test]
    fn partitions_come_from_the_root_s_disk_only() {
        let root = with_a_stick();
        let class = root.path().join("class/block");
        let (found, _) = scan(&class, "harmony-root");
        let root_partition = pick(found, "harmony-root", None).unwrap().unwrap();
        assert_eq!(root_partition.disk, Path::new("/dev/vda"));
        for (name, device) in [
            ("harmony-var", "/dev/vda4"),
            ("harmony-root-verity", "/dev/vda3"),
        ] {
            let (found, _) = scan(&class, name);
            assert_eq!(found.len(), 2, "{name}: the stick's and the disk's");
            let picked = pick(found, name, Some(&root_partition.disk))
                .unwrap()
                .unwrap();
            assert_eq!(picked.device, Path::new(device), "{name}");
        }
        // A name only the stick has is not found on the node's disk.
        let stick_only = fake(&[
            ("sda", "sda1", 1, "harmony-var"),
            ("vda", "vda2", 2, "harmony-root"),
        ]);
        let (found, _) = scan(&stick_only.path().join("class/block"), "harmony-var");
        assert_eq!(
            pick(found, "harmony-var", Some(Path::new("/dev/vda"))),
            Ok(None)
        );
    }

    #[test]
    fn duplicates_on_the_disk_or_a_second_root_are_refused() {
        let root = fake(&[
            ("vda", "vda2", 2, "harmony-root"),
            ("vda", "vda4", 4, "harmony-var"),
            ("vda", "vda5", 5, "harmony-var"),
        ]);
        let (found, _) = scan(&root.path().join("class/block"), "harmony-var");
        let e = pick(found, "harmony-var", Some(Path::new("/dev/vda"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 partitions are named \"harmony-var\" (/dev/vda4 /dev/vda5) on one disk; refusing to guess which is this node's"
        );
        // A stick with a copy of the image: two roots, on two disks.
        let copy = fake(&[
            ("sda", "sda2", 2, "harmony-root"),
            ("vda", "vda2", 2, "harmony-root"),
        ]);
        let (found, _) = scan(&copy.path().join("class/block"), "harmony-root");
        let e = pick(found, "harmony-root", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "2 partitions are named \"harmony-root\" (/dev/sda2 /dev/vda2): another disk carries this image's partitions (detach it, or rename its partitions); refusing to guess which is this node's"
        );
    }
}
