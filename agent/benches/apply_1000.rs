//! A 1,000-file Ignition config applied by `harmony-agent apply` and by the real Ignition
//! 2.14 (stages fetch-offline + files; fetch-offline only reads the config) on fresh
//! scratch roots in the same run, alternating, so both see the same machine load. Prints
//! both medians and their ratio; the two trees are checked equal so both did the same
//! work. Needs root and Ignition, like the differential test. No time is asserted.
//!
//!     cargo bench -p harmony-agent --bench apply_1000      (HARMONY_BENCH_ROUNDS=5)

// The shared test helpers, some of which only the differential test calls.
#[allow(dead_code)]
#[path = "../tests/oracle/mod.rs"]
mod oracle;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use oracle::{real_ignition, scratch_root, tree};

const FILES: usize = 1000;

/// 1,000 files of 1 KiB in 10 new directories, mixed modes, one owned by a user by name:
/// what a node's config with certificates, manifests and drop-ins looks like, in bulk.
fn config() -> Vec<u8> {
    let files: Vec<serde_json::Value> = (0..FILES)
        .map(|i| {
            let body: Vec<u8> = format!("file {i:04}\n").repeat(103).into_bytes()[..1024].to_vec();
            let mut f = serde_json::json!({
                "path": format!("/srv/bench/d{:02}/file{i:04}.conf", i % 10),
                "contents": {"source": format!(
                    "data:;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&body)
                )},
                "mode": if i % 3 == 0 { 0o600 } else { 0o644 },
            });
            if i % 100 == 0 {
                f["user"] = serde_json::json!({"name": "svc"});
            }
            f
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": files},
    }))
    .expect("a JSON value serialises")
}

fn fresh(dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::create_dir(&p).expect("creating a scratch dir");
    scratch_root::build(&p).expect("building the scratch root");
    p
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    oracle::require_root("the apply benchmark");
    real_ignition::require();
    let rounds: usize = std::env::var("HARMONY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let work = tempfile::tempdir().expect("a temp dir");
    fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod the temp dir");
    let cfg_path = work.path().join("bench.ign");
    let cfg = config();
    fs::write(&cfg_path, &cfg).expect("writing the config");

    let (mut harmony, mut ignition) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let h_root = fresh(work.path(), &format!("harmony-{round}"));
        let i_root = fresh(work.path(), &format!("ignition-{round}"));
        let i_work = fresh(work.path(), &format!("ignition-work-{round}"));
        let fixture = tree::read(&h_root);

        let t = Instant::now();
        oracle::agent_apply(&h_root, &cfg_path).expect("harmony-agent apply");
        harmony.push(t.elapsed());

        let t = Instant::now();
        real_ignition::apply(&cfg, &i_root, &i_work).expect("ignition");
        ignition.push(t.elapsed());

        if round == 0 {
            let a = tree::normalise(tree::read(&i_root), &fixture);
            let b = tree::normalise(tree::read(&h_root), &fixture);
            let diffs = tree::differences(&a, &b);
            assert!(diffs.is_empty(), "the trees differ:\n{}", diffs.join("\n"));
            let written = b
                .nodes
                .keys()
                .filter(|p| p.starts_with("/srv/bench/"))
                .count();
            assert_eq!(written, FILES + 10, "1,000 files and their 10 directories");
        }
    }
    let (h, i) = (median(harmony), median(ignition));
    harmony_test_support::bench::figure(
        "agent apply, 1,000 files",
        h.as_secs_f64(),
        "ignition 2.14",
        i.as_secs_f64(),
        "s",
    );
    println!(
        "apply_1000: {FILES} files, {} KiB config, median of {rounds}: harmony-agent apply {:.3} s, \
         ignition 2.14 {:.3} s, ratio ignition/harmony {:.2}",
        cfg.len() / 1024,
        h.as_secs_f64(),
        i.as_secs_f64(),
        i.as_secs_f64() / h.as_secs_f64()
    );
}
