//! A TFTP client (RFC 1350, read requests in octet mode only): enough to fetch a config
//! or a file from the PXE server that booted the node. Every packet is resent on a
//! timeout, a bounded number of times; packets from any other port than the server's
//! transfer port are ignored, as the RFC requires.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

const OP_RRQ: u16 = 1;
const OP_DATA: u16 = 3;
const OP_ACK: u16 = 4;
const OP_ERROR: u16 = 5;
const BLOCK: usize = 512;

#[derive(Debug, Clone, Copy)]
pub struct TftpOptions {
    /// How long to wait for each packet before resending the last one.
    pub timeout: Duration,
    /// Resends of one packet before the transfer fails.
    pub retries: u32,
    /// Refuse files larger than this.
    pub max_size: usize,
}

impl Default for TftpOptions {
    fn default() -> Self {
        TftpOptions {
            timeout: Duration::from_secs(2),
            retries: 5,
            max_size: ignition::limits::MAX_FILE_BYTES as usize,
        }
    }
}

/// Read `file` from `server`. The error is a plain reason.
pub fn get(server: SocketAddr, file: &str, opts: &TftpOptions) -> Result<Vec<u8>, String> {
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?
    } else {
        "[::]:0".parse().map_err(|e| format!("{e}"))?
    };
    let sock = UdpSocket::bind(bind).map_err(|e| format!("binding a UDP socket: {e}"))?;
    sock.set_read_timeout(Some(opts.timeout))
        .map_err(|e| format!("setting a timeout: {e}"))?;
    let mut rrq = OP_RRQ.to_be_bytes().to_vec();
    rrq.extend_from_slice(file.as_bytes());
    rrq.push(0);
    rrq.extend_from_slice(b"octet\0");

    let mut out = Vec::new();
    let mut peer: Option<SocketAddr> = None;
    // The last packet sent and where to, resent on timeout.
    let mut last: (Vec<u8>, SocketAddr) = (rrq, server);
    let mut expected: u16 = 1;
    let mut buf = vec![0u8; BLOCK + 4];
    let mut tries = 0;
    sock.send_to(&last.0, last.1)
        .map_err(|e| format!("sending to {server}: {e}"))?;
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                tries += 1;
                if tries > opts.retries {
                    return Err(format!(
                        "no answer from {server} for block {expected} after {} tries of {:?}",
                        opts.retries + 1,
                        opts.timeout
                    ));
                }
                sock.send_to(&last.0, last.1)
                    .map_err(|e| format!("sending to {}: {e}", last.1))?;
                continue;
            }
            Err(e) => return Err(format!("receiving from {server}: {e}")),
        };
        // The first answer fixes the server's transfer port; strangers are ignored.
        if from.ip() != server.ip() || peer.is_some_and(|p| p != from) || n < 4 {
            continue;
        }
        peer = Some(from);
        let op = u16::from_be_bytes([buf[0], buf[1]]);
        let num = u16::from_be_bytes([buf[2], buf[3]]);
        match op {
            OP_ERROR => {
                let msg = String::from_utf8_lossy(&buf[4..n]);
                return Err(format!(
                    "server error {num}: {}",
                    msg.trim_end_matches('\0')
                ));
            }
            OP_DATA if num == expected => {
                out.extend_from_slice(&buf[4..n]);
                if out.len() > opts.max_size {
                    return Err(ignition::fetch::too_large(opts.max_size as u64));
                }
                let mut ack = OP_ACK.to_be_bytes().to_vec();
                ack.extend_from_slice(&num.to_be_bytes());
                sock.send_to(&ack, from)
                    .map_err(|e| format!("sending to {from}: {e}"))?;
                if n - 4 < BLOCK {
                    return Ok(out);
                }
                last = (ack, from);
                // Block numbers wrap after 65535, as most servers (dnsmasq too) do.
                expected = expected.wrapping_add(1);
                tries = 0;
            }
            // A duplicate of the block before: our ack was lost, send it again.
            OP_DATA if num == expected.wrapping_sub(1) => {
                sock.send_to(&last.0, last.1)
                    .map_err(|e| format!("sending to {}: {e}", last.1))?;
            }
            _ => {}
        }
    }
}
