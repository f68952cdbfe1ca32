//! kubelet is started through systemd's D-Bus API by our own small client. No systemd
//! can run as PID 1 here, so the test runs a real `dbus-daemon` on a private socket and a
//! stand-in for org.freedesktop.systemd1 written with python-dbus (libdbus: an
//! implementation independent of ours) that records each call and answers as systemd
//! does: EnableUnitFiles → (ba(sss)), StartUnit → a job object path, NoSuchUnit for
//! units it does not know.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harmony_agent::join::dbus::{Arg, Connection, DbusError};
use harmony_agent::join::kubelet_start::{start, ServiceManager, StartOptions};

const PYTHON: &str = "/usr/bin/python3";

const FAKE_SYSTEMD: &str = r#"
import sys, dbus, dbus.service, dbus.mainloop.glib
from gi.repository import GLib

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
log = open(sys.argv[2], "a", buffering=1)
IFACE = "org.freedesktop.systemd1.Manager"

class Manager(dbus.service.Object):
    @dbus.service.method(IFACE, in_signature="asbb", out_signature="ba(sss)")
    def EnableUnitFiles(self, files, runtime, force):
        log.write("EnableUnitFiles %s runtime=%s force=%s\n" % (",".join(files), bool(runtime), bool(force)))
        return (False, [("symlink", "/etc/systemd/system/multi-user.target.wants/" + f,
                         "/usr/lib/systemd/system/" + f) for f in files])

    @dbus.service.method(IFACE, in_signature="ss", out_signature="o")
    def StartUnit(self, name, mode):
        if name != "kubelet.service":
            raise dbus.exceptions.DBusException("Unit %s not found." % name,
                                                name="org.freedesktop.systemd1.NoSuchUnit")
        log.write("StartUnit %s %s\n" % (name, mode))
        return dbus.ObjectPath("/org/freedesktop/systemd1/job/4242")

name = dbus.service.BusName("org.freedesktop.systemd1", bus)
Manager(bus, "/org/freedesktop/systemd1")
print("ready", flush=True)
GLib.MainLoop().run()
"#;

fn tools_available() -> bool {
    if Command::new("dbus-daemon")
        .arg("--version")
        .output()
        .is_err()
    {
        harmony_test_support::skip("tool dbus-daemon not installed: Debian package dbus-daemon");
        return false;
    }
    let py = Command::new(PYTHON)
        .args([
            "-c",
            "import dbus, dbus.mainloop.glib; from gi.repository import GLib",
        ])
        .output();
    if !py.is_ok_and(|o| o.status.success()) {
        harmony_test_support::skip(format!(
            "tool {PYTHON} with python3-dbus and python3-gi not installed"
        ));
        return false;
    }
    true
}

/// Kills and reaps on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Bus {
    _daemon: Proc,
    _systemd: Proc,
    socket: PathBuf,
    log: PathBuf,
}

fn private_bus(dir: &Path) -> Bus {
    let socket = dir.join("bus");
    let conf = dir.join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>harmony-test</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
            socket.display()
        ),
    )
    .unwrap();
    let mut daemon = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--print-address"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut address = String::new();
    BufReader::new(daemon.stdout.take().unwrap())
        .read_line(&mut address)
        .unwrap();
    let daemon = Proc(daemon);
    assert!(address.starts_with("unix:path="), "{address:?}");
    let script = dir.join("fake_systemd.py");
    std::fs::write(&script, FAKE_SYSTEMD).unwrap();
    let log = dir.join("calls.log");
    let mut systemd = Command::new(PYTHON)
        .arg(&script)
        .arg(format!("unix:path={}", socket.display()))
        .arg(&log)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(systemd.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    Bus {
        _daemon: daemon,
        _systemd: Proc(systemd),
        socket,
        log,
    }
}

fn calls(log: &Path) -> String {
    // The stand-in writes each line before it replies, so it is there once we have the
    // reply; allow the file system a moment all the same.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().count() >= 2 || Instant::now() > until {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kubelet_is_enabled_and_started_over_dbus() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bus = private_bus(dir.path());
    let how = start(
        ServiceManager::Systemd,
        &StartOptions {
            // No systemd here: its private socket is absent, the bus is the fallback.
            systemd_private: dir.path().join("no-systemd-private"),
            bus_socket: bus.socket.clone(),
            timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    assert_eq!(
        how,
        "enabled and started kubelet.service through systemd over D-Bus \
         (job /org/freedesktop/systemd1/job/4242)"
    );
    assert_eq!(
        calls(&bus.log),
        "EnableUnitFiles kubelet.service runtime=False force=False\n\
         StartUnit kubelet.service replace\n"
    );
}

#[test]
fn hello_and_remote_errors_come_back_as_sent() {
    if !tools_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bus = private_bus(dir.path());
    let mut c = Connection::open(&bus.socket, Duration::from_secs(10)).unwrap();
    // The bus daemon's unique names look like ":1.N".
    assert!(c.unique_name.starts_with(":1."), "{}", c.unique_name);
    let err = c
        .call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartUnit",
            &[Arg::Str("nope.service"), Arg::Str("replace")],
        )
        .unwrap_err();
    match err {
        DbusError::Remote { name, message } => {
            assert_eq!(name, "org.freedesktop.systemd1.NoSuchUnit");
            assert_eq!(message, "Unit nope.service not found.");
        }
        other => panic!("{other}"),
    }
    // A wrong signature is refused by libdbus on the other side, not misread.
    let err = c
        .call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartUnit",
            &[Arg::Str("kubelet.service")],
        )
        .unwrap_err();
    assert!(matches!(err, DbusError::Remote { .. }), "{err}");
    // The bus itself answers too: ask it whether systemd's name has an owner.
    let reply = c
        .call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "GetNameOwner",
            &[Arg::Str("org.freedesktop.systemd1")],
        )
        .unwrap();
    assert!(reply.first_string().unwrap().starts_with(":1."));
}
