//! Finding the state disk: the block device whose ext4 label is the one
//! `harmony.state=` names. Virtio disks probe asynchronously, so it may
//! appear a little after the modules load; we poll for it.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::block_probe::{ext4_label, read_header};

const SYS_CLASS_BLOCK: &str = "/sys/class/block";
const DEV: &str = "/dev";
const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "no block device with ext4 label {label:?} appeared within {} s (block devices seen: {})",
    waited.as_secs(),
    if seen.is_empty() { "none".to_string() } else { seen.join(" ") }
)]
pub struct StateDiskNotFound {
    pub label: String,
    pub waited: Duration,
    pub seen: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{} block devices carry the ext4 label {label:?} ({}); refusing to choose one: \
     another disk (a USB stick) must not supply /etc and /var. Relabel or remove all but one",
    devices.len(),
    devices.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" ")
)]
pub struct StateDiskAmbiguous {
    pub label: String,
    pub devices: Vec<PathBuf>,
}

/// The devices carrying the label, in name order (`vda` before `vdb`).
#[derive(Debug, PartialEq, Eq)]
pub struct Matches {
    pub devices: Vec<PathBuf>,
    /// Every block device name looked at, for the error message.
    pub seen: Vec<String>,
}

impl Matches {
    /// The one device carrying the label; two or more are refused, never the first taken.
    pub fn only(&self, label: &str) -> Result<&Path, StateDiskAmbiguous> {
        match self.devices.as_slice() {
            [one] => Ok(one),
            _ => Err(StateDiskAmbiguous {
                label: label.to_string(),
                devices: self.devices.clone(),
            }),
        }
    }
}

/// Polls `/sys/class/block` until a device labelled `label` shows up or
/// `timeout` passes.
pub fn wait_for_label(label: &str, timeout: Duration) -> Result<Matches, StateDiskNotFound> {
    let start = Instant::now();
    loop {
        let matches = scan(Path::new(SYS_CLASS_BLOCK), Path::new(DEV), label.as_bytes());
        if !matches.devices.is_empty() {
            return Ok(matches);
        }
        if start.elapsed() >= timeout {
            return Err(StateDiskNotFound {
                label: label.to_string(),
                waited: timeout,
                seen: matches.seen,
            });
        }
        sleep(POLL_INTERVAL);
    }
}

/// One look at every block device listed in `sys_class_block`, reading the
/// superblock from the node of the same name under `dev_dir`. Devices that
/// cannot be read yet (node not created, empty loop device) are skipped.
pub fn scan(sys_class_block: &Path, dev_dir: &Path, label: &[u8]) -> Matches {
    let mut seen: Vec<String> = fs::read_dir(sys_class_block)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    seen.sort();
    let devices = seen
        .iter()
        .map(|name| dev_dir.join(name))
        .filter(|node| {
            read_header(node)
                .ok()
                .is_some_and(|header| ext4_label(&header) == Some(label))
        })
        .collect();
    Matches { devices, seen }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_probe::PROBE_BYTES;

    fn ext4_image(label: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; PROBE_BYTES];
        h[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xEF53u16.to_le_bytes());
        h[1024 + 0x78..1024 + 0x78 + label.len()].copy_from_slice(label);
        h
    }

    /// A fake /sys/class/block and /dev: `devices` are (name, contents);
    /// `None` contents means the sysfs entry exists but the node does not yet.
    fn fake(devices: &[(&str, Option<Vec<u8>>)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("sys")).unwrap();
        fs::create_dir_all(root.path().join("dev")).unwrap();
        for (name, contents) in devices {
            fs::create_dir(root.path().join("sys").join(name)).unwrap();
            if let Some(bytes) = contents {
                fs::write(root.path().join("dev").join(name), bytes).unwrap();
            }
        }
        root
    }

    #[test]
    fn finds_the_labelled_device_among_others() {
        let root = fake(&[
            ("loop0", Some(Vec::new())),
            ("vda", Some(ext4_image(b"other"))),
            ("vdb", Some(ext4_image(b"harmony-state"))),
            ("vdc", None),
        ]);
        let m = scan(
            &root.path().join("sys"),
            &root.path().join("dev"),
            b"harmony-state",
        );
        assert_eq!(m.devices, vec![root.path().join("dev/vdb")]);
        assert_eq!(m.seen, vec!["loop0", "vda", "vdb", "vdc"]);
    }

    #[test]
    fn label_must_match_exactly() {
        let root = fake(&[("vda", Some(ext4_image(b"harmony-state2")))]);
        let m = scan(
            &root.path().join("sys"),
            &root.path().join("dev"),
            b"harmony-state",
        );
        assert!(m.devices.is_empty());
    }

    #[test]
    fn duplicates_come_back_in_name_order() {
        let root = fake(&[
            ("vdb", Some(ext4_image(b"s"))),
            ("vda1", Some(ext4_image(b"s"))),
        ]);
        let m = scan(&root.path().join("sys"), &root.path().join("dev"), b"s");
        assert_eq!(
            m.devices,
            vec![root.path().join("dev/vda1"), root.path().join("dev/vdb")]
        );
    }

    #[test]
    fn two_devices_with_the_label_are_refused_not_the_first_taken() {
        let root = fake(&[
            ("sda", Some(ext4_image(b"harmony-state"))),
            ("vdb", Some(ext4_image(b"harmony-state"))),
        ]);
        let m = scan(
            &root.path().join("sys"),
            &root.path().join("dev"),
            b"harmony-state",
        );
        let e = m.only("harmony-state").unwrap_err();
        assert_eq!(e.devices.len(), 2);
        assert!(
            e.to_string().starts_with(&format!(
                "2 block devices carry the ext4 label \"harmony-state\" ({} {}); refusing",
                root.path().join("dev/sda").display(),
                root.path().join("dev/vdb").display()
            )),
            "{e}"
        );
        let one = fake(&[("vdb", Some(ext4_image(b"harmony-state")))]);
        let m = scan(
            &one.path().join("sys"),
            &one.path().join("dev"),
            b"harmony-state",
        );
        assert_eq!(
            m.only("harmony-state"),
            Ok(one.path().join("dev/vdb").as_path())
        );
    }

    #[test]
    fn missing_sysfs_means_nothing_seen() {
        let m = scan(
            Path::new("/nonexistent/sys"),
            Path::new("/nonexistent/dev"),
            b"s",
        );
        assert_eq!(
            m,
            Matches {
                devices: vec![],
                seen: vec![]
            }
        );
    }

    #[test]
    fn not_found_message_names_label_wait_and_devices() {
        let e = StateDiskNotFound {
            label: "harmony-state".into(),
            waited: Duration::from_secs(30),
            seen: vec!["loop0".into(), "vda".into()],
        };
        assert_eq!(
            e.to_string(),
            "no block device with ext4 label \"harmony-state\" appeared within 30 s (block devices seen: loop0 vda)"
        );
    }
}
