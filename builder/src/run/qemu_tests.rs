//! `run` against real QEMU: the Debian cloud kernel with a busybox initramfs that plays
//! the agent. Needs qemu-system-x86_64 and /bin/busybox (static). The kernel is the default
//! base's (made once per machine in the Harmony cache, as `harmony build` makes it and the
//! vm-tests share it), or the vmlinuz `HARMONY_TEST_KERNEL` names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::build::default_base::tests::default_base_tree;
use crate::emit::initramfs::compress_cpio;
use crate::emit::rootfs::rootfs_image;
use crate::emit::squashfs::squashfs_image;
use crate::manifest::{Artifact, Manifest};
use crate::tree::{Entry, Meta, Tree};

const EPOCH: i64 = 1_700_000_000;

/// Prints the size of the root image it finds, reports first boot, echoes one line.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc
/bin/busybox mount -t proc proc /proc
echo "ROOTFS $(/bin/busybox wc -c < /harmony/root.squashfs)"
echo 'HARMONY-FIRSTBOOT {"status":"success","platform":"test"}'
read line
echo "ECHO:$line"
/bin/busybox poweroff -f
"#;

/// The kernel these tests boot (see the module doc).
fn kernel() -> Vec<u8> {
    match std::env::var_os("HARMONY_TEST_KERNEL") {
        Some(path) => std::fs::read(path).unwrap(),
        None => crate::kernel::find_kernel(default_base_tree())
            .unwrap()
            .vmlinuz
            .to_vec(),
    }
}

/// An output directory as `harmony build` would leave it; returns it and the squashfs size.
fn out_dir() -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("pxe")).unwrap();
    let mut artifacts = Vec::new();
    let mut put = |name: &str, kind: &str, bytes: &[u8]| {
        std::fs::write(dir.path().join("pxe").join(name), bytes).unwrap();
        artifacts.push(Artifact::of_bytes(&format!("pxe/{name}"), kind, bytes));
    };
    put("vmlinuz", "kernel", &kernel());

    let mut initramfs = Tree::new();
    initramfs.mkdir_all("bin", &Meta::new(0o755)).unwrap();
    initramfs
        .insert(
            "bin/busybox",
            Entry::file(std::fs::read("/bin/busybox").unwrap(), 0o755),
        )
        .unwrap();
    initramfs
        .insert("init", Entry::file(INIT.as_bytes().to_vec(), 0o755))
        .unwrap();
    put(
        "initramfs.img",
        "initramfs",
        &compress_cpio(&initramfs, EPOCH, "test initramfs").unwrap(),
    );

    let mut root = Tree::new();
    root.mkdir_all("etc", &Meta::new(0o755)).unwrap();
    root.insert(
        "etc/os-release",
        Entry::file(b"ID=harmony-test\n".to_vec(), 0o644),
    )
    .unwrap();
    let squashfs = squashfs_image(&root, EPOCH).unwrap();
    let squashfs_len = squashfs.len();
    put(
        "rootfs.img",
        "rootfs",
        &rootfs_image(Arc::new(squashfs), EPOCH).unwrap(),
    );

    let manifest = Manifest {
        name: "test".into(),
        version: "0".into(),
        cmdline: "console=ttyS0,115200 quiet".into(),
        artifacts,
        inputs: serde_json::json!({}),
    };
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    (dir, squashfs_len)
}

fn options(dir: &tempfile::TempDir) -> VmOptions {
    let mut opts = VmOptions::new(dir.path());
    opts.memory_mb = 512;
    opts.extra_cmdline = vec!["panic=-1".into()];
    opts.echo = std::env::var_os("HARMONY_TEST_ECHO").is_some();
    opts
}

#[test]
fn vm_reports_first_boot_and_echoes_what_we_send() {
    let (dir, squashfs_len) = out_dir();
    let start = Instant::now();
    let vm = Vm::boot(&options(&dir)).unwrap();
    let rootfs = vm
        .wait_for_line(|l| l.starts_with("ROOTFS "), Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        rootfs,
        format!("ROOTFS {squashfs_len}"),
        "both initrds unpacked into one rootfs"
    );
    let report = wait_for_first_boot(&vm, Duration::from_secs(60)).unwrap();
    println!("first boot line after {:.2?}", start.elapsed());
    assert_eq!(report.json["platform"], "test");
    vm.send("hello from the host\n").unwrap();
    assert_eq!(
        vm.wait_for_line(|l| l.starts_with("ECHO:"), Duration::from_secs(30))
            .unwrap(),
        "ECHO:hello from the host"
    );
    // The guest powers off: a further wait sees QEMU exit, not a timeout.
    let err = vm
        .wait_for_line(|l| l == "never printed", Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, RunError::Exited { .. }), "{err}");
    vm.shutdown().unwrap();
}

#[test]
fn run_returns_the_report_and_stops_the_vm() {
    let (dir, _) = out_dir();
    let first = run(&options(&dir), Duration::from_secs(120)).unwrap();
    assert_eq!(first.json["status"], "success");
    assert!(first.line.starts_with(FIRSTBOOT_MARKER));
}

#[test]
fn a_timeout_names_the_console_tail() {
    let (dir, _) = out_dir();
    let vm = Vm::boot(&options(&dir)).unwrap();
    vm.wait_for_line(
        |l| l.starts_with("HARMONY-FIRSTBOOT"),
        Duration::from_secs(60),
    )
    .unwrap();
    let err = vm
        .wait_for_line(|l| l == "never printed", Duration::from_millis(500))
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Timeout { tail, .. } if tail.iter().any(|l| l.starts_with("ROOTFS "))),
        "{err}"
    );
}
