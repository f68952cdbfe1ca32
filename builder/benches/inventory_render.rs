//! `harmony inventory render` with 10,000 nodes: parse and check, then write every
//! node's Ignition and Vaquero host document. Prints seconds and nodes per second.
//!
//!     cargo bench -p harmony-builder --bench inventory_render [-- NODES]

use std::time::Instant;

fn inventory(nodes: usize) -> String {
    let mut s = String::from(
        "site: {id: bench, agent: {addr: 10.0.0.2}}\n\
         subnet: {id: nodes, cidr: 10.0.0.0/16, gateway: 10.0.0.1, dns: [10.0.0.1]}\n\
         cluster:\n  api_endpoints: [https://10.0.0.10:6443, https://10.0.0.11:6443]\n  \
         bootstrap_token: abcdef.0123456789abcdef\n  \
         ca_cert_hashes: [sha256:8b1a9953c4611296a827abf8c47804d7e6c49c6b0d1e5c4e5b6f1d0f8b9a7c6d]\n  \
         pod_cidr: 10.128.0.0/9\nnodes:\n",
    );
    for i in 0..nodes {
        let n = i + 16;
        let role = if i < 3 { "control-plane" } else { "worker" };
        s += &format!(
            "  - name: node-{i:05}\n    mac: \"52:54:00:{:02x}:{:02x}:{:02x}\"\n    ip: 10.0.{}.{}\n    role: {role}\n    labels: {{rack: r{}}}\n",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff,
            n / 256,
            n % 256,
            i % 40
        );
    }
    s
}

fn main() {
    let nodes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let text = inventory(nodes);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("inventory.yaml");
    std::fs::write(&path, &text).expect("write");
    println!(
        "inventory: {nodes} nodes, {:.1} MiB of YAML",
        text.len() as f64 / (1 << 20) as f64
    );
    for round in 1..=2 {
        let start = Instant::now();
        let inv = harmony::inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let parsed = start.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = dir.path().join("out");
        let (_, report) =
            harmony::inventory::render::render(&inv, &out).unwrap_or_else(|e| panic!("{e:#}"));
        let written = t.elapsed().as_secs_f64();
        let total = start.elapsed().as_secs_f64();
        assert_eq!(report.nodes.len(), nodes);
        println!(
            "round {round}: parse+check {parsed:.2} s, render+write {written:.2} s, \
             total {total:.2} s = {:.0} nodes/s",
            nodes as f64 / total
        );
        if round == 2 {
            // No other tool renders this inventory: the figure stands alone.
            harmony_test_support::bench::figure(
                &format!("inventory render, {nodes} nodes"),
                total,
                "-",
                f64::NAN,
                "s",
            );
        }
    }
}
