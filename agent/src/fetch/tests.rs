//! Fetches from a real HTTP server (a small one on 127.0.0.1, in this test) and a real
//! TFTP server (dnsmasq, on a loopback address of its own so tests can run side by side).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

fn quick() -> NetFetcher {
    NetFetcher {
        retry: RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
        },
        ..Default::default()
    }
}

/// Serves `answers` in turn (status, body), one per connection; records request heads.
fn http_server(answers: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let (mut s, _) = l.accept().unwrap();
            let mut head = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            log.lock().unwrap().push(head);
            write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
    });
    (url, seen)
}

#[test]
fn http_with_headers_and_retries() {
    let (url, seen) = http_server(vec![(503, "busy"), (404, "later"), (200, "config!")]);
    let f = quick();
    let body = f
        .fetch_with_headers(
            &format!("{url}/node.ign"),
            &[("X-Node".to_string(), "n1".to_string())],
        )
        .unwrap();
    assert_eq!(body, b"config!");
    let heads = seen.lock().unwrap();
    assert_eq!(heads.len(), 3);
    assert!(
        heads[2].starts_with("GET /node.ign HTTP/1.1"),
        "{}",
        heads[2]
    );
    assert!(
        heads[2].to_ascii_lowercase().contains("x-node: n1"),
        "{}",
        heads[2]
    );
}

/// Answers each connection with the next of `responses` (a status line and headers, no
/// body); records request heads.
fn redirecting_server(responses: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for response in responses {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut head = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            log.lock().unwrap().push(head);
            let _ = write!(s, "{response}Connection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn redirects_stay_on_their_origin_and_headers_never_leave_it() {
    let secret = [("X-Token".to_string(), "s3cret".to_string())];
    // Another origin (another port is another origin): never contacted.
    let (elsewhere, elsewhere_seen) = http_server(vec![(200, "from elsewhere")]);
    let (origin, _) = redirecting_server(vec![format!(
        "HTTP/1.1 302 Found\r\nLocation: {elsewhere}/node.ign\r\nContent-Length: 0\r\n"
    )]);
    let err = quick()
        .fetch_with_headers(&format!("{origin}/node.ign"), &secret)
        .unwrap_err();
    assert!(
        err.contains(&format!(
            "redirected from {origin}/node.ign to {elsewhere}/node.ign"
        )) && err.contains("same origin"),
        "{err}"
    );
    assert!(elsewhere_seen.lock().unwrap().is_empty());

    // The same origin: followed, the header kept.
    let (origin, seen) = redirecting_server(vec![
        "HTTP/1.1 301 Moved\r\nLocation: /real.ign\r\nContent-Length: 0\r\n".to_string(),
        "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nconfig!".to_string(),
    ]);
    let body = quick()
        .fetch_with_headers(&format!("{origin}/node.ign"), &secret)
        .unwrap();
    assert!(body.starts_with(b"config!"), "{body:?}");
    let heads = seen.lock().unwrap();
    assert!(heads[1].starts_with("GET /real.ign "), "{}", heads[1]);
    assert!(heads[1].to_ascii_lowercase().contains("x-token: s3cret"));
}

#[test]
fn https_is_never_downgraded_by_a_redirect() {
    use super::http::same_origin_redirect;
    assert!(same_origin_redirect("https://cfg.example/a", "http://cfg.example/a").is_err());
    assert!(same_origin_redirect("https://cfg.example/a", "https://other.example/a").is_err());
    assert!(same_origin_redirect("https://cfg.example/a", "https://cfg.example:8443/a").is_err());
    assert_eq!(
        same_origin_redirect("https://cfg.example/a/b", "../c").unwrap(),
        "https://cfg.example/c"
    );
    assert_eq!(
        same_origin_redirect("https://cfg.example/a", "https://cfg.example:443/d").unwrap(),
        "https://cfg.example/d"
    );
}

#[test]
fn http_gives_up_and_says_why() {
    let (url, _) = http_server(vec![(500, ""), (500, ""), (500, "")]);
    let err = ignition::Fetcher::fetch(&quick(), &format!("{url}/x")).unwrap_err();
    assert!(
        err.contains("HTTP 500") && err.contains("after 3 attempts"),
        "{err}"
    );
    let (url, seen) = http_server(vec![(403, "no")]);
    let err = ignition::Fetcher::fetch(&quick(), &format!("{url}/x")).unwrap_err();
    assert_eq!(err, "HTTP 403 X");
    assert_eq!(seen.lock().unwrap().len(), 1, "403 is not retried");
    let err = ignition::Fetcher::fetch(&quick(), "http://no-such-host.invalid/x").unwrap_err();
    assert!(err.contains("no resolv.conf to ask DNS"), "{err}");
    let err = ignition::Fetcher::fetch(&quick(), "s3://bucket/x").unwrap_err();
    assert!(err.contains("not supported"), "{err}");
}

#[test]
fn backoff_and_urls() {
    let r = RetryPolicy::default();
    let delays: Vec<_> = (1..=6).map(|n| r.delay(n).as_millis()).collect();
    assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000]);
    assert_eq!(
        split_url("tftp://[::1]:6969/a/b", 69).unwrap(),
        ("::1".to_string(), 6969, "/a/b".to_string())
    );
    assert!(split_url("tftp:///x", 69).is_err());
}

pub(super) struct Dnsmasq(Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _gone = self.0.kill();
        let _reaped = self.0.wait();
    }
}

/// A loopback address of this test run's own (the whole 127/8 is local), ending in
/// `last`, so parallel runs and tests do not collide on dnsmasq's fixed ports.
pub(super) fn own_loopback(last: u8) -> String {
    format!(
        "127.{}.{}.{last}",
        100 + std::process::id() % 100,
        std::process::id() % 250,
    )
}

/// dnsmasq in the foreground, on `ip` only, with no configuration but `args` (never the
/// host's dnsmasq service or files); returns once it listens on UDP `ip:port`.
pub(super) fn dnsmasq(ip: &str, port: u16, args: &[String]) -> Dnsmasq {
    let child = Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--bind-interfaces",
            "--conf-file=/dev/null",
            "--user=root",
            "--pid-file",
        ])
        .arg(format!("--listen-address={ip}"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dnsmasq (Debian package dnsmasq-base)");
    let mut server = Dnsmasq(child);
    wait_for_udp_listener(&mut server, ip, port);
    server
}

/// dnsmasq's TFTP server always listens on port 69.
fn dnsmasq_tftp(root: &std::path::Path) -> (Dnsmasq, String) {
    let ip = own_loopback(7);
    let server = dnsmasq(
        &ip,
        69,
        &[
            "--port=0".to_string(),
            "--enable-tftp".to_string(),
            format!("--tftp-root={}", root.display()),
        ],
    );
    (server, ip)
}

/// Wait until a socket is bound to `ip:port` (as /proc/net/udp lists it), rather than
/// sleeping and hoping the server is up; the bound only keeps a broken setup from hanging.
fn wait_for_udp_listener(server: &mut Dnsmasq, ip: &str, port: u16) {
    let octets: Vec<u8> = ip.split('.').map(|o| o.parse().unwrap()).collect();
    // The kernel prints the address as a native-endian u32 in hex, then the port.
    let addr = u32::from_ne_bytes([octets[0], octets[1], octets[2], octets[3]]);
    let wanted = format!("{addr:08X}:{port:04X}");
    let bound = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let table = std::fs::read_to_string("/proc/net/udp").unwrap();
        if table
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str()))
        {
            return;
        }
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("dnsmasq exited ({status}) before listening on {ip}:{port}");
        }
        assert!(
            std::time::Instant::now() < bound,
            "dnsmasq never listened on {ip}:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tftp_from_dnsmasq() {
    let dir = tempfile::tempdir().unwrap();
    // 1,500 bytes: three blocks; and exactly 1,024: a final empty block.
    let big: Vec<u8> = (0..1500u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("node.ign"), &big).unwrap();
    std::fs::write(dir.path().join("even"), vec![7u8; 1024]).unwrap();
    let (_server, ip) = dnsmasq_tftp(dir.path());
    let f = quick();
    assert_eq!(
        ignition::Fetcher::fetch(&f, &format!("tftp://{ip}/node.ign")).unwrap(),
        big
    );
    assert_eq!(
        ignition::Fetcher::fetch(&f, &format!("tftp://{ip}/even")).unwrap(),
        vec![7u8; 1024]
    );
    let err = ignition::Fetcher::fetch(&f, &format!("tftp://{ip}/missing")).unwrap_err();
    assert!(err.contains("server error"), "{err}");
}

#[test]
fn tftp_timeout_is_bounded() {
    // A bound UDP port that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let opts = tftp::TftpOptions {
        timeout: Duration::from_millis(50),
        retries: 2,
        ..Default::default()
    };
    let err = tftp::get(silent.local_addr().unwrap(), "/x", &opts).unwrap_err();
    assert!(err.contains("after 3 tries"), "{err}");
}
