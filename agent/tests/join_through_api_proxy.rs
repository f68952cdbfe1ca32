//! The join with `harmony.ha.local_proxy`: kubelet's bootstrap kubeconfig names
//! https://127.0.0.1:PORT with `tls-server-name`, and a TLS client that uses exactly what
//! that kubeconfig says (its CA, its server, its server name) reaches an API server
//! through the api-proxy while the first backend is dead. The API server is the
//! real-protocol stand-in of the join tests (real TLS, real ConfigMap); the client is curl.

#[path = "join_server/mod.rs"]
mod join_server;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use harmony_agent::api_proxy::{ApiProxy, ProxyConfig};
use harmony_agent::join::{join, Backoff, JoinOptions};
use harmony_agent::target_root::TargetRoot;
use ignition::node_settings::NodeSettings;
use join_server::{cluster_kubeconfig, configmap_json, dead_endpoint, openssl_jws, ApiServer, Pki};

const TOKEN_ID: &str = "abcdef";
const SECRET: &str = "0123456789abcdef";

fn tool(name: &str) -> bool {
    let ok = Command::new(name).arg("--version").output().is_ok()
        || Command::new(name).arg("version").output().is_ok();
    if !ok {
        harmony_test_support::skip(format!("tool {name} not installed"));
    }
    ok
}

#[test]
fn kubelet_reaches_the_api_through_the_local_proxy() {
    if !tool("openssl") || !tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    // cluster-info names the VIP; with a local proxy, kubelet is sent to 127.0.0.1.
    let kubeconfig = cluster_kubeconfig("https://10.0.0.10:8443", &pki.ca_pem);
    let sig = openssl_jws(&kubeconfig, TOKEN_ID, SECRET);
    let server = ApiServer::start(&pki, configmap_json(&kubeconfig, &[(TOKEN_ID, sig)]));
    let server_addr = server.url.trim_start_matches("https://").to_string();
    let dead = dead_endpoint();
    let dead_addr = dead.trim_start_matches("https://").to_string();

    let proxy = ApiProxy::start(ProxyConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        vec![dead_addr.parse().unwrap(), server_addr.parse().unwrap()],
    ))
    .unwrap();
    let port = proxy.local_addr().port();
    let settings = NodeSettings::from_yaml_str(&format!(
        "cluster:\n  api_endpoints: [{url}]\n  bootstrap_token: {TOKEN_ID}.{SECRET}\n  \
         ca_cert_hashes: [{pin}]\nrole: worker\nha:\n  backends: [{dead_addr}, {server_addr}]\n  \
         local_proxy: {{port: {port}}}\n",
        url = server.url,
        pin = pki.ca_pin,
    ))
    .unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let opts = JoinOptions {
        backoff: Backoff {
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(80),
            // Generous: the join returns as soon as it succeeds; the total only bounds a
            // failure, and a loaded machine must not turn slow answers into one.
            total: Duration::from_secs(60),
            request_timeout: Duration::from_secs(5),
        },
        hosts_file: None,
        start: None,
    };
    let report = join(&settings, &TargetRoot::new(&root), &opts).unwrap();
    assert_eq!(report.kubelet_server, format!("https://127.0.0.1:{port}"));

    let conf: serde_yaml_ng::Value = serde_yaml_ng::from_slice(
        &std::fs::read(root.join("etc/kubernetes/bootstrap-kubelet.conf")).unwrap(),
    )
    .unwrap();
    let cluster = &conf["clusters"][0]["cluster"];
    let url = cluster["server"].as_str().unwrap();
    assert_eq!(url, format!("https://127.0.0.1:{port}"));
    let name = cluster["tls-server-name"].as_str().unwrap();
    assert_eq!(name, "kubernetes");
    let ca = base64::engine::general_purpose::STANDARD
        .decode(cluster["certificate-authority-data"].as_str().unwrap())
        .unwrap();
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, ca).unwrap();

    // What kubelet does with that kubeconfig: connect to the server's address, verify the
    // certificate against the CA for the name tls-server-name gives (curl's --connect-to
    // keeps the URL's name for SNI and verification while dialling 127.0.0.1:PORT).
    let before = server.hits();
    for _ in 0..3 {
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--max-time", "10"])
            .arg("--cacert")
            .arg(&ca_path)
            .args(["--connect-to", &format!("{name}:{port}:127.0.0.1:{port}")])
            .arg(format!(
                "https://{name}:{port}{}",
                join_server::CLUSTER_INFO
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl through the proxy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"cluster-info\""));
    }
    assert_eq!(server.hits(), before + 3);
    // The dead backend is taken out by the checks (3 failures, 2 s apart).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while proxy.status()[0].up {
        assert!(std::time::Instant::now() < deadline, "{:?}", proxy.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(proxy.status()[1].up);
    proxy.shutdown();
}
