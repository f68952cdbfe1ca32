//! The real image joins a cluster at first boot: the static agent in the guest runs
//! token discovery over QEMU's user network against the stand-in API server on the
//! host (agent/tests/join_server: real TLS, real ConfigMap JSON, JWS by openssl) and
//! reports the join in HARMONY-FIRSTBOOT.

#[path = "../../agent/tests/join_server/mod.rs"]
mod join_server;

use std::time::Duration;

use harmony::run::{run, VmOptions};
use harmony_vm_tests::{default_image, echo_requested, write_config};
use join_server::{cluster_kubeconfig, configmap_json, openssl_jws, ApiServer, Pki};
use serde_json::json;

const BOOT: Duration = Duration::from_secs(240);

#[test]
fn first_boot_joins_through_the_second_endpoint() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        harmony_test_support::skip("tool openssl not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(&tmp.path().join("pki"));
    let kubeconfig = cluster_kubeconfig("https://10.0.2.2:6443", &pki.ca_pem);
    let sig = openssl_jws(&kubeconfig, "abcdef", "0123456789abcdef");
    let server = ApiServer::start(&pki, configmap_json(&kubeconfig, &[("abcdef", sig)]));
    let port = server.url.rsplit(':').next().unwrap();
    // The first endpoint refuses (nothing listens on the guest's own 127.0.0.1:1).
    let endpoints = format!("[\"https://127.0.0.1:1\", \"https://10.0.2.2:{port}\"]");
    let node_yaml = format!(
        "cluster:\n  api_endpoints: {endpoints}\n  bootstrap_token: abcdef.0123456789abcdef\n  \
         ca_cert_hashes: [\"{}\"]\n  discovery_timeout_seconds: 60\nrole: worker\n",
        pki.ca_pin
    );
    let config = json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [{
            "path": "/etc/harmony/node.yaml", "mode": 384, "overwrite": true,
            "contents": {"source": format!("data:;base64,{}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &node_yaml))}
        }]}
    });
    let cfg = write_config(tmp.path(), "join.ign", &config);
    let boot = run(
        &VmOptions {
            ignition: Some(cfg),
            // A node that joins needs its network: rcS runs DHCP when asked.
            extra_cmdline: vec!["ip=dhcp".to_string()],
            echo: echo_requested(),
            ..VmOptions::new(default_image())
        },
        BOOT,
    )
    .expect("first boot");
    let report = &boot.json;
    assert_eq!(report["status"], "success", "{report}");
    let join = &report["join"];
    assert_eq!(
        join["endpoint"],
        format!("https://10.0.2.2:{port}"),
        "{report}"
    );
    assert_eq!(join["ca_pin"], pki.ca_pin.as_str());
    assert_eq!(join["server"], "https://10.0.2.2:6443");
    // Unverified, then pinned: two requests from the guest.
    assert_eq!(server.hits(), 2);
    assert!(!report.to_string().contains("0123456789abcdef"));
    eprintln!("join in the guest: {join}");
}
