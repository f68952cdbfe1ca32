//! The disk formats boot: one build of the default image, which emits disk.raw (GPT, ESP
//! with a UKI) and, converted from it by our writers, disk.qcow2, a streamOptimized
//! disk.vmdk and NAME.ova. qemu-img checks both conversions against disk.raw; the VMDK in
//! the OVA is disk.vmdk byte for byte; disk.qcow2 and the VMDK taken out of the OVA each
//! boot under OVMF through `harmony run`'s disk path to the agent's first-boot report,
//! with an Ignition config through fw_cfg.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harmony::emit::ova::vmdk_member_name;
use harmony::manifest::Manifest;
use harmony::run::medium::{DiskFormat, MediumChoice};
use harmony::run::{run, VmOptions};
use harmony_vm_tests::{default_image, echo_requested, write_config};
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

fn boot(image: &Path, format: DiskFormat, ignition: &Path) -> serde_json::Value {
    let opts = VmOptions {
        ignition: Some(ignition.to_path_buf()),
        echo: echo_requested(),
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
    let ova_name = format!("{}.ova", manifest.name);
    for (path, kind) in [
        ("disk.raw", "disk"),
        ("disk.qcow2", "qcow2"),
        ("disk.vmdk", "vmdk"),
        (ova_name.as_str(), "ova"),
    ] {
        let a = manifest.artifact(out, kind).unwrap();
        assert_eq!(a.path, path);
        assert_eq!(std::fs::metadata(out.join(path)).unwrap().len(), a.size);
    }

    // Both conversions read back as disk.raw in qemu-img's eyes.
    let raw = out.join("disk.raw");
    for (file, format) in [("disk.qcow2", "qcow2"), ("disk.vmdk", "vmdk")] {
        let image = out.join(file);
        let text = sh(Command::new("qemu-img")
            .args(["check", "-f", format])
            .arg(&image));
        assert!(text.contains("No errors were found"), "{text}");
        let text = sh(Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", format])
            .arg(&raw)
            .arg(&image));
        assert!(text.contains("Images are identical"), "{text}");
    }

    // The VMDK inside the OVA is disk.vmdk, byte for byte.
    let dir = tempfile::tempdir().unwrap();
    let mut archive = tar::Archive::new(std::fs::File::open(out.join(&ova_name)).unwrap());
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
        std::fs::read(out.join("disk.vmdk")).unwrap(),
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
        (out.join("disk.qcow2"), DiskFormat::Qcow2),
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
