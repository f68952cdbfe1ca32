//! `READY=1` to systemd (sd_notify(3)): harmony-firstboot.service is `Type=notify`, so
//! sysinit.target (and everything after it) waits until first boot has written the
//! node's files, and no longer: after READY the agent may wait for units that are
//! ordered after sysinit.target without deadlocking the boot.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};

/// The datagram socket systemd passes to a Type=notify service.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

static SENT: AtomicBool = AtomicBool::new(false);

/// Tell systemd the service is ready, once per process. Without `$NOTIFY_SOCKET` (not
/// started by systemd) there is nobody to tell: nothing happens.
pub fn ready() {
    if SENT.swap(true, Ordering::SeqCst) {
        return;
    }
    let Some(socket) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    if let Err(e) = send(&socket.to_string_lossy(), "READY=1") {
        eprintln!("harmony-agent: warning: telling systemd READY=1 on {socket:?}: {e}");
    }
}

/// Send `message` to the notify socket `path` (`@NAME` is an abstract socket).
pub fn send(path: &str, message: &str) -> std::io::Result<()> {
    let addr = match path.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None => SocketAddr::from_pathname(path)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(message.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        send(&path.to_string_lossy(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn ready_reaches_an_abstract_socket() {
        let name = format!("harmony-notify-test-{}", std::process::id());
        let server =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        send(&format!("@{name}"), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
