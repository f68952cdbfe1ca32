//! The disk formats boot: one build of the default image, its raw disk converted by our
//! writers into qcow2, a streamOptimized VMDK and an OVA; qcow2 and the VMDK taken out of
//! the OVA (byte for byte `disk.vmdk`) each boot under OVMF through `harmony run`'s disk
//! path to the agent's first-boot report, with an Ignition config through fw_cfg.
//!
//! The raw disk is the build's `disk.raw` when the default recipe emits one. Until it does
//! (the UKI disk is being built elsewhere), the test makes a stand-in that boots the same
//! image the same way under UEFI: a FAT disk with the kernel, both initrds and a
//! `startup.nsh` that OVMF's shell runs (`vmlinuz initrd=… console=ttyS0 harmony.root=…`);
//! the output says which one it booted.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harmony::emit::disk_formats::{emit_ova, emit_qcow2, emit_vmdk, DiskFormatInputs};
use harmony::emit::ova::vmdk_member_name;
use harmony::manifest::Manifest;
use harmony::run::medium::{DiskFormat, MediumChoice};
use harmony::run::{run, VmOptions};
use harmony_vm_tests::{default_image, sha256_hex, write_config};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(300);

fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?}: {text}");
    text
}

/// A FAT disk (no partition table; OVMF mounts it as FS0:) whose startup.nsh boots the
/// image's PXE artifacts through the kernel's EFI stub.
fn uefi_stand_in(out: &Path, manifest: &Manifest, dir: &Path) -> PathBuf {
    let artifact = |kind: &str| out.join(&manifest.artifact(out, kind).unwrap().path);
    let kernel = artifact("kernel");
    let initrd = dir.join("initrd.img");
    let mut joined = std::fs::read(artifact("initramfs")).unwrap();
    joined.extend(std::fs::read(artifact("rootfs")).unwrap());
    std::fs::write(&initrd, &joined).unwrap();
    let nsh = dir.join("startup.nsh");
    std::fs::write(
        &nsh,
        format!(
            "\\vmlinuz initrd=\\initrd.img {} harmony.root=/harmony/root.squashfs\r\n",
            manifest.cmdline
        ),
    )
    .unwrap();
    let raw = dir.join("disk.raw");
    let kib = (std::fs::metadata(&kernel).unwrap().len() + joined.len() as u64) / 1024 + 8192;
    sh(Command::new("mkfs.vfat")
        .arg("-C")
        .arg(&raw)
        .arg(kib.to_string()));
    sh(Command::new("mcopy")
        .arg("-i")
        .arg(&raw)
        .arg(&kernel)
        .arg("::/vmlinuz"));
    sh(Command::new("mcopy")
        .arg("-i")
        .arg(&raw)
        .arg(&initrd)
        .arg("::/initrd.img"));
    sh(Command::new("mcopy")
        .arg("-i")
        .arg(&raw)
        .arg(&nsh)
        .arg("::/startup.nsh"));
    raw
}

fn boot(image: &Path, format: DiskFormat, ignition: &Path) -> serde_json::Value {
    let opts = VmOptions {
        ignition: Some(ignition.to_path_buf()),
        echo: std::env::var_os("HARMONY_TEST_ECHO").is_some(),
        medium: MediumChoice::File {
            path: image.to_path_buf(),
            format,
        },
        ..VmOptions::new(default_image())
    };
    let first_boot = run(&opts, BOOT)
        .unwrap_or_else(|e| panic!("booting {} ({format:?}): {e}", image.display()));
    first_boot.json
}

#[test]
fn qcow2_and_the_ovas_vmdk_boot_to_first_boot() {
    let out = default_image();
    let manifest = Manifest::load(out).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let raw = match manifest.artifacts.iter().find(|a| a.path == "disk.raw") {
        Some(_) => {
            println!("booting the build's disk.raw, converted");
            out.join("disk.raw")
        }
        None => {
            println!(
                "NOTE: this build has no disk.raw yet: booting a UEFI stand-in (FAT + startup.nsh)"
            );
            uefi_stand_in(out, &manifest, dir.path())
        }
    };
    let conv = dir.path().join("conv");
    std::fs::create_dir_all(&conv).unwrap();
    std::fs::copy(&raw, conv.join("disk.raw")).unwrap();
    let raw_sha = sha256_hex(&std::fs::read(conv.join("disk.raw")).unwrap());
    let inputs = DiskFormatInputs {
        out_dir: &conv,
        raw: "disk.raw",
        raw_sha256: &raw_sha,
        name: &manifest.name,
        version: &manifest.version,
        source_date_epoch: 0,
    };
    emit_qcow2(&inputs).unwrap();
    let (_, vmdk_summary) = emit_vmdk(&inputs).unwrap();
    let ova = emit_ova(&inputs, Some(&vmdk_summary)).unwrap();

    // Both read back as the raw disk in qemu-img's eyes.
    let raw_arg = conv.join("disk.raw");
    for (file, format) in [("disk.qcow2", "qcow2"), ("disk.vmdk", "vmdk")] {
        let image = conv.join(file);
        let text = sh(Command::new("qemu-img")
            .args(["check", "-f", format])
            .arg(&image));
        assert!(text.contains("No errors were found"), "{text}");
        let text = sh(Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", format])
            .arg(&raw_arg)
            .arg(&image));
        assert!(text.contains("Images are identical"), "{text}");
    }

    // The VMDK inside the OVA is disk.vmdk, byte for byte.
    let mut archive = tar::Archive::new(std::fs::File::open(conv.join(&ova.path)).unwrap());
    let member = vmdk_member_name(&manifest.name);
    let mut from_ova = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some(member.as_str()) {
            entry.read_to_end(&mut from_ova).unwrap();
        }
    }
    assert_eq!(
        from_ova,
        std::fs::read(conv.join("disk.vmdk")).unwrap(),
        "{member} in the OVA differs from disk.vmdk"
    );
    let extracted = dir.path().join(&member);
    std::fs::write(&extracted, &from_ova).unwrap();

    let config = json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [{
            "path": "/etc/disk-format-test",
            "contents": {"source": "data:,booted%20from%20a%20disk%20image%0A"},
            "mode": 420
        }]}
    });
    let ignition = write_config(dir.path(), "disk.ign", &config);
    for (image, format) in [
        (conv.join("disk.qcow2"), DiskFormat::Qcow2),
        (extracted, DiskFormat::Vmdk),
    ] {
        let report = boot(&image, format, &ignition);
        assert_eq!(report["status"], "success", "{format:?}: {report}");
        let written = report["written"].to_string();
        assert!(
            written.contains("/etc/disk-format-test"),
            "{format:?}: {report}"
        );
        println!(
            "{format:?} ({}) booted: {}",
            image.display(),
            report["source"]
        );
    }
}
