//! The default image, booted for real in QEMU: the agent applies an Ignition config from
//! fw_cfg at first boot, reports exactly what it wrote, and never runs twice.

use std::time::Duration;

use harmony::run::{run, Vm, VmOptions};
use harmony_vm_tests::{default_image, echo_requested, sha256_hex, write_config, written};
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(240);

fn options(ignition: Option<std::path::PathBuf>, state: Option<std::path::PathBuf>) -> VmOptions {
    VmOptions {
        ignition,
        state,
        echo: echo_requested(),
        ..VmOptions::new(default_image())
    }
}

const GREET: &[u8] = b"#!/bin/sh\necho hello\n";

fn good_config() -> Value {
    json!({
        "ignition": {"version": "3.3.0"},
        "storage": {
            "files": [
                {"path": "/etc/harmony/hello.txt", "mode": 420,
                 "contents": {"source": "data:,Hello%20from%20Ignition%0A"}},
                {"path": "/usr/local/bin/greet", "mode": 493,
                 "contents": {"source": "data:;base64,IyEvYmluL3NoCmVjaG8gaGVsbG8K"}}
            ],
            "directories": [{"path": "/srv/data", "mode": 488}],
            "links": [{"path": "/etc/harmony/greeting", "target": "/etc/harmony/hello.txt"}]
        },
        "systemd": {"units": [{
            "name": "hello.service", "enabled": true,
            "contents": "[Unit]\nDescription=hello\n[Service]\nExecStart=/usr/local/bin/greet\n[Install]\nWantedBy=multi-user.target\n"
        }]}
    })
}

#[test]
fn first_boot_writes_files_directories_links_and_units_and_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "good.ign", &good_config());
    let first = run(&options(Some(cfg), None), BOOT).expect("first boot");
    let r = &first.json;
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(r["source"], "fw_cfg:opt/com.coreos/config", "{r}");

    let hello = written(r, "/etc/harmony/hello.txt");
    assert_eq!(hello["type"], "file");
    assert_eq!(hello["mode"], "0644");
    assert_eq!(hello["sha256"], sha256_hex(b"Hello from Ignition\n"));
    let greet = written(r, "/usr/local/bin/greet");
    assert_eq!(greet["mode"], "0755");
    assert_eq!(greet["sha256"], sha256_hex(GREET));
    let dir = written(r, "/srv/data");
    assert_eq!(
        (dir["type"].as_str(), dir["mode"].as_str()),
        (Some("directory"), Some("0750"))
    );
    let link = written(r, "/etc/harmony/greeting");
    assert_eq!(
        (link["type"].as_str(), link["target"].as_str()),
        (Some("link"), Some("/etc/harmony/hello.txt"))
    );
    let unit = written(r, "/etc/systemd/system/hello.service");
    assert_eq!(unit["type"], "file");
    let wants = written(
        r,
        "/etc/systemd/system/multi-user.target.wants/hello.service",
    );
    assert_eq!(wants["type"], "link");
    assert_eq!(r["units"][0]["name"], "hello.service");
    assert_eq!(r["units"][0]["enabled"], true);
}

#[test]
fn invalid_config_is_reported_and_the_console_stays_usable() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [
            {"path": "/etc/ok.txt", "contents": {"source": "data:,fine"}},
            {"path": "relative/path", "contents": {"source": "data:,x"}}
        ]}
    });
    let cfg = write_config(tmp.path(), "bad.ign", &bad);
    let vm = Vm::boot(&options(Some(cfg), None)).expect("boot");
    let line = vm
        .wait_for_line(|l| l.starts_with("HARMONY-FIRSTBOOT "), BOOT)
        .expect("report line");
    let report: Value =
        serde_json::from_str(line.trim_start_matches("HARMONY-FIRSTBOOT ")).unwrap();
    assert_eq!(report["status"], "failed", "{report}");
    let error = report["error"].as_str().unwrap();
    assert!(
        error.contains("storage.files[1].path"),
        "error names the field: {error}"
    );
    assert_eq!(
        report["written"],
        json!([]),
        "nothing half-written: {report}"
    );

    // The shell on the console still answers, and the valid file was not written either.
    vm.send("echo CONSOLE-$((6*7)); test -e /etc/ok.txt && echo OK-WRITTEN || echo OK-ABSENT\n")
        .unwrap();
    vm.wait_for_line(|l| l.contains("CONSOLE-42"), Duration::from_secs(60))
        .expect("console answers");
    vm.wait_for_line(|l| l.contains("OK-ABSENT"), Duration::from_secs(30))
        .expect("no half-applied config");
    vm.shutdown().unwrap();
}

#[test]
fn a_second_boot_of_the_same_disk_does_not_run_first_boot_again() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "good.ign", &good_config());
    let state = tmp.path().join("state.img");
    let first = run(&options(Some(cfg.clone()), Some(state.clone())), BOOT).expect("first boot");
    assert_eq!(first.json["status"], "success", "{}", first.json);
    let finished = first.json["finished_at"].clone();

    let vm = Vm::boot(&options(Some(cfg), Some(state))).expect("second boot");
    let line = vm
        .wait_for_line(|l| l.starts_with("HARMONY-FIRSTBOOT "), BOOT)
        .expect("report line");
    let second: Value =
        serde_json::from_str(line.trim_start_matches("HARMONY-FIRSTBOOT ")).unwrap();
    assert_eq!(second["status"], "already-done", "{second}");
    // What the first boot wrote is still there, and its report was not rewritten.
    vm.send("cat /etc/harmony/hello.txt; grep -c finished_at /var/lib/harmony/firstboot.json\n")
        .unwrap();
    vm.wait_for_line(
        |l| l.contains("Hello from Ignition"),
        Duration::from_secs(60),
    )
    .expect("file persisted");
    vm.send("cat /var/lib/harmony/firstboot.json; echo\n")
        .unwrap();
    let stored = vm
        .wait_for_line(
            |l| l.starts_with('{') && l.contains("finished_at"),
            Duration::from_secs(60),
        )
        .unwrap();
    let stored: Value = serde_json::from_str(stored.trim()).unwrap();
    assert_eq!(stored["finished_at"], finished);
    vm.shutdown().unwrap();
}
