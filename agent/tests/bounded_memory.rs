//! A gzip bomb in a config: `harmony-agent apply` refuses it with an error naming the
//! field, and its memory stays bounded while it does. The agent runs under a 1 GiB
//! address-space limit (a 1 GiB bomb inflated whole cannot fit), and its peak resident
//! size is measured (the test binary's only child, so RUSAGE_CHILDREN is the agent's).

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::Command;

const BOMB_BYTES: u64 = 1 << 30;

fn gzip_zeros(len: u64) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..len >> 20 {
        gz.write_all(&chunk).unwrap();
    }
    gz.finish().unwrap()
}

#[test]
fn apply_refuses_a_1_gib_gzip_bomb_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gzip_zeros(BOMB_BYTES),
    );
    let config = dir.path().join("bomb.ign");
    std::fs::write(
        &config,
        format!(
            r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[
            {{"path":"/etc/ok","contents":{{"source":"data:,ok"}}}},
            {{"path":"/var/bomb","contents":{{"source":"data:;base64,{b64}","compression":"gzip"}}}}]}}}}"#
        ),
    )
    .unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            r#"ulimit -v 1048576 && exec "$0" apply --root "$1" "$2""#,
        ])
        .arg(env!("CARGO_BIN_EXE_harmony-agent"))
        .arg(&root)
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let cap = ignition::limits::MAX_FILE_BYTES;
    assert!(
        stderr.contains(&format!(
            "storage.files[1].contents: decompressed size exceeds {cap} bytes"
        )),
        "{stderr}"
    );
    // Nothing half-applied: the valid file before the bomb is not written either.
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak = usage.max_rss() as u64 * 1024;
    eprintln!("peak resident size {peak} bytes");
    // Contents are inflated only to be counted and hashed, never held. (The figure can
    // include what this test process had resident when it forked the child.)
    assert!(
        peak < 128 << 20,
        "peak resident size {peak} bytes for a {cap}-byte cap"
    );
}
