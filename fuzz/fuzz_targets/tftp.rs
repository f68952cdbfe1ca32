//! Any datagrams as a TFTP server's answers to one read request: the client on
//! 127.0.0.1 gets the file, or an error, never a panic or a hang. The input is a list of
//! datagrams, each a length byte and that many bytes; a server on loopback sends them in
//! turn, one for each packet the client sends, from one transfer port.
#![no_main]

use std::net::UdpSocket;
use std::time::Duration;

use harmony_agent::fetch::tftp::{get, TftpOptions};
use libfuzzer_sys::fuzz_target;

fn datagrams(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        out.push(&rest[..len]);
        data = &rest[len..];
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let answers: Vec<Vec<u8>> = datagrams(data).into_iter().map(<[u8]>::to_vec).collect();
    let listen = UdpSocket::bind("127.0.0.1:0").expect("bind the server's port");
    let server = listen.local_addr().expect("server address");
    let transfer = UdpSocket::bind("127.0.0.1:0").expect("bind the transfer port");
    let serve = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        listen
            .set_read_timeout(Some(Duration::from_millis(200)))
            .ok();
        transfer
            .set_read_timeout(Some(Duration::from_millis(20)))
            .ok();
        let Ok((_, client)) = listen.recv_from(&mut buf) else {
            return;
        };
        for answer in answers {
            if transfer.send_to(&answer, client).is_err() {
                return;
            }
            // Wait for the client's next packet (ACK or resend) before answering it.
            if transfer.recv_from(&mut buf).is_err() {
                return;
            }
        }
    });
    let opts = TftpOptions {
        timeout: Duration::from_millis(20),
        retries: 0,
        max_size: 1 << 20,
    };
    let _ = get(server, "config.ign", &opts);
    let _ = serve.join();
});
