//! `harmony run OUT --forward tcp:127.0.0.1:HOSTPORT-:GUESTPORT --exec CMD`, the way users
//! probe a booted node: the default image starts busybox httpd from its first-boot config,
//! CMD fetches a page through the host forward, and `harmony run` exits with CMD's status
//! after powering the VM off (on a PXE boot and on a UEFI qcow2 boot).

use std::net::TcpStream;
use std::process::Command;

use harmony_vm_tests::{default_image, free_port, harmony_cli};

const GUEST_PORT: u16 = 8080;
const PAGE: &str = "harmony-probe-answer";

/// cloud-config: a page, and busybox httpd serving it (detached from the agent's pipe).
fn user_data() -> String {
    format!(
        "#cloud-config\n\
         write_files:\n\
         \x20 - path: /var/www/probe.txt\n\
         \x20   content: \"{PAGE}\\n\"\n\
         runcmd:\n\
         \x20 - busybox httpd -p {GUEST_PORT} -h /var/www </dev/null >/dev/null 2>&1\n"
    )
}

/// A shell command that exits with `status` once the page came through the forward
/// (1 when it never did): the status proves both the probe and its propagation.
/// (curl, not busybox wget: Debian's static busybox wget crashes in its resolver.)
fn probe(host_port: u16, status: u8) -> String {
    format!(
        "for i in $(seq 60); do \
           body=$(curl -sf --max-time 5 http://127.0.0.1:{host_port}/probe.txt) && break; \
           sleep 1; \
         done; \
         echo \"probe: $body\"; \
         [ \"$body\" = {PAGE} ] && exit {status}; exit 1"
    )
}

/// `harmony run` with a forward and `--exec`; its exit code and stdout.
fn run_with_exec(format: &str, status: u8) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("user-data");
    std::fs::write(&config, user_data()).unwrap();
    let port = free_port();
    let out = Command::new(harmony_cli())
        .arg("run")
        .arg(default_image())
        .args(["--format", format, "--timeout", "240", "--quiet"])
        .arg("--ignition")
        .arg(&config)
        // busybox brings its NIC up only when asked; the forward needs the DHCP address.
        .args(["--append", "ip=dhcp"])
        .args(["--forward", &format!("tcp:127.0.0.1:{port}-:{GUEST_PORT}")])
        .args(["--exec", &probe(port, status)])
        .output()
        .expect("running harmony");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "harmony run --format {format}: {}\n{stdout}\n{stderr}",
        out.status
    );
    // The VM was powered off before harmony exited: nothing listens on the forward.
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "127.0.0.1:{port} still open after harmony run returned"
    );
    (out.status.code(), stdout)
}

#[test]
fn exec_probes_a_forwarded_guest_port_and_exits_with_its_status() {
    let (code, stdout) = run_with_exec("pxe", 0);
    assert_eq!(code, Some(0), "{stdout}");
    let report = stdout.find("HARMONY-FIRSTBOOT ").expect("report line");
    let answer = stdout
        .find(&format!("probe: {PAGE}"))
        .expect("the page came through the forward");
    assert!(
        report < answer,
        "the report comes before CMD's output: {stdout}"
    );

    // A non-zero status, on a UEFI disk boot: the forward is the same for every format.
    let (code, stdout) = run_with_exec("qcow2", 42);
    assert_eq!(code, Some(42), "{stdout}");
    assert!(stdout.contains(&format!("probe: {PAGE}")), "{stdout}");
}
