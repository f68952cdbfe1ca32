//! `ignition.security.tls.certificateAuthorities` and `ignition.proxy` through the agent's
//! `NetFetcher`, end to end from a config's bytes to the node's model: an https server on
//! 127.0.0.1 whose certificate (openssl-made, see join_server) only the config's CA
//! trusts, and a small real forward proxy (absolute-form GET and CONNECT) on 127.0.0.1
//! that records what it is asked and reaches names nobody else can resolve.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

mod join_server;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use harmony_agent::fetch::{NetFetcher, RetryPolicy};
use join_server::Pki;
use serde_json::json;
use sha2::Digest;

struct Fixture {
    dir: tempfile::TempDir,
    pki: Pki,
}

/// One CA and server certificate (SANs 127.0.0.1 and `kubernetes`) for every test.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        assert!(
            harmony_test_support::tool("openssl"),
            "openssl (Debian package openssl) is needed to make the test CA"
        );
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            pki: Pki::new(&dir.path().join("pki")),
            dir,
        }
    })
}

type Log = Arc<Mutex<Vec<String>>>;

/// Reads a request head; the request line first.
fn read_head(r: &mut impl BufRead) -> Option<String> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some(head);
        }
        head.push_str(&line);
    }
}

/// Answers every request on `stream` with `body` (200), one request per connection.
fn answer(stream: impl Read + Write, body: &[u8], log: &Log) {
    let mut r = BufReader::new(stream);
    let Some(head) = read_head(&mut r) else {
        return;
    };
    log.lock()
        .unwrap()
        .push(head.lines().next().unwrap_or("").to_string());
    let w = r.get_mut();
    let _ = write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = w.write_all(body);
    let _ = w.flush();
}

/// An https server on 127.0.0.1 with the fixture's certificate; its port and request log.
fn https_server(body: Vec<u8>) -> (u16, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let config = fixture().pki.server_config();
    let log = Log::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            answer(rustls::StreamOwned::new(conn, tcp), &body, &seen);
        }
    });
    (port, log)
}

/// A plain http server on 127.0.0.1.
fn http_server(body: Vec<u8>) -> (u16, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log = Log::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for tcp in l.incoming().flatten() {
            answer(tcp, &body, &seen);
        }
    });
    (port, log)
}

/// A forward proxy: `GET http://NAME:PORT/…` is passed on to 127.0.0.1:PORT as sent,
/// `CONNECT NAME:PORT` is tunnelled to 127.0.0.1:PORT. Every NAME goes to loopback, so
/// the proxy reaches names the fetcher itself cannot resolve. Logs request lines.
fn proxy() -> (String, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let log = Log::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for client in l.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(client.try_clone().unwrap());
                let Some(head) = read_head(&mut r) else {
                    return;
                };
                let line = head.lines().next().unwrap_or("").to_string();
                seen.lock().unwrap().push(line.clone());
                let target = line.split_whitespace().nth(1).unwrap_or("");
                let authority = target
                    .split_once("://")
                    .map_or(target, |(_, rest)| rest.split('/').next().unwrap_or(""));
                let port = authority.rsplit_once(':').map_or("80", |(_, p)| p);
                let mut upstream = TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
                let mut client = client;
                if line.starts_with("CONNECT ") {
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .unwrap();
                } else {
                    upstream.write_all(head.as_bytes()).unwrap();
                    upstream.write_all(b"\r\n").unwrap();
                }
                let mut down = upstream.try_clone().unwrap();
                let mut up_client = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut down, &mut up_client);
                    let _ = up_client.shutdown(std::net::Shutdown::Both);
                });
                // Bytes the BufReader already took belong upstream too.
                let _ = upstream.write_all(r.buffer());
                let _ = std::io::copy(&mut client, &mut upstream);
            });
        }
    });
    (url, log)
}

/// A fetcher that tries twice, quickly, and resolves names through `hosts` only.
fn fetcher(hosts: &str) -> NetFetcher {
    let path: PathBuf = fixture()
        .dir
        .path()
        .join(format!("hosts-{}", sha256_hex(hosts.as_bytes())));
    std::fs::write(&path, hosts).unwrap();
    NetFetcher {
        retry: RetryPolicy {
            attempts: 2,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
        hosts_file: Some(path),
        ..Default::default()
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

fn ca_pem() -> &'static str {
    &fixture().pki.ca_pem
}

/// The CA as an inline data URL with its sha512, as a config carries it.
fn inline_ca() -> serde_json::Value {
    json!({
        "source": format!(
            "data:;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(ca_pem())
        ),
        "verification": {"hash": format!("sha512-{}", hex::encode(sha2::Sha512::digest(ca_pem())))},
    })
}

/// A 3.4.0 config writing `/etc/fetched` from `source`, with the given `ignition` fields.
fn config(ignition: serde_json::Value, source: &str) -> Vec<u8> {
    let mut ign = json!({"version": "3.4.0"});
    ign.as_object_mut()
        .unwrap()
        .extend(ignition.as_object().unwrap().clone());
    serde_json::to_vec(&json!({
        "ignition": ign,
        "storage": {"files": [{"path": "/etc/fetched", "contents": {"source": source}}]},
    }))
    .unwrap()
}

fn fetched(cfg: &ignition::NodeConfig) -> Vec<u8> {
    cfg.files[0].contents.as_ref().unwrap().to_vec().unwrap()
}

#[test]
fn an_https_source_is_trusted_only_through_the_configs_ca() {
    let (port, log) = https_server(b"from https".to_vec());
    let url = format!("https://127.0.0.1:{port}/file");
    let f = fetcher("");

    let err = ignition::node_config(&config(json!({}), &url), &f)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("storage.files[0].contents.source: ")
            && err.contains("certificate is not trusted")
            && err.contains("UnknownIssuer")
            && err.contains("ignition.security.tls.certificateAuthorities"),
        "{err}"
    );
    assert!(log.lock().unwrap().is_empty(), "no request without trust");

    let with_ca = json!({"security": {"tls": {"certificateAuthorities": [inline_ca()]}}});
    let cfg = ignition::node_config(&config(with_ca, &url), &f).unwrap();
    assert_eq!(fetched(&cfg), b"from https");
    assert_eq!(log.lock().unwrap().as_slice(), ["GET /file HTTP/1.1"]);
}

#[test]
fn a_ca_fetched_over_http_is_checked_against_its_hash() {
    let (https_port, _) = https_server(b"merged".to_vec());
    let (ca_port, _) = http_server(ca_pem().as_bytes().to_vec());
    let f = fetcher("");
    let ca = |hash: String| {
        json!({"security": {"tls": {"certificateAuthorities": [{
            "source": format!("http://127.0.0.1:{ca_port}/ca.crt"),
            "verification": {"hash": hash},
        }]}}})
    };
    let url = format!("https://127.0.0.1:{https_port}/x");
    let good = ca(format!("sha256-{}", sha256_hex(ca_pem().as_bytes())));
    let cfg = ignition::node_config(&config(good, &url), &f).unwrap();
    assert_eq!(fetched(&cfg), b"merged");

    let bad = ca(format!("sha256-{}", sha256_hex(b"another CA")));
    let err = ignition::node_config(&config(bad, &url), &f)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("ignition.security.tls.certificateAuthorities[0]")
            && err.contains("hash mismatch"),
        "{err}"
    );

    // Bytes that are no certificate are named as such.
    let not_pem = json!({"security": {"tls": {"certificateAuthorities": [
        {"source": "data:,not%20a%20certificate"}
    ]}}});
    let err = ignition::node_config(&config(not_pem, &url), &f)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "ignition.security.tls.certificateAuthorities[0]: not a usable CA certificate: \
         no PEM certificate in it"
    );
}

#[test]
fn the_ca_covers_merged_configs_and_their_files() {
    // The child, over https, writes a file fetched over https too: both need the root's CA.
    let (file_port, file_log) = https_server(b"child's file".to_vec());
    let child = config(json!({}), &format!("https://127.0.0.1:{file_port}/file"));
    let (child_port, child_log) = https_server(child);
    let root = serde_json::to_vec(&json!({"ignition": {
        "version": "3.4.0",
        "security": {"tls": {"certificateAuthorities": [inline_ca()]}},
        "config": {"merge": [{"source": format!("https://127.0.0.1:{child_port}/child.ign")}]},
    }}))
    .unwrap();
    let cfg = ignition::node_config(&root, &fetcher("")).unwrap();
    assert_eq!(fetched(&cfg), b"child's file");
    assert_eq!(child_log.lock().unwrap().len(), 1);
    assert_eq!(file_log.lock().unwrap().len(), 1);
}

#[test]
fn the_proxy_sees_http_and_https_fetches_and_no_proxy_bypasses_it() {
    let (proxy_url, proxied) = proxy();
    let (http_port, http_log) = http_server(b"via proxy".to_vec());
    let (https_port, https_log) = https_server(b"tunnelled".to_vec());
    // Neither name resolves here: only the proxy can reach them.
    let f = fetcher("");
    let settings = |no_proxy: serde_json::Value| {
        json!({
            "proxy": {"httpProxy": proxy_url, "httpsProxy": proxy_url, "noProxy": no_proxy},
            "security": {"tls": {"certificateAuthorities": [inline_ca()]}},
        })
    };

    let http_url = format!("http://config.example.internal:{http_port}/node.ign");
    let cfg = ignition::node_config(&config(settings(json!([])), &http_url), &f).unwrap();
    assert_eq!(fetched(&cfg), b"via proxy");
    // The certificate names `kubernetes`: the tunnel carries TLS end to end.
    let https_url = format!("https://kubernetes:{https_port}/node.ign");
    let cfg = ignition::node_config(&config(settings(json!([])), &https_url), &f).unwrap();
    assert_eq!(fetched(&cfg), b"tunnelled");
    assert_eq!(
        proxied.lock().unwrap().as_slice(),
        [
            format!("GET {http_url} HTTP/1.1"),
            format!("CONNECT kubernetes:{https_port} HTTP/1.1"),
        ]
    );
    assert_eq!(http_log.lock().unwrap().len(), 1);
    assert_eq!(https_log.lock().unwrap().len(), 1);

    // Without the proxy the name does not resolve: the proxy was needed.
    let err = ignition::node_config(&config(json!({}), &http_url), &f)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot resolve"), "{err}");

    // noProxy: a listed domain goes direct (resolved through the hosts file), and so
    // does a listed address.
    proxied.lock().unwrap().clear();
    let direct = fetcher("127.0.0.1 boot.lab.internal\n");
    let by_name = format!("http://boot.lab.internal:{http_port}/direct");
    let cfg = ignition::node_config(
        &config(settings(json!(["lab.internal"])), &by_name),
        &direct,
    )
    .unwrap();
    assert_eq!(fetched(&cfg), b"via proxy");
    let by_address = format!("http://127.0.0.1:{http_port}/direct");
    let cfg = ignition::node_config(
        &config(settings(json!(["127.0.0.1"])), &by_address),
        &direct,
    )
    .unwrap();
    assert_eq!(fetched(&cfg), b"via proxy");
    assert!(
        proxied.lock().unwrap().is_empty(),
        "noProxy hosts went direct"
    );
    assert_eq!(
        http_log.lock().unwrap()[1..],
        ["GET /direct HTTP/1.1", "GET /direct HTTP/1.1"]
    );
}
