//! The handshake with systemd's own D-Bus server code: PID 1 answers on
//! /run/systemd/private with sd-bus (libsystemd) in server mode, driven by an sd-event
//! loop. tests/sd_bus_server/server.c is that server, compiled here against Debian's
//! libsystemd, with its handshake slowed so that a client sending `BEGIN` only after
//! the `OK` has its first call arrive in the same read as `BEGIN`. sd-bus then leaves
//! the call in its buffer and never answers it: debian-node's first boot hung on this
//! in 3 of 5 boots. Our client must send `BEGIN` with `AUTH`, as sd-bus clients do.

// Test code: an unwrap here is an assertion.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use harmony_agent::join::dbus::{Arg, Connection};

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Compile the server; `None` (skipped, a failure under HARMONY_TEST_STRICT) without a
/// C compiler or libsystemd's headers.
fn server_binary(dir: &Path) -> Option<std::path::PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sd_bus_server/server.c");
    let exe = dir.join("sd-bus-server");
    if !Path::new("/usr/include/systemd/sd-bus.h").is_file() {
        harmony_test_support::skip("no <systemd/sd-bus.h>: Debian package libsystemd-dev");
        return None;
    }
    match Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-lsystemd")
        .status()
    {
        Ok(s) => assert!(s.success(), "the sd-bus server did not compile"),
        Err(_) => {
            harmony_test_support::skip("no C compiler cc: Debian package gcc");
            return None;
        }
    }
    Some(exe)
}

#[test]
fn systemds_sd_bus_server_answers_the_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = server_binary(dir.path()) else {
        return;
    };
    let socket = dir.path().join("private");
    let mut child = Command::new(&exe)
        .arg(&socket)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    let _server = Proc(child);
    assert_eq!(ready.trim(), "ready");
    // The server answers within a second once the handshake is done; 20 s is a hang.
    let mut c = Connection::open_peer(&socket, Duration::from_secs(20)).unwrap();
    let mut echo = |text: &str| {
        c.call(
            "test.Server",
            "/test",
            "test.Echo",
            "Echo",
            &[Arg::Str(text)],
        )
        .map(|reply| reply.first_string())
    };
    let first =
        echo("first call").unwrap_or_else(|e| panic!("sd-bus left the first call unanswered: {e}"));
    assert_eq!(first.as_deref(), Some("first call"));
    assert_eq!(echo("second").unwrap().as_deref(), Some("second"));
}
