//! The default image's UEFI disk with its verified root (docs/boot-flow.md, "Disk boot"), booted under
//! OVMF through `harmony run`'s disk path: `disk.raw` holds the ESP (UKI whose command line
//! carries the root hash), the root partition, its dm-verity hash partition and an empty
//! /var partition. Four boots: first boot (harmony-init formats /var, the agent applies
//! its config and stamps /var/lib/harmony), second boot of the same disk (the stamp
//! survived: already-done; /var checked by e2fsck first), a third after the disk grew (/var
//! grows with it), then a copy with one byte of the root changed, which harmony-init refuses
//! to boot, and last the disk with that copy attached as a second disk, which harmony-init
//! also refuses (which disk's /var is the node's would be a guess).

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harmony::emit::disk_image::VAR_BYTES;
use harmony::emit::verified_root::{
    ROOT_PARTITION_NAME, ROOT_TYPE_GUID, VAR_PARTITION_NAME, VAR_TYPE_GUID, VERITY_PARTITION_NAME,
    VERITY_TYPE_GUID,
};
use harmony::run::medium::{DiskFormat, MediumChoice};
use harmony::run::{wait_for_first_boot, Vm, VmOptions, INIT_ERROR_MARKER};
use harmony_vm_tests::{default_image, echo_requested, write_config};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(300);
/// How much the disk grows before the third boot.
const GROWTH: &str = "256M";
const GROWTH_BYTES: u64 = 256 << 20;

/// `image` (any format qemu-img reads, with its backing file) flattened to raw at `to`.
fn raw_copy(image: &Path, to: &Path) -> PathBuf {
    let converted = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(image)
        .arg(to)
        .status()
        .unwrap();
    assert!(converted.success());
    to.to_path_buf()
}

/// (start sector, size in sectors, type, name) of each partition, from `sfdisk --dump`.
fn partitions(disk: &Path) -> Vec<(u64, u64, String, String)> {
    let out = Command::new("sfdisk")
        .arg("--dump")
        .arg(disk)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains(" : start="))
        .map(|l| {
            let field = |key: &str| {
                l.split(" : ")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .find_map(|f| f.trim().strip_prefix(key)?.strip_prefix('='))
                    .map(|v| v.trim().trim_matches('"').to_string())
                    .unwrap_or_default()
            };
            (
                field("start").parse().unwrap(),
                field("size").parse().unwrap(),
                field("type").to_lowercase(),
                field("name"),
            )
        })
        .collect()
}

fn options(out: &Path, disk: &Path, state: Option<PathBuf>, config: &Path) -> VmOptions {
    VmOptions {
        ignition: Some(config.to_path_buf()),
        state,
        memory_mb: 768,
        echo: echo_requested(),
        medium: MediumChoice::File {
            path: disk.to_path_buf(),
            format: DiskFormat::Raw,
        },
        ..VmOptions::new(out)
    }
}

#[test]
fn verified_root_var_made_at_first_boot_persists_and_a_changed_root_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = default_image().to_path_buf();
    let disk = out.join("disk.raw");
    let layout = partitions(&disk);
    let names: Vec<_> = layout
        .iter()
        .map(|p| (p.3.as_str(), p.2.as_str()))
        .collect();
    assert_eq!(
        names[1..],
        [
            (ROOT_PARTITION_NAME, ROOT_TYPE_GUID),
            (VERITY_PARTITION_NAME, VERITY_TYPE_GUID),
            (VAR_PARTITION_NAME, VAR_TYPE_GUID)
        ],
        "{layout:?}"
    );
    assert_eq!(layout[3].1 * 512, VAR_BYTES);

    let config = write_config(
        tmp.path(),
        "cfg.ign",
        &json!({
            "ignition": {"version": "3.3.0"},
            "storage": {"files": [{"path": "/etc/harmony/hello.txt", "mode": 420,
                "contents": {"source": "data:,written%20at%20first%20boot%0A"}}]}
        }),
    );
    // The node's writes go to a qcow2 overlay over disk.raw, kept between the two boots.
    let state = tmp.path().join("node.qcow2");

    // First boot: /var is formatted, the agent applies the config and stamps /var/lib/harmony.
    let vm = Vm::boot(&options(&out, &disk, Some(state.clone()), &config)).expect("boot");
    let first = wait_for_first_boot(&vm, BOOT);
    let console = vm.tail().join("\n");
    vm.shutdown().unwrap();
    let first = first.unwrap_or_else(|e| panic!("first boot: {e}"));
    assert_eq!(first.json["status"], "success", "{}\n{console}", first.json);
    assert!(console.contains("verity: /dev/vda2 verified"), "{console}");
    assert!(
        console.contains("var: made an ext4 filesystem with a journal"),
        "{console}"
    );
    assert!(console.contains("(first boot)"), "{console}");

    // Second boot of the same disk: the stamp on /var survived.
    let vm = Vm::boot(&options(&out, &disk, Some(state.clone()), &config)).expect("boot");
    let second = wait_for_first_boot(&vm, BOOT);
    let console = vm.tail().join("\n");
    vm.shutdown().unwrap();
    let second = second.unwrap_or_else(|e| panic!("second boot: {e}"));
    assert_eq!(
        second.json["status"], "already-done",
        "{}\n{console}",
        second.json
    );
    assert!(console.contains("(kept)"), "{console}");
    // Clean, or its journal replayed: QEMU stopped without the guest unmounting /var.
    assert!(console.contains("var: e2fsck /dev/vda4: "), "{console}");

    // The root partition in the node's disk is the built one, byte for byte.
    let flat = raw_copy(&state, &tmp.path().join("node.raw"));
    let root = &layout[1];
    let read = |path: &Path| {
        let mut buf = vec![0u8; (root.1 * 512) as usize];
        std::fs::File::open(path)
            .unwrap()
            .read_exact_at(&mut buf, root.0 * 512)
            .unwrap();
        buf
    };
    assert!(read(&flat) == read(&disk), "the root partition was written");
    assert_eq!(
        partitions(&flat),
        layout,
        "the partition table is unchanged"
    );

    // The disk grows (as `qemu-img resize disk.qcow2 +…` would): the next boot grows /var's
    // partition and, online, its filesystem; what first boot wrote is still there.
    let resized = Command::new("qemu-img")
        .args(["resize", "-q"])
        .arg(&state)
        .arg(format!("+{GROWTH}"))
        .status()
        .unwrap();
    assert!(resized.success());
    let vm = Vm::boot(&options(&out, &disk, Some(state.clone()), &config)).expect("boot");
    let third = wait_for_first_boot(&vm, BOOT);
    let console = vm.tail().join("\n");
    vm.shutdown().unwrap();
    let third = third.unwrap_or_else(|e| panic!("boot after growing the disk: {e}"));
    assert_eq!(third.json["status"], "already-done", "{console}");
    assert!(console.contains("var: filesystem grown to"), "{console}");
    assert!(!console.contains("the filesystem did not"), "{console}");
    let grown = partitions(&raw_copy(&state, &tmp.path().join("grown.raw")));
    assert_eq!(grown[..3], layout[..3], "the image's partitions moved");
    assert_eq!(grown[3].3, VAR_PARTITION_NAME);
    assert!(
        grown[3].1 * 512 >= VAR_BYTES + GROWTH_BYTES - (1 << 20),
        "{grown:?}"
    );

    // One byte of the root changed (on a copy): harmony-init refuses to boot.
    let bad = tmp.path().join("corrupt.raw");
    std::fs::copy(&disk, &bad).unwrap();
    let offset = root.0 * 512 + root.1 * 512 / 3;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&bad)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, offset).unwrap();
    f.write_all_at(&[byte[0] ^ 0x01], offset).unwrap();
    drop(f);
    let vm = Vm::boot(&options(&out, &bad, None, &config)).expect("boot");
    let line = vm.wait_for_line(|l| l.contains(INIT_ERROR_MARKER), BOOT);
    let console = vm.tail().join("\n");
    vm.shutdown().unwrap();
    let line = line.unwrap_or_else(|e| panic!("no init error: {e}\n{console}"));
    assert!(
        line.contains(
            "dm-verity: root partition /dev/vda2 does not match harmony.verity.roothash="
        ),
        "{line}"
    );

    // A second disk carrying the image's partitions (that copy, as a stick would): its
    // harmony-var must never become this node's /var, so harmony-init refuses to choose.
    let vm = Vm::boot(&VmOptions {
        extra_drives: vec![bad.clone()],
        ..options(&out, &disk, None, &config)
    })
    .expect("boot");
    let line = vm.wait_for_line(|l| l.contains(INIT_ERROR_MARKER), BOOT);
    let console = vm.tail().join("\n");
    vm.shutdown().unwrap();
    let line = line.unwrap_or_else(|e| panic!("no init error with two disks: {e}\n{console}"));
    assert!(
        line.contains("2 partitions are named \"harmony-root\" (/dev/vda2 /dev/vdb2)")
            && line.contains("another disk carries this image's partitions"),
        "{line}"
    );
}
