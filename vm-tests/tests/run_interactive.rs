//! `harmony run OUT --interactive`: refused without a terminal on stdin; on a terminal (a
//! pty made by util-linux `script`), the default busybox image boots, its first-boot
//! report goes by, the console is handed over, a command typed there runs in the guest's
//! shell, and Ctrl-A X (QEMU's own mux) ends QEMU and harmony with it.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use harmony::run::interactive::HANDOVER_NOTE;
use harmony_vm_tests::{default_image, harmony_cli};

#[test]
fn interactive_is_refused_when_stdin_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(harmony_cli())
        .arg("run")
        .arg(dir.path())
        .arg("--interactive")
        .stdin(Stdio::null())
        .output()
        .expect("running harmony");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--interactive needs a terminal on stdin"),
        "{stderr}"
    );
}

/// What a child has printed so far, and whether it is done printing.
type Seen = Arc<(Mutex<(Vec<u8>, bool)>, Condvar)>;

fn wait_for(seen: &Seen, text: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let (lock, cond) = &**seen;
    let mut state = lock.lock().unwrap();
    loop {
        let shown = String::from_utf8_lossy(&state.0).into_owned();
        if shown.contains(text) {
            return shown;
        }
        let now = Instant::now();
        assert!(
            now < deadline && !state.1,
            "{text:?} not seen (output ended: {}):\n{shown}",
            state.1
        );
        state = cond.wait_timeout(state, deadline - now).unwrap().0;
    }
}

#[test]
fn interactive_hands_the_console_over_after_first_boot_and_ctrl_a_x_quits() {
    let command = format!(
        "{} run {} --interactive --timeout 240",
        harmony_cli().display(),
        default_image().display()
    );
    // script: a pty for the command; what we write to its stdin is typed on that pty.
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("running script (util-linux, Debian package bsdutils)");
    let mut typed = child.stdin.take().unwrap();
    let mut output = child.stdout.take().unwrap();
    let seen: Seen = Arc::new((Mutex::new((Vec::new(), false)), Condvar::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = output.read(&mut buf).unwrap_or(0);
                let (lock, cond) = &*seen;
                let mut state = lock.lock().unwrap();
                if n == 0 {
                    state.1 = true;
                } else {
                    state.0.extend_from_slice(&buf[..n]);
                }
                cond.notify_all();
                if n == 0 {
                    break;
                }
            }
        })
    };

    let booted = wait_for(&seen, HANDOVER_NOTE, Duration::from_secs(300));
    assert!(booted.contains("HARMONY-FIRSTBOOT "), "{booted}");
    // Typed on the terminal, run by the guest's shell: only the shell prints 42.
    typed.write_all(b"echo harmony-$((6*7))\r").unwrap();
    typed.flush().unwrap();
    wait_for(&seen, "harmony-42", Duration::from_secs(60));
    typed.write_all(b"\x01x").unwrap();
    typed.flush().unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("Ctrl-A X did not end harmony run --interactive");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(typed);
    reader.join().unwrap();
    let shown = String::from_utf8_lossy(&seen.0.lock().unwrap().0).into_owned();
    assert!(status.success(), "{status}:\n{shown}");
}
