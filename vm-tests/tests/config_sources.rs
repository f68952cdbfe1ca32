//! One config, delivered to the default image through each platform source the agent
//! reads, applied at first boot and reported in HARMONY-FIRSTBOOT with its source:
//! QEMU fw_cfg, and `ignition.config.url=` served over HTTP by this test from the host
//! (QEMU's user network shows the host's loopback to the guest as 10.0.2.2).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony::run::{run, VmOptions};
use harmony_vm_tests::{default_image, echo_requested, sha256_hex, write_config};
use serde_json::{json, Value};

const BOOT: Duration = Duration::from_secs(240);
const MOTD: &[u8] = b"configured by whichever source\n";

fn config() -> Value {
    json!({
        "ignition": {"version": "3.3.0"},
        "storage": {
            "files": [{"path": "/etc/motd", "mode": 420, "overwrite": true,
                       "contents": {"source": "data:,configured%20by%20whichever%20source%0A"}}],
            "directories": [{"path": "/srv/node", "mode": 488}],
            "links": [{"path": "/etc/harmony/motd", "target": "/etc/motd"}]
        }
    })
}

fn options(ignition: Option<std::path::PathBuf>, cmdline: Vec<String>) -> VmOptions {
    VmOptions {
        ignition,
        extra_cmdline: cmdline,
        echo: echo_requested(),
        ..VmOptions::new(default_image())
    }
}

/// The config applied: the three entries, each as the config asked.
fn assert_applied(report: &Value, source: &str) {
    assert_eq!(report["status"], "success", "{report}");
    assert_eq!(report["source"], source, "{report}");
    let config_bytes = serde_json::to_vec_pretty(&config()).unwrap();
    assert_eq!(
        report["config_sha256"],
        sha256_hex(&config_bytes),
        "{report}"
    );
    let written = report["written"].as_array().expect("written[]");
    let find = |path: &str| {
        written
            .iter()
            .find(|w| w["path"] == path)
            .unwrap_or_else(|| panic!("{path} not in report: {report}"))
    };
    let motd = find("/etc/motd");
    assert_eq!(
        (motd["mode"].as_str(), motd["sha256"].as_str()),
        (Some("0644"), Some(sha256_hex(MOTD).as_str()))
    );
    assert_eq!(find("/srv/node")["mode"], "0750");
    assert_eq!(find("/etc/harmony/motd")["target"], "/etc/motd");
}

#[test]
fn fw_cfg() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "cfg.ign", &config());
    let boot = run(&options(Some(cfg), Vec::new()), BOOT).expect("first boot");
    assert_applied(&boot.json, "fw_cfg:opt/com.coreos/config");
    assert_eq!(boot.json["platform"], "qemu");
}

/// A one-file HTTP server on the host's loopback: answers 503 to the first `busy`
/// requests (a provisioning server still starting), then the file; logs request lines.
struct ConfigServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl ConfigServer {
    fn start(body: Vec<u8>, busy: usize) -> ConfigServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(request_line.trim().to_string());
                    log.len()
                };
                let wanted = request_line.split_whitespace().nth(1) == Some("/cfg.ign");
                let reply = if n <= busy {
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec()
                } else if wanted {
                    let mut r =
                        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                            .into_bytes();
                    r.extend_from_slice(&body);
                    r
                } else {
                    b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
                };
                let _ = conn.write_all(&reply);
            }
        });
        ConfigServer { port, requests }
    }
}

#[test]
fn ignition_config_url_over_http_from_the_host() {
    let body = serde_json::to_vec_pretty(&config()).unwrap();
    let server = ConfigServer::start(body, 2);
    let url = format!("http://10.0.2.2:{}/cfg.ign", server.port);
    let cmdline = vec![
        "ignition.platform.id=metal".to_string(),
        format!("ignition.config.url={url}"),
    ];
    let boot = run(&options(None, cmdline), BOOT).expect("first boot");
    assert_applied(&boot.json, &format!("url:{url}"));
    assert_eq!(boot.json["platform"], "metal");
    // Two refusals, then the config: the agent retried over the network rcS brought up.
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests.len() == 3
            && requests
                .iter()
                .all(|r| r.starts_with("GET /cfg.ign HTTP/1.")),
        "{requests:?}"
    );
}
