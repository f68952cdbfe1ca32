use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use super::*;
use crate::backoff::ManualClock;

/// A real HTTP server on 127.0.0.1 that answers the queued replies in order, one per
/// connection, then closes its port.
struct TestServer {
    port: u16,
    paths: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    fn start(replies: Vec<(u16, String)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        std::thread::spawn(move || {
            for (status, text) in replies {
                let (mut conn, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap() > 2 {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or_default();
                seen.lock().unwrap().push(path.to_string());
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    _ => "Service Unavailable",
                };
                let _ = write!(
                    conn,
                    "HTTP/1.0 {status} {reason}\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        TestServer { port, paths }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

fn host_with_cmdline(cmdline: &str) -> (tempfile::TempDir, HostPaths) {
    let dir = tempfile::tempdir().unwrap();
    let host = HostPaths::new(dir.path());
    std::fs::create_dir_all(host.join("/proc")).unwrap();
    std::fs::write(host.join("/proc/cmdline"), cmdline).unwrap();
    (dir, host)
}

const FAST: Retry = Retry {
    first: Duration::from_millis(10),
    max_delay: Duration::from_millis(40),
    total: Duration::from_secs(5),
};

/// The agent's fetcher, one attempt per call, as [`MetalSource::for_host`] makes it.
fn one_try() -> NetFetcher {
    NetFetcher {
        retry: RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
        ..NetFetcher::default()
    }
}

const CFG: &str = r#"{"ignition":{"version":"3.3.0"}}"#;

#[test]
fn no_url_is_no_config() {
    let (_d, host) = host_with_cmdline("console=ttyS0 ip=dhcp\n");
    assert_eq!(
        MetalSource::new(&host, Box::new(one_try()), FAST)
            .fetch()
            .unwrap(),
        None
    );
    let dir = tempfile::tempdir().unwrap();
    let nothing = HostPaths::new(dir.path());
    assert_eq!(
        MetalSource::new(&nothing, Box::new(one_try()), FAST)
            .fetch()
            .unwrap(),
        None
    );
}

#[test]
fn fetches_the_url_after_retrying_failures() {
    let server = TestServer::start(vec![
        (503, String::new()),
        (404, String::new()),
        (200, CFG.into()),
    ]);
    let url = server.url("/cfg.ign");
    let (_d, host) = host_with_cmdline(&format!("console=ttyS0 {URL_PARAM}={url} quiet\n"));
    let got = MetalSource::new(&host, Box::new(one_try()), FAST)
        .fetch()
        .unwrap()
        .unwrap();
    assert_eq!(got.source, format!("url:{url}"));
    assert_eq!(got.bytes, CFG.as_bytes());
    assert_eq!(server.paths(), ["/cfg.ign"; 3]);
}

/// A fetcher that always fails, counting its calls.
struct Refusing(Mutex<u32>);

impl ignition::Fetcher for Refusing {
    fn fetch(&self, _url: &str) -> Result<Vec<u8>, String> {
        *self.0.lock().unwrap() += 1;
        Err("connection refused".into())
    }
}

#[test]
fn backoff_doubles_and_the_total_time_is_bounded() {
    let retry = Retry {
        first: Duration::from_millis(20),
        max_delay: Duration::from_millis(80),
        total: Duration::from_millis(400),
    };
    let fetcher = Refusing(Mutex::new(0));
    let clock = ManualClock::default();
    let err = fetch_with_retry(
        &fetcher,
        "ignition.config.url=http://10.0.2.2/x",
        "http://10.0.2.2/x",
        retry,
        &clock,
    )
    .unwrap_err();
    // 20 + 40 + 80 + 80 + 80 + 80 = 380 ms; one more pause would pass 400 ms.
    let pauses: Vec<u128> = clock
        .pauses
        .borrow()
        .iter()
        .map(|d| d.as_millis())
        .collect();
    assert_eq!(pauses, [20, 40, 80, 80, 80, 80]);
    assert_eq!(*fetcher.0.lock().unwrap(), 7);
    assert_eq!(
        err.to_string(),
        "ignition.config.url=http://10.0.2.2/x: gave up after 7 attempts in 0.4 s: connection refused"
    );
}

#[test]
fn schemes_other_than_http_https_tftp_are_refused_at_once() {
    for url in ["ftp://h/cfg", "s3://b/cfg", "file:///cfg", "cfg.ign"] {
        let (_d, host) = host_with_cmdline(&format!("{URL_PARAM}={url}"));
        let fetcher = Refusing(Mutex::new(0));
        let source = MetalSource::new(&host, Box::new(fetcher), FAST);
        let err = source.fetch().unwrap_err().to_string();
        assert_eq!(
            err,
            format!("{URL_PARAM}={url}: unsupported scheme (expected http, https, tftp)")
        );
    }
}

/// A config served one byte past a config document's cap (64 MiB): the read stops there
/// and the error names the URL. The old fetch took bodies up to a file's cap (512 MiB)
/// and handed the whole of this one over.
#[test]
fn a_config_past_the_document_cap_is_refused_naming_the_url() {
    let cap = ignition::limits::MAX_DOCUMENT_BYTES;
    let body = "x".repeat(usize::try_from(cap).unwrap() + 1);
    let server = TestServer::start(vec![(200, body)]);
    let url = server.url("/big.ign");
    let once = Retry {
        total: Duration::ZERO,
        ..FAST
    };
    let err = fetch_with_retry(
        &one_try(),
        &format!("{URL_PARAM}={url}"),
        &url,
        once,
        &ManualClock::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{URL_PARAM}={url}: gave up after 1 attempts in 0.0 s: larger than {cap} bytes")
    );
}
