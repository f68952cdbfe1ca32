//! cloud-init NoCloud for real: a vfat `cidata` seed made by cloud-init's own
//! `cloud-localds`, attached to the default image as a second disk with no fw_cfg config
//! and nothing on the kernel command line. The agent must find the seed by itself, apply
//! the cloud-config at first boot (files, a user with an ssh key, the host name), run its
//! runcmd after the files, and report all of it in HARMONY-FIRSTBOOT.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harmony::run::{Vm, VmOptions};
use harmony_vm_tests::{ask, default_image, echo_requested, sha256_hex, written, SHELL_ANSWER};
use serde_json::Value;

const BOOT: Duration = Duration::from_secs(240);

const NOTE: &str = "written by cloud-config\n";
const SCRIPT: &str = "#!/bin/sh\necho hello from write_files\n";
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHarmonyNoCloudTestKeyNotARealOne00000000 ops@example";

fn user_data() -> String {
    format!(
        "#cloud-config
hostname: nocloud-node
write_files:
  - path: /etc/harmony/note.txt
    content: |
      {note}
    permissions: '0640'
  - path: /usr/local/bin/hello
    encoding: b64
    content: {script_b64}
    permissions: '0755'
users:
  - name: ops
    shell: /bin/sh
    ssh_authorized_keys:
      - {SSH_KEY}
packages: [htop]
runcmd:
  - [sh, -c, 'hostname > /var/lib/runcmd-marker; /usr/local/bin/hello >> /var/lib/runcmd-marker']
  - echo runcmd-says-hi
",
        note = NOTE.trim_end(),
        script_b64 = base64(SCRIPT.as_bytes()),
    )
}

/// RFC 4648 base64, so the test states its inputs without another dependency.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `cloud-localds -f vfat seed.img user-data meta-data`, as an operator would make it.
fn seed(dir: &Path, user_data: &str, meta_data: &str) -> PathBuf {
    std::fs::write(dir.join("user-data"), user_data).unwrap();
    std::fs::write(dir.join("meta-data"), meta_data).unwrap();
    let img = dir.join("seed.img");
    let out = Command::new("cloud-localds")
        .args(["-f", "vfat"])
        .arg(&img)
        .arg(dir.join("user-data"))
        .arg(dir.join("meta-data"))
        .output()
        .expect("cloud-localds (cloud-image-utils; scripts/setup-host.sh installs it)");
    assert!(out.status.success(), "cloud-localds: {out:?}");
    img
}

fn boot_with_seed(seed: PathBuf) -> (Vm, Value) {
    let opts = VmOptions {
        ignition: None,
        // `harmony run` always puts ignition.platform.id=qemu on the command line, and the
        // last value wins: name the platform here; detection is checked in the guest below.
        extra_cmdline: vec!["ignition.platform.id=nocloud".to_string()],
        extra_drives: vec![seed],
        echo: echo_requested(),
        ..VmOptions::new(default_image())
    };
    let vm = Vm::boot(&opts).expect("boot");
    let line = vm
        .wait_for_line(|l| l.starts_with("HARMONY-FIRSTBOOT "), BOOT)
        .unwrap_or_else(|e| panic!("no report line: {e}\n{}", vm.tail().join("\n")));
    let report: Value =
        serde_json::from_str(line.trim_start_matches("HARMONY-FIRSTBOOT ")).unwrap();
    (vm, report)
}

#[test]
fn a_cidata_seed_is_found_applied_and_its_runcmd_runs_after_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let ud = user_data();
    let img = seed(
        tmp.path(),
        &ud,
        "instance-id: iid-nocloud-vm-1\nlocal-hostname: from-meta-data\n",
    );
    let (vm, r) = boot_with_seed(img);

    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["platform"], "nocloud", "{r}");
    let source = r["source"].as_str().unwrap();
    assert!(source.starts_with("nocloud:/dev/vd"), "{source}");
    assert_eq!(r["config_sha256"], sha256_hex(ud.as_bytes()), "{r}");

    let note = written(&r, "/etc/harmony/note.txt");
    assert_eq!(
        (note["type"].as_str(), note["mode"].as_str()),
        (Some("file"), Some("0640"))
    );
    assert_eq!(note["sha256"], sha256_hex(NOTE.as_bytes()));
    let hello = written(&r, "/usr/local/bin/hello");
    assert_eq!(hello["mode"], "0755");
    assert_eq!(hello["sha256"], sha256_hex(SCRIPT.as_bytes()));
    // user-data's hostname wins over meta-data's local-hostname, as in cloud-init.
    assert_eq!(
        written(&r, "/etc/hostname")["sha256"],
        sha256_hex(b"nocloud-node\n")
    );
    written(&r, "/etc/passwd");

    let warned: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["path"].as_str())
        .collect();
    assert_eq!(warned, ["packages"], "{r}");
    let runcmd = &r["commands"][0];
    assert_eq!(
        (
            runcmd["name"].as_str(),
            runcmd["stage"].as_str(),
            runcmd["outcome"].as_str(),
            runcmd["exit_code"].as_i64()
        ),
        (Some("runcmd"), Some("late"), Some("exited"), Some(0)),
        "{r}"
    );
    assert_eq!(runcmd["output_tail"], "runcmd-says-hi\n", "{r}");

    // The live system: the host name took effect, runcmd ran after the files were there
    // (it ran /usr/local/bin/hello and saw the new host name), the user and key exist.
    assert_eq!(ask(&vm, "echo HN=$(hostname)", "HN="), "HN=nocloud-node");
    assert_eq!(
        ask(
            &vm,
            "echo MARK=$(tr '\\n' '|' < /var/lib/runcmd-marker)",
            "MARK="
        ),
        "MARK=nocloud-node|hello from write_files|"
    );
    assert_eq!(
        ask(
            &vm,
            "echo NOTE=$(sha256sum /etc/harmony/note.txt | cut -c1-64)",
            "NOTE="
        ),
        format!("NOTE={}", sha256_hex(NOTE.as_bytes()))
    );
    let passwd = ask(&vm, "echo PW=$(grep '^ops:' /etc/passwd)", "PW=");
    assert!(
        passwd.starts_with("PW=ops:x:") && passwd.ends_with(":/home/ops:/bin/sh"),
        "{passwd}"
    );
    let keys = ask(
        &vm,
        "echo KEYS=$(cat /home/ops/.ssh/authorized_keys* /home/ops/.ssh/authorized_keys.d/* 2>/dev/null | sort -u)",
        "KEYS=",
    );
    assert_eq!(keys, format!("KEYS={SSH_KEY}"));

    // Detection on this machine's real devices: the agent again, seeing the guest's /sys
    // and /dev but an empty kernel command line, into a scratch root.
    vm.send(
        "mkdir -p /tmp/h/proc /tmp/r/etc && : > /tmp/h/proc/cmdline && ln -s /sys /tmp/h/sys \
         && ln -s /dev /tmp/h/dev && cp /etc/passwd /etc/group /tmp/r/etc/ \
         && harmony-agent firstboot --root /tmp/r --host /tmp/h 2>/dev/null\n",
    )
    .unwrap();
    let line = vm
        .wait_for_line(|l| l.starts_with("HARMONY-FIRSTBOOT "), SHELL_ANSWER)
        .unwrap_or_else(|e| panic!("detection run: {e}\n{}", vm.tail().join("\n")));
    let again: Value = serde_json::from_str(line.trim_start_matches("HARMONY-FIRSTBOOT ")).unwrap();
    assert_eq!(
        (again["platform"].as_str(), again["source"].as_str()),
        (Some("nocloud"), Some(source)),
        "{again}"
    );
    assert_eq!(again["status"], "success", "{again}");
    assert_eq!(again["commands"][0]["outcome"], "skipped", "{again}");
    vm.shutdown().unwrap();
}
