//! Our disk-format writers beside the host tools doing the same work on the same input,
//! in the same run: the root squashfs (ours) vs `mksquashfs` (zstd 15) and
//! `mkfs.erofs` (lz4, lz4hc) on the same tree; `disk.qcow2` / `disk.vmdk` vs
//! `qemu-img convert` (qcow2; streamOptimized VMDK) on the same raw disk. Prints times,
//! ratios (ours / tool) and every size; asserts nothing about time.
//!
//!     cargo bench -p harmony-vm-tests --bench disk_formats
//!
//! The raw disk is the build's `disk.raw` when the default recipe emits one; otherwise a
//! stand-in (the root squashfs at 1 MiB in a 512 MiB sparse file) and the output says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use harmony::emit::disk_formats::{emit_ova, emit_qcow2, emit_vmdk, DiskFormatInputs};
use harmony::emit::squashfs::squashfs_image;
use harmony::manifest::Manifest;
use harmony::oci::{open_image, ImageRef};
use harmony::tree::unpack::apply_layer;
use harmony::tree::Tree;
use harmony_test_support::bench;
use harmony_vm_tests::{build_default, cache_dir, sha256_hex};

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn run(cmd: &mut Command) -> anyhow::Result<Duration> {
    let (out, took) = timed(|| cmd.output());
    let out = out.with_context(|| format!("{cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn row(what: &str, ours: Duration, ours_size: u64, tool: &str, theirs: Duration, their_size: u64) {
    println!(
        "{what:<8} ours {:>7.2} s {:>12} B | {tool:<28} {:>7.2} s {:>12} B | time ratio {:.2}, size ratio {:.3}",
        ours.as_secs_f64(),
        ours_size,
        theirs.as_secs_f64(),
        their_size,
        ours.as_secs_f64() / theirs.as_secs_f64(),
        ours_size as f64 / their_size.max(1) as f64,
    );
    bench::figure(
        &format!("{what}, same input (time)"),
        ours.as_secs_f64(),
        tool,
        theirs.as_secs_f64(),
        "s",
    );
    bench::figure(
        &format!("{what}, same input (size)"),
        ours_size as f64 / 1e6,
        tool,
        their_size as f64 / 1e6,
        "MB",
    );
}

fn main() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let out = work.path().join("out");
    let (report, build_time) = timed(|| build_default(&out));
    let report = report?;
    println!("default build: {:.2} s", build_time.as_secs_f64());
    let manifest = Manifest::load(&out)?;
    for a in &manifest.artifacts {
        println!("  artifact {:<28} {:>12} B", a.path, a.size);
    }

    // The root tree exactly as the build emits it: the OCI image's layers applied in order.
    let image = open_image(
        &ImageRef::Layout {
            dir: out.join("oci"),
            tag: None,
            digest: None,
        },
        &cache_dir(),
    )?;
    let mut tree = Tree::new();
    for layer in &image.layers {
        apply_layer(&mut tree, layer.open_tar()?)?;
    }
    println!(
        "root tree: {} MB of file data",
        tree.file_bytes() / 1_000_000
    );

    // The same tree on disk for the host tools: unpacked from the squashfs we built.
    let rootfs = out.join(&manifest.artifact(&out, "rootfs")?.path);
    let cpio_dir = work.path().join("rootfs-cpio");
    std::fs::create_dir_all(&cpio_dir)?;
    run(Command::new("sh")
        .arg("-c")
        .arg(format!("cpio -id --quiet < '{}'", rootfs.display()))
        .current_dir(&cpio_dir))?;
    let root_squashfs = cpio_dir.join("harmony/root.squashfs");
    let tree_dir = work.path().join("tree");
    run(Command::new("unsquashfs")
        .args(["-q", "-n", "-no-xattrs", "-d"])
        .arg(&tree_dir)
        .arg(&root_squashfs))?;

    println!("\n-- root filesystem image, same tree --");
    let (ours, ours_time) = timed(|| squashfs_image(&tree, 0));
    let ours = ours?;
    let mksquashfs = work.path().join("mksquashfs.sqfs");
    let mk_time = run(Command::new("mksquashfs")
        .arg(&tree_dir)
        .arg(&mksquashfs)
        .args(["-comp", "zstd", "-Xcompression-level", "15", "-b", "131072"])
        .args([
            "-noappend",
            "-no-xattrs",
            "-quiet",
            "-no-progress",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ]))?;
    row(
        "squashfs",
        ours_time,
        ours.len() as u64,
        "mksquashfs zstd-15 (all cores)",
        mk_time,
        size(&mksquashfs),
    );

    let one_core = work.path().join("mksquashfs-1.sqfs");
    let mk1_time = run(Command::new("mksquashfs")
        .arg(&tree_dir)
        .arg(&one_core)
        .args([
            "-comp",
            "zstd",
            "-Xcompression-level",
            "15",
            "-b",
            "131072",
            "-processors",
            "1",
        ])
        .args(["-noappend", "-no-xattrs", "-quiet", "-no-progress"]))?;
    row(
        "squashfs",
        ours_time,
        ours.len() as u64,
        "mksquashfs zstd-15 (1 core)",
        mk1_time,
        size(&one_core),
    );
    for (label, args) in [
        ("mkfs.erofs lz4", vec!["-zlz4"]),
        ("mkfs.erofs lz4hc", vec!["-zlz4hc"]),
    ] {
        let erofs = work.path().join("root.erofs");
        let _ = std::fs::remove_file(&erofs);
        let took = run(Command::new("mkfs.erofs")
            .args(&args)
            .args([
                "-T0",
                "-U",
                "00000000-0000-0000-0000-000000000000",
                "--quiet",
            ])
            .arg(&erofs)
            .arg(&tree_dir))?;
        row(
            "erofs",
            ours_time,
            ours.len() as u64,
            label,
            took,
            size(&erofs),
        );
    }

    println!("\n-- disk image conversions, same raw disk --");
    let (raw, raw_label): (PathBuf, &str) = match manifest
        .artifacts
        .iter()
        .find(|a| a.path == "disk.raw")
    {
        Some(_) => (out.join("disk.raw"), "the build's disk.raw"),
        None => {
            let raw = work.path().join("disk.raw");
            let f = std::fs::File::create(&raw)?;
            f.set_len(512 << 20)?;
            drop(f);
            run(Command::new("dd")
                .arg(format!("if={}", root_squashfs.display()))
                .arg(format!("of={}", raw.display()))
                .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]))?;
            (raw, "stand-in: root squashfs at 1 MiB in a 512 MiB sparse file (no disk.raw in this build)")
        }
    };
    println!("raw disk: {raw_label}, {} B", size(&raw));
    let conv = work.path().join("conv");
    std::fs::create_dir_all(&conv)?;
    std::fs::copy(&raw, conv.join("disk.raw"))?;
    let raw_sha = sha256_hex(&std::fs::read(conv.join("disk.raw"))?);
    let inputs = DiskFormatInputs {
        out_dir: &conv,
        raw: "disk.raw",
        raw_sha256: &raw_sha,
        name: &report.manifest.name,
        version: &report.manifest.version,
        source_date_epoch: 0,
        secure_boot: false,
    };
    let (q, q_time) = timed(|| emit_qcow2(&inputs));
    let q = q?;
    let theirs_q = work.path().join("qemu-img.qcow2");
    let tq_time = run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(conv.join("disk.raw"))
        .arg(&theirs_q))?;
    row(
        "qcow2",
        q_time,
        q.size,
        "qemu-img convert -O qcow2",
        tq_time,
        size(&theirs_q),
    );

    let (v, v_time) = timed(|| emit_vmdk(&inputs));
    let (v, summary) = v?;
    let theirs_v = work.path().join("qemu-img.vmdk");
    let tv_time = run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "vmdk", "-o"])
        .arg("subformat=streamOptimized,adapter_type=lsilogic,hwversion=13")
        .arg(conv.join("disk.raw"))
        .arg(&theirs_v))?;
    row(
        "vmdk",
        v_time,
        v.size,
        "qemu-img convert streamOpt.",
        tv_time,
        size(&theirs_v),
    );

    let (ova, ova_time) = timed(|| emit_ova(&inputs, Some(&summary)));
    let ova = ova?;
    println!(
        "ova      ours {:>7.2} s {:>12} B (ovf + mf + the vmdk above; no host tool to compare)",
        ova_time.as_secs_f64(),
        ova.size
    );
    Ok(())
}
