//! A disk boot of the default image (docs/boot-flow.md, "Disk boot"): the root on a GPT
//! partition verified by dm-verity, /var made by harmony-init at first boot in the
//! disk's free space. Three boots of one disk: first boot (the /var partition is
//! created, the agent applies its config), second boot (the agent finds its stamp on
//! /var: already-done), then a copy with one byte of the root changed, which
//! harmony-init must refuse to boot.
//!
//! Until the UEFI disk image (ESP + UKI) lands, the disk here is assembled from the
//! build's root image with `sfdisk` and booted with QEMU's direct kernel boot
//! (pxe/vmlinuz + pxe/initramfs.img, and the command line the UKI will carry).

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harmony::emit::verified_root::{
    VerifiedRoot, ROOT_PARTITION_NAME, ROOT_TYPE_GUID, VAR_PARTITION_NAME, VAR_TYPE_GUID,
    VERITY_PARTITION_NAME, VERITY_TYPE_GUID,
};
use harmony::manifest::Manifest;
use harmony::run::console::Console;
use harmony::run::{FIRSTBOOT_MARKER, INIT_ERROR_MARKER};
use harmony_vm_tests::{default_image, write_config};
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(240);
const MIB: u64 = 1 << 20;
/// Free space left after the image's partitions for /var.
const VAR_ROOM: u64 = 128 * MIB;

/// `/harmony/root.squashfs` out of pxe/rootfs.img (an uncompressed newc cpio).
fn root_image(out: &Path) -> Vec<u8> {
    let cpio = std::fs::read(out.join("pxe/rootfs.img")).expect("pxe/rootfs.img");
    let mut at = 0;
    while at + 110 <= cpio.len() {
        assert_eq!(&cpio[at..at + 6], b"070701", "newc header at {at}");
        let field = |i: usize| {
            let hex = std::str::from_utf8(&cpio[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
            usize::from_str_radix(hex, 16).unwrap()
        };
        let (size, name_len) = (field(6), field(11));
        let name = &cpio[at + 110..at + 110 + name_len - 1];
        let data = (at + 110 + name_len).div_ceil(4) * 4;
        if name == b"harmony/root.squashfs" {
            return cpio[data..data + size].to_vec();
        }
        at = (data + size).div_ceil(4) * 4;
    }
    panic!("no harmony/root.squashfs in pxe/rootfs.img");
}

/// A GPT disk: root and verity partitions (1 MiB aligned), then `VAR_ROOM` free.
fn assemble_disk(path: &Path, root: &VerifiedRoot) {
    let mib = |bytes: usize| (bytes as u64).div_ceil(MIB);
    let (root_mib, verity_mib) = (
        mib(root.root_partition.len()),
        mib(root.verity_partition.len()),
    );
    let total = (1 + root_mib + verity_mib) * MIB + VAR_ROOM;
    std::fs::File::create(path).unwrap().set_len(total).unwrap();
    let script = format!(
        "label: gpt\nfirst-lba: 2048\n\
         start=1MiB, size={root_mib}MiB, type={ROOT_TYPE_GUID}, name={ROOT_PARTITION_NAME}\n\
         size={verity_mib}MiB, type={VERITY_TYPE_GUID}, name={VERITY_PARTITION_NAME}\n"
    );
    let mut sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sfdisk (fdisk package)");
    sfdisk
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk failed");
    let disk = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    disk.write_all_at(&root.root_partition, MIB).unwrap();
    disk.write_all_at(&root.verity_partition, (1 + root_mib) * MIB)
        .unwrap();
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

struct Guest {
    child: Child,
    console: Console,
}

impl Guest {
    fn boot(out: &Path, disk: &Path, config: &Path, args: &[String]) -> Guest {
        let manifest = Manifest::load(out).expect("manifest");
        let append = format!(
            "{} {} ignition.platform.id=qemu",
            manifest.cmdline.trim(),
            args.join(" ")
        );
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-accel", "tcg", "-m", "768", "-smp", "1"])
            .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
            .args(["-no-reboot", "-nic", "none"])
            .arg("-kernel")
            .arg(out.join("pxe/vmlinuz"))
            .arg("-initrd")
            .arg(out.join("pxe/initramfs.img"))
            .args(["-append", &append])
            .arg("-drive")
            .arg(format!("file={},if=virtio,format=raw", disk.display()))
            .arg("-fw_cfg")
            .arg(format!(
                "name=opt/com.coreos/config,file={}",
                config.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("qemu-system-x86_64");
        let echo = std::env::var_os("HARMONY_TEST_ECHO").is_some();
        let console = Console::new(child.stdout.take().unwrap(), 60, echo);
        Guest { child, console }
    }

    /// The first line that is the agent's report or init's error.
    fn outcome(&self) -> String {
        self.console
            .wait_for_line(
                |l| l.contains(FIRSTBOOT_MARKER) || l.contains(INIT_ERROR_MARKER),
                BOOT,
            )
            .unwrap_or_else(|e| panic!("{e:?}; console tail:\n{}", self.console.tail().join("\n")))
    }

    fn report(&self) -> Value {
        let line = self.outcome();
        let at = line
            .find(FIRSTBOOT_MARKER)
            .unwrap_or_else(|| panic!("expected a report, got {line}\n{}", self.tail()));
        serde_json::from_str(&line[at + FIRSTBOOT_MARKER.len()..]).unwrap()
    }

    fn tail(&self) -> String {
        self.console.tail().join("\n")
    }

    /// SIGTERM: QEMU flushes the disk and exits.
    fn stop(mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
        }
        let _ = self.child.wait();
        self.console.join();
    }
}

impl Drop for Guest {
    /// A failed assertion must not leave QEMU running.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn verified_root_var_made_at_first_boot_persists_and_a_changed_root_is_refused() {
    let out = default_image();
    let tmp = tempfile::tempdir().unwrap();
    let image = root_image(out);
    let root = VerifiedRoot::of_image(&image);
    let args = root.kernel_args();
    let disk: PathBuf = tmp.path().join("disk.raw");
    assemble_disk(&disk, &root);
    let before = partitions(&disk);
    assert_eq!(before.len(), 2, "{before:?}");

    let config = write_config(
        tmp.path(),
        "cfg.ign",
        &json!({
            "ignition": {"version": "3.3.0"},
            "storage": {"files": [{"path": "/etc/harmony/hello.txt", "mode": 420,
                "contents": {"source": "data:,written%20at%20first%20boot%0A"}}]}
        }),
    );

    // First boot: /var is made, the agent applies the config and stamps /var/lib/harmony.
    let first = Guest::boot(out, &disk, &config, &args);
    let report = first.report();
    let console = first.tail();
    first.stop();
    assert_eq!(report["status"], "success", "{report}\n{console}");
    assert!(console.contains("verity: /dev/vda1 verified"), "{console}");
    assert!(
        console.contains("var: created partition \"harmony-var\""),
        "{console}"
    );

    // The guest's GPT edit: a third partition over the free space, the rest untouched.
    let after = partitions(&disk);
    assert_eq!(after[..2], before[..], "{after:?}");
    let var = &after[2];
    assert_eq!(
        (var.2.as_str(), var.3.as_str()),
        (VAR_TYPE_GUID, VAR_PARTITION_NAME)
    );
    assert_eq!(
        var.0,
        before[1].0 + before[1].1,
        "starts after the verity partition"
    );
    assert!(
        var.1 * 512 > VAR_ROOM - 2 * MIB,
        "spans the free space: {var:?}"
    );
    let sgdisk = Command::new("sgdisk").arg("-v").arg(&disk).output();
    if let Ok(out) = sgdisk {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("No problems found"), "sgdisk -v: {text}");
    }
    // The root partition was never written.
    let mut root_now = vec![0u8; root.root_partition.len()];
    std::fs::File::open(&disk)
        .unwrap()
        .read_exact_at(&mut root_now, MIB)
        .unwrap();
    assert!(root_now == root.root_partition, "root partition changed");

    // Second boot: the stamp on /var survived, so first boot does not run again.
    let second = Guest::boot(out, &disk, &config, &args);
    let report = second.report();
    let console = second.tail();
    second.stop();
    assert_eq!(report["status"], "already-done", "{report}\n{console}");
    assert!(!console.contains("var: created"), "{console}");

    // One byte of the root changed (on a copy): harmony-init refuses to boot.
    let bad = tmp.path().join("corrupt.raw");
    std::fs::copy(&disk, &bad).unwrap();
    let offset = MIB + image.len() as u64 / 2;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&bad)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, offset).unwrap();
    f.write_all_at(&[byte[0] ^ 0x01], offset).unwrap();
    drop(f);
    let third = Guest::boot(out, &bad, &config, &args);
    let line = third.outcome();
    third.stop();
    assert!(line.contains(INIT_ERROR_MARKER), "{line}");
    assert!(
        line.contains(
            "dm-verity: root partition /dev/vda1 does not match harmony.verity.roothash="
        ),
        "{line}"
    );
}
