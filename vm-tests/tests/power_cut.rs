//! Power cuts during first boot: the default image boots its PXE artifacts directly
//! (kernel + initramfs) with a `--state` disk, QEMU is killed (SIGKILL: nothing the
//! guest had not written reaches the disk) at a random point of first boot, and the same
//! state disk boots again. Every run must end in a complete, correct first boot: the
//! report says success (or already-done, when the cut came after the stamp), and every
//! file the config asks for is whole on the disk, as is /etc/passwd, /etc/shadow and
//! /etc/group and the stamp itself, read from the host with debugfs after the last boot.
//!
//! The seed is printed (`power-cut seed S`); `HARMONY_POWER_CUT_SEED=S` replays a run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use harmony::run::{wait_for_first_boot, Vm, VmOptions};
use harmony_vm_tests::{default_image, echo_requested, sha256_hex, write_config};
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(240);
const RUNS: u64 = 20;
/// harmony-init's last line before the image's init (and the agent) starts.
const SWITCHING: &str = "switching root to";

/// The files the config writes: (path, contents). Big enough that writing them takes a
/// while, and each different, so a mixed-up or half-written file shows.
fn files() -> Vec<(String, Vec<u8>)> {
    (0..12)
        .map(|i| {
            let line = format!("power-cut file {i}: the quick brown fox jumps over the lazy dog\n");
            // fw_cfg is read a byte at a time under TCG: keep the config small (~80 KB).
            let bytes = line.repeat(if i % 3 == 0 { 200 } else { 20 }).into_bytes();
            (format!("/etc/harmony/cut-{i:02}.txt"), bytes)
        })
        .collect()
}

fn config() -> Value {
    use base64::Engine;
    let files: Vec<Value> = files()
        .into_iter()
        .map(|(path, bytes)| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            json!({"path": path, "mode": 420,
                   "contents": {"source": format!("data:;base64,{b64}")}})
        })
        .collect();
    json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": "alice", "sshAuthorizedKeys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHarmonyPowerCutTestKeyOnlyForTests alice"]}]},
        "storage": {"files": files, "directories": [{"path": "/srv/cut", "mode": 493}]}
    })
}

/// splitmix64: one well-spread number per (seed, run), no dependency.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn options(config: &Path, state: &Path) -> VmOptions {
    VmOptions {
        ignition: Some(config.to_path_buf()),
        state: Some(state.to_path_buf()),
        memory_mb: 512,
        // TCG on a busy host can fail the kernel's IO-APIC timer check (a panic before
        // init): forty boots make that likely, and it is not what this test is about.
        extra_cmdline: vec!["no_timer_check".into()],
        echo: echo_requested(),
        ..VmOptions::new(default_image())
    }
}

/// A file in the state disk's overlay upper layer, read with debugfs (no mount, no root).
fn read_upper(disk: &Path, path: &str) -> Option<Vec<u8>> {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat /overlay/upper{path}"))
        .arg(disk)
        .output()
        .expect("debugfs (e2fsprogs) is installed");
    let err = String::from_utf8_lossy(&out.stderr);
    (out.status.success() && !err.contains("not found")).then_some(out.stdout)
}

/// Every file first boot must leave whole: the config's files byte for byte, the
/// account files parseable with the new user in them, the stamp a success.
fn check_disk(disk: &Path, what: &str) {
    for (path, bytes) in files() {
        let found = read_upper(disk, &path).unwrap_or_else(|| panic!("{what}: {path} missing"));
        assert!(
            found == bytes,
            "{what}: {path} is {} bytes (sha256 {}), expected {} bytes",
            found.len(),
            sha256_hex(&found),
            bytes.len()
        );
    }
    for (path, fields, user) in [
        ("/etc/passwd", 7, Some("alice:")),
        ("/etc/group", 4, None),
        ("/etc/shadow", 9, Some("alice:")),
    ] {
        // Unchanged account files stay in the image (the overlay's lower layer).
        let Some(text) = read_upper(disk, path) else {
            assert!(user.is_none(), "{what}: {path} missing");
            continue;
        };
        let text = String::from_utf8(text).unwrap_or_else(|_| panic!("{what}: {path} not text"));
        assert!(
            text.ends_with('\n') && text.starts_with("root:"),
            "{what}: {path} is empty or cut: {text:?}"
        );
        for line in text.lines() {
            assert_eq!(
                line.split(':').count(),
                fields,
                "{what}: {path} has a broken line {line:?}"
            );
        }
        if let Some(user) = user {
            assert!(
                text.lines().any(|l| l.starts_with(user)),
                "{what}: {path} lacks alice"
            );
        }
    }
    let stamp = read_upper(disk, "/var/lib/harmony/firstboot.json")
        .unwrap_or_else(|| panic!("{what}: no stamp"));
    let stamp: Value = serde_json::from_slice(&stamp)
        .unwrap_or_else(|e| panic!("{what}: the stamp is not JSON ({e})"));
    assert_eq!(stamp["status"], "success", "{what}: {stamp}");
}

#[test]
fn first_boot_survives_a_power_cut_at_any_point() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), "cut.ign", &config());

    // One uninterrupted first boot: how long it takes after the switch, and a check
    // that the disk check itself passes on a boot nobody cut.
    let reference = tmp.path().join("reference.raw");
    let vm = Vm::boot(&options(&config, &reference)).expect("boot");
    vm.wait_for_line(|l| l.contains(SWITCHING), BOOT)
        .unwrap_or_else(|e| panic!("no switch: {e}\n{}", vm.tail().join("\n")));
    let switched = Instant::now();
    let report = wait_for_first_boot(&vm, BOOT)
        .unwrap_or_else(|e| panic!("reference first boot: {e}\n{}", vm.tail().join("\n")));
    let window = switched.elapsed() + Duration::from_millis(300);
    vm.shutdown().unwrap();
    assert_eq!(report.json["status"], "success", "{}", report.json);
    check_disk(&reference, "reference boot");
    std::fs::remove_file(&reference).unwrap();

    let seed = std::env::var("HARMONY_POWER_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
    println!("power-cut seed {seed}: {RUNS} runs, cuts within {window:?} after `{SWITCHING}`");
    let mut outcomes = Vec::new();
    for run in 0..RUNS {
        let cut = Duration::from_micros(mix(seed ^ run) % window.as_micros().max(1) as u64);
        let state = tmp.path().join(format!("state-{run}.raw"));
        let vm = Vm::boot(&options(&config, &state)).expect("boot");
        vm.wait_for_line(|l| l.contains(SWITCHING), BOOT)
            .unwrap_or_else(|e| panic!("run {run}: no switch: {e}\n{}", vm.tail().join("\n")));
        std::thread::sleep(cut);
        let finished_before_cut = vm.tail().iter().any(|l| l.contains("HARMONY-FIRSTBOOT"));
        // Dropping the VM kills QEMU with SIGKILL: the power cut.
        drop(vm);

        let vm = Vm::boot(&options(&config, &state)).expect("boot");
        let again = wait_for_first_boot(&vm, BOOT);
        let tail = vm.tail().join("\n");
        vm.shutdown().unwrap();
        let again = again.unwrap_or_else(|e| {
            panic!("seed {seed} run {run} (cut {cut:?}): the boot after the cut: {e}\n{tail}")
        });
        let status = again.json["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            status == "success" || status == "already-done",
            "seed {seed} run {run} (cut {cut:?}): {}",
            again.json
        );
        check_disk(&state, &format!("seed {seed} run {run} (cut {cut:?})"));
        println!(
            "run {run:2}: cut {:>5} ms after the switch{} -> next boot {status}, files whole",
            cut.as_millis(),
            if finished_before_cut {
                " (after the report)"
            } else {
                ""
            }
        );
        outcomes.push(status);
        std::fs::remove_file(&state).unwrap();
    }
    println!(
        "power-cut seed {seed}: {} runs redid first boot, {} found it already done; all whole",
        outcomes.iter().filter(|s| *s == "success").count(),
        outcomes.iter().filter(|s| *s == "already-done").count()
    );
}
