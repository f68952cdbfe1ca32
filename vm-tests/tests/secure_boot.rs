//! Secure Boot end to end, under OVMF's Secure Boot firmware (q35, SMM, a fresh variable
//! store with the image's certificate enrolled in db, as `harmony run --secure-boot`
//! sets it up). The default recipe with `secure_boot: {key, cert}` (an RSA key made here
//! by openssl) is built once: its signed UKI boots, the stub refuses the extra kernel
//! argument from SMBIOS, and the agent reports `secure_boot: true`, the verity root hash
//! the UKI's command line carries and the image's name, version and OCI manifest digest.
//! The same disk with one byte of its UKI changed, or with the UKI's signature taken
//! away, is refused by the firmware: the stub never runs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use harmony::build::{build, default_base, BuildOptions};
use harmony::manifest::Manifest;
use harmony::run::medium::{DiskFormat, Format, MediumChoice};
use harmony::run::{wait_for_first_boot, Vm, VmOptions};
use harmony_vm_tests::{cache_dir, echo_requested, target_dir, write_config};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(300);
/// How long a refused disk gets to show the stub anyway: OVMF under TCG reaches the
/// boot option well within it (a signed UKI's stub line came after about 10 s here).
const REFUSED_WITHIN: Duration = Duration::from_secs(90);
const STUB_LINE: &str = "harmony-efi-stub: ";
/// EDK2's boot manager when LoadImage refuses the disk's UKI under Secure Boot, e.g.
/// `BdsDxe: failed to load Boot0001 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0): Access Denied`.
const FAILED_TO_LOAD: &str = "BdsDxe: failed to load ";
const DENIED: &str = ": Access Denied";

/// The signed image's output directory, built once per test process.
fn signed_image() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let work = target_dir().join("vm-tests").join("secure-boot");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).expect("creating target/vm-tests/secure-boot");
        let (key, cert) = (work.join("db.key"), work.join("db.crt"));
        let made = std::process::Command::new("openssl")
            .args([
                "req", "-x509", "-nodes", "-newkey", "rsa:2048", "-days", "3650",
            ])
            .args(["-subj", "/CN=Harmony vm-test db"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl (Debian package openssl) makes the signing key");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let base = default_base::ensure_default_base(&cache_dir(), 0)
            .unwrap_or_else(|e| panic!("making the default base: {e:#}"));
        // The default recipe, with its base by absolute path, signed, and only what boots.
        let recipe = harmony::recipe::DEFAULT_RECIPE
            .replace(
                "base: oci-layout:bases/debian-default:latest",
                &format!("base: oci-layout:{}:latest", base.display()),
            )
            .replace(
                "outputs: [pxe, oci, disk, qcow2, vmdk, ova, vaquero]",
                "outputs: [oci, disk]\nsecure_boot: {key: db.key, cert: db.crt}",
            );
        assert!(recipe.contains("secure_boot:") && recipe.contains(&base.display().to_string()));
        let recipe_path = work.join("secure.yaml");
        std::fs::write(&recipe_path, recipe).expect("writing the recipe");
        let out = work.join("out");
        build(&BuildOptions {
            recipe: Some(recipe_path),
            out: out.clone(),
            cache: cache_dir(),
            agent_bin: None,
            init_bin: None,
            source_date_epoch: 0,
        })
        .unwrap_or_else(|e| panic!("building the signed image: {e:#}"));
        out
    })
}

/// The first place `needle` occurs in `haystack`, checked to be the only one.
fn only(haystack: &[u8], needle: &[u8]) -> usize {
    let mut hits = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i);
    let first = hits
        .next()
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)));
    assert!(
        hits.next().is_none(),
        "{:?} occurs twice",
        String::from_utf8_lossy(needle)
    );
    first
}

/// The verity root hash on the UKI's command line, read from disk.raw's ESP.
fn root_hash_in_uki(disk: &[u8]) -> String {
    let key = b"harmony.verity.roothash=";
    let at = only(disk, key) + key.len();
    String::from_utf8(disk[at..at + 64].to_vec()).unwrap()
}

fn boot_options(out: &Path, disk: Option<PathBuf>) -> VmOptions {
    VmOptions {
        echo: echo_requested(),
        secure_boot: true,
        medium: match disk {
            Some(path) => MediumChoice::File {
                path,
                format: DiskFormat::Raw,
            },
            None => MediumChoice::Format(Format::Disk(DiskFormat::Raw)),
        },
        ..VmOptions::new(out)
    }
}

#[test]
fn a_signed_image_boots_with_secure_boot_enforced_and_the_report_proves_it() {
    let out = signed_image();
    let manifest = Manifest::load(out).unwrap();
    let oci = manifest
        .artifacts
        .iter()
        .find(|a| a.kind == "oci-layout")
        .unwrap();
    let disk = std::fs::read(out.join("disk.raw")).unwrap();
    let root_hash = root_hash_in_uki(&disk);

    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(
        tmp.path(),
        "sb.ign",
        &json!({"ignition": {"version": "3.3.0"}}),
    );
    let opts = VmOptions {
        ignition: Some(cfg),
        // Read from SMBIOS, outside the signed UKI: the stub must not take it.
        extra_cmdline: vec!["harmony.test-marker=unsigned".into()],
        ..boot_options(out, None)
    };
    let vm = Vm::boot(&opts).expect("starting QEMU");
    let refused = vm
        .wait_for_line(|l| l.contains(STUB_LINE), BOOT)
        .unwrap_or_else(|e| panic!("no line from the EFI stub: {e}"));
    assert!(
        refused.contains("Secure Boot is on: extra kernel arguments are not read"),
        "{refused}"
    );
    let booting = vm
        .wait_for_line(|l| l.contains(STUB_LINE), BOOT)
        .unwrap_or_else(|e| panic!("the stub did not boot the kernel: {e}"));
    assert!(booting.contains("booting Linux"), "{booting}");
    let report = wait_for_first_boot(&vm, BOOT).unwrap_or_else(|e| panic!("first boot: {e}"));
    vm.shutdown().unwrap();
    let r = &report.json;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["secure_boot"], true, "{r}");
    assert_eq!(r["verity_root_hash"], root_hash.as_str(), "{r}");
    assert_eq!(
        r["image"],
        json!({
            "name": manifest.name,
            "version": manifest.version,
            "manifest_digest": format!("sha256:{}", oci.sha256),
        }),
        "{r}"
    );
    println!("{refused}\n{booting}\n{}", report.line);
}

/// Boot `disk` under Secure Boot and return the console: the stub must never speak, and
/// the firmware must say it denied the image.
fn refused_by_the_firmware(out: &Path, disk: PathBuf) -> Vec<String> {
    let vm = Vm::boot(&boot_options(out, Some(disk))).expect("starting QEMU");
    let denied = |l: &str| l.contains(FAILED_TO_LOAD) && l.ends_with(DENIED);
    let seen = vm.wait_for_line(|l| l.contains(STUB_LINE) || denied(l), REFUSED_WITHIN);
    let tail = vm.tail();
    drop(vm);
    match seen {
        Ok(line) => assert!(
            denied(&line) && !line.contains(STUB_LINE),
            "the firmware started the UKI: {line}\n{}",
            tail.join("\n")
        ),
        Err(e) => panic!("no denial from the firmware: {e}"),
    }
    assert!(
        !tail.iter().any(|l| l.contains(STUB_LINE)),
        "{}",
        tail.join("\n")
    );
    tail
}

#[test]
fn a_tampered_or_unsigned_uki_is_refused_by_the_firmware() {
    let out = signed_image();
    let disk = std::fs::read(out.join("disk.raw")).unwrap();
    let tmp = tempfile::tempdir().unwrap();

    // Tampered: one digit of the verity root hash on the signed command line (what an
    // attacker would change to boot another root), the signature left as it was.
    let mut tampered = disk.clone();
    let at = only(&tampered, b"harmony.verity.roothash=") + b"harmony.verity.roothash=".len();
    tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
    let tampered_path = tmp.path().join("tampered.raw");
    std::fs::write(&tampered_path, &tampered).unwrap();
    let console = refused_by_the_firmware(out, tampered_path);
    println!("tampered:\n{}", console.join("\n"));

    // Unsigned: the UKI's certificate table entry cleared (the signature bytes stay, but
    // nothing points at them), as an unsigned build's UKI has it.
    let mut unsigned = disk;
    // Our PE writer's headers: MZ, e_lfanew 0x40, the PE signature right there.
    let mut header = b"MZ".to_vec();
    header.resize(0x3c, 0);
    header.extend_from_slice(&[0x40, 0, 0, 0]);
    header.extend_from_slice(b"PE\0\0");
    // The kernel has such a header too (in .linux and in the root): the UKI's is the
    // first on the disk, before its own .sbat section.
    let pe = unsigned
        .windows(header.len())
        .position(|w| w == header.as_slice())
        .expect("the UKI's PE header");
    assert!(
        pe < only(&unsigned, b"sbat,1,SBAT Version,"),
        "the first header is the UKI's"
    );
    let security_entry = pe + 0x40 + 4 + 20 + 112 + 8 * 4;
    assert_ne!(
        &unsigned[security_entry..security_entry + 8],
        &[0; 8],
        "the UKI is signed"
    );
    unsigned[security_entry..security_entry + 8].fill(0);
    let unsigned_path = tmp.path().join("unsigned.raw");
    std::fs::write(&unsigned_path, &unsigned).unwrap();
    let console = refused_by_the_firmware(out, unsigned_path);
    println!("unsigned:\n{}", console.join("\n"));
}
