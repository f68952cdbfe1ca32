//! Copy bytes both ways between a client and its backend, one thread per direction with
//! plain blocking reads and writes. An end-of-stream is passed on as a half-close (TCP
//! semantics kept); an error on either side closes both sockets at once, so a client
//! whose API server vanished sees its connection end and reconnects through the proxy.
//! With an idle timeout, a connection with no bytes in either direction for that long is
//! closed (a watch that streams one way only stays open).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::workers::Workers;

const BUFFER: usize = 16 * 1024;

/// When a byte last passed, either way.
struct Activity(Mutex<Instant>);

impl Activity {
    fn touch(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn quiet_for(&self) -> Duration {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).elapsed()
    }
}

/// Relay until both directions are done. Runs `backend → client` on another worker
/// thread and `client → backend` on the caller's.
pub fn relay(
    client: TcpStream,
    backend: TcpStream,
    idle: Option<Duration>,
    workers: &Workers,
) -> std::io::Result<()> {
    // A socket option: the clones below share it.
    client.set_read_timeout(idle)?;
    backend.set_read_timeout(idle)?;
    let (client_r, backend_w) = (client.try_clone()?, backend.try_clone()?);
    let activity = Arc::new(Activity(Mutex::new(Instant::now())));
    let (done, back_done) = std::sync::mpsc::channel::<()>();
    let back_activity = Arc::clone(&activity);
    workers.run(move || {
        pump(backend, client, &back_activity, idle);
        drop(done);
    })?;
    pump(client_r, backend_w, &activity, idle);
    // Err once the other direction dropped its sender: both are done.
    let _ = back_done.recv();
    Ok(())
}

/// One direction: `from` until end-of-stream, error, or both directions idle too long.
fn pump(mut from: TcpStream, mut to: TcpStream, activity: &Activity, idle: Option<Duration>) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                activity.touch();
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // The read timeout: quiet this way; the other way may still be busy.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if idle.is_some_and(|t| activity.quiet_for() < t) {
                    continue;
                }
                break;
            }
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
