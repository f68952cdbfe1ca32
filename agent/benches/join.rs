//! The join against the stand-in API server of the join tests (real TLS, real ConfigMap,
//! JWS by openssl), on fresh scratch roots: the whole join (unverified fetch, JWS, CA pin,
//! pinned fetch, the three files in one batch) with one live endpoint, and with a refused
//! endpoint before it (what failover costs). Prints medians; no time is asserted.
//!
//!     cargo bench -p harmony-agent --bench join      (HARMONY_BENCH_ROUNDS=50)

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

#[path = "../tests/join_server/mod.rs"]
mod join_server;

use std::time::{Duration, Instant};

use harmony_agent::join::{join, Backoff, JoinOptions};
use harmony_agent::target_root::TargetRoot;
use ignition::node_settings::NodeSettings;
use join_server::{cluster_kubeconfig, configmap_json, dead_endpoint, openssl_jws, ApiServer, Pki};

fn settings(endpoints: &[String], pin: &str) -> NodeSettings {
    NodeSettings::from_yaml_str(&format!(
        "cluster:\n  api_endpoints: [{}]\n  bootstrap_token: abcdef.0123456789abcdef\n  \
         ca_cert_hashes: [\"{pin}\"]\nrole: worker\n",
        endpoints.join(", ")
    ))
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::var("HARMONY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(50);
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(&dir.path().join("pki"));
    let kubeconfig = cluster_kubeconfig("https://10.0.0.100:6443", &pki.ca_pem);
    let sig = openssl_jws(&kubeconfig, "abcdef", "0123456789abcdef");
    let server = ApiServer::start(&pki, configmap_json(&kubeconfig, &[("abcdef", sig)]));
    let opts = JoinOptions {
        backoff: Backoff::default(),
        hosts_file: None,
        start: None,
    };
    let direct = settings(std::slice::from_ref(&server.url), &pki.ca_pin);
    let failover = settings(&[dead_endpoint(), server.url.clone()], &pki.ca_pin);
    let (mut one, mut two) = (Vec::new(), Vec::new());
    // Alternating, so both see the same machine load.
    for _ in 0..rounds {
        for (s, times) in [(&direct, &mut one), (&failover, &mut two)] {
            let root = tempfile::tempdir().unwrap();
            let t = Instant::now();
            join(s, &TargetRoot::new(root.path()), &opts).expect("join");
            times.push(t.elapsed());
        }
    }
    let (a, b) = (median(one), median(two));
    println!("join, one endpoint:                      median {a:?} over {rounds} rounds");
    println!("join, refused endpoint then a live one: median {b:?} over {rounds} rounds");
    println!(
        "failover adds {:?} ({:.2}x)",
        b.saturating_sub(a),
        b.as_secs_f64() / a.as_secs_f64()
    );
}
