//! `ignition.config.merge` / `replace` references fetched over real HTTP by the agent's
//! `NetFetcher`, with their `httpHeaders` on the wire (a small server on 127.0.0.1 that
//! answers only requests carrying the expected header, and records every request head).

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony_agent::fetch::{NetFetcher, RetryPolicy};

/// Serves `docs` by request path, 403 when the request lacks `Authorization: Bearer t`.
fn server(docs: BTreeMap<&'static str, String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let log = heads.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let authorised = head
                .to_ascii_lowercase()
                .contains("authorization: bearer t\r\n");
            log.lock().unwrap().push(head);
            let (status, body) = match docs.get(path.as_str()) {
                Some(d) if authorised => (200, d.clone()),
                Some(_) => (403, String::new()),
                None => (404, String::new()),
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (base, heads)
}

fn fetcher() -> NetFetcher {
    NetFetcher {
        retry: RetryPolicy {
            attempts: 2,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        },
        ..Default::default()
    }
}

fn reference(base: &str, path: &str, with_header: bool) -> serde_json::Value {
    let mut r = serde_json::json!({"source": format!("{base}{path}")});
    if with_header {
        r["httpHeaders"] = serde_json::json!([{"name": "Authorization", "value": "Bearer t"}]);
    }
    r
}

#[test]
fn merge_and_replace_over_http_send_the_headers() {
    let child = r#"{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/merged","mode":420,"contents":{"source":"data:,over%20http"}}]}}"#;
    let replacing =
        r#"{"ignition":{"version":"3.4.0"},"storage":{"directories":[{"path":"/srv/replaced"}]}}"#;
    let (base, heads) = server(BTreeMap::from([
        ("/child.ign", child.to_string()),
        ("/replacing.ign", replacing.to_string()),
    ]));
    let root = serde_json::json!({
        "ignition": {"version": "3.4.0", "config": {"merge": [reference(&base, "/child.ign", true)]}},
        "storage": {"files": [{"path": "/etc/root", "contents": {"source": "data:,r"}}]}
    });
    let cfg = ignition::node_config(root.to_string().as_bytes(), &fetcher()).unwrap();
    let paths: Vec<&str> = cfg.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["/etc/root", "/etc/merged"]);
    assert_eq!(
        cfg.files[1].contents,
        Some(ignition::Contents::from(&b"over http"[..]))
    );
    assert_eq!(cfg.files[1].mode, Some(0o644));

    let root = serde_json::json!({
        "ignition": {"version": "3.1.0", "config": {"replace": reference(&base, "/replacing.ign", true)}},
        "storage": {"files": [{"path": "/etc/root"}]}
    });
    let cfg = ignition::node_config(root.to_string().as_bytes(), &fetcher()).unwrap();
    assert!(cfg.files.is_empty(), "{cfg:?}");
    assert_eq!(cfg.directories[0].path, "/srv/replaced");

    let heads = heads.lock().unwrap();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[0].starts_with("GET /child.ign "), "{}", heads[0]);
    assert!(heads[1].starts_with("GET /replacing.ign "), "{}", heads[1]);
}

#[test]
fn without_the_header_the_server_refuses_and_the_error_names_the_reference() {
    let (base, _) = server(BTreeMap::from([(
        "/child.ign",
        r#"{"ignition":{"version":"3.4.0"}}"#.to_string(),
    )]));
    let root = serde_json::json!({
        "ignition": {"version": "3.4.0", "config": {"merge": [
            {"source": "data:,%7B%22ignition%22%3A%7B%22version%22%3A%223.4.0%22%7D%7D"},
            reference(&base, "/child.ign", false)
        ]}}
    });
    let err = ignition::node_config(root.to_string().as_bytes(), &fetcher()).unwrap_err();
    assert_eq!(err.path, "ignition.config.merge[1].source");
    assert!(
        err.to_string().starts_with(&format!(
            "ignition.config.merge[1].source: cannot fetch \"{base}/child.ign\": "
        )),
        "{err}"
    );
    assert!(err.to_string().contains("403"), "{err}");
}
