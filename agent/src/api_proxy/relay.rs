//! Copy bytes both ways between a client and its backend, one thread per direction with
//! plain blocking reads and writes. An end-of-stream is passed on as a half-close (TCP
//! semantics kept); an error on either side closes both sockets at once, so a client
//! whose API server vanished sees its connection end and reconnects through the proxy.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::workers::Workers;

const BUFFER: usize = 16 * 1024;

/// Relay until both directions are done. Runs `backend → client` on another worker
/// thread and `client → backend` on the caller's.
pub fn relay(client: TcpStream, backend: TcpStream, workers: &Workers) -> std::io::Result<()> {
    let (client_r, backend_w) = (client.try_clone()?, backend.try_clone()?);
    let (done, back_done) = std::sync::mpsc::channel::<()>();
    workers.run(move || {
        pump(backend, client);
        drop(done);
    })?;
    pump(client_r, backend_w);
    // Err once the other direction dropped its sender: both are done.
    let _ = back_done.recv();
    Ok(())
}

/// One direction: `from` until end-of-stream or error.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        match from.read(&mut buf) {
            Ok(0) => {
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
