//! The default image's `disk.raw` boots by itself under UEFI: OVMF finds
//! `\EFI\BOOT\BOOTX64.EFI` on the GPT disk's ESP, our EFI stub starts the kernel with
//! the initrd and command line from its own sections, and the agent applies an Ignition
//! config from fw_cfg and reports first boot. No -kernel, no -initrd, no -append.

use std::time::Duration;

use harmony::run::medium::{DiskFormat, Format, MediumChoice};
use harmony::run::{wait_for_first_boot, Vm, VmOptions};
use harmony_vm_tests::{default_image, echo_requested, write_config};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(300);

#[test]
fn disk_raw_boots_under_ovmf_through_our_uki() {
    let out = default_image();
    let manifest = harmony::manifest::Manifest::load(out).unwrap();
    let disk = manifest
        .artifacts
        .iter()
        .find(|a| a.path == "disk.raw")
        .unwrap_or_else(|| {
            panic!(
                "the default recipe emits disk.raw: {:?}",
                manifest.artifacts
            )
        });
    assert_eq!(disk.kind, "disk");

    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "uefi.ign",
        &json!({
            "ignition": {"version": "3.3.0"},
            "storage": {"files": [{
                "path": "/etc/booted-by",
                "mode": 420,
                "contents": {"source": "data:,uefi%20disk%0A"}
            }]}
        }),
    );
    let opts = VmOptions {
        ignition: Some(cfg),
        echo: echo_requested(),
        medium: MediumChoice::Format(Format::Disk(DiskFormat::Raw)),
        ..VmOptions::new(out)
    };
    let vm = Vm::boot(&opts).expect("starting QEMU");
    // Our stub, not some other loader, started the kernel (it prints before StartImage).
    let stub = vm
        .wait_for_line(|l| l.contains("harmony-efi-stub: "), BOOT)
        .unwrap_or_else(|e| panic!("no line from the EFI stub: {e}"));
    assert!(
        stub.contains("harmony-efi-stub: booting Linux: kernel "),
        "the stub reported a failure: {stub}"
    );
    let report = wait_for_first_boot(&vm, BOOT).unwrap_or_else(|e| panic!("first boot: {e}"));
    vm.shutdown().unwrap();
    let r = &report.json;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["source"], "fw_cfg:opt/com.coreos/config", "{r}");
    assert!(
        r["written"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["path"] == "/etc/booted-by"),
        "{r}"
    );
    println!("{stub}\n{}", report.line);
}
