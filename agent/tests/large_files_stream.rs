//! A config's large file goes to disk without ever being held in memory: a 200 MiB file
//! given as a gzip `data:` URL (plus an append) is applied, then applied again, by
//! `harmony-agent apply`, and its peak resident size stays far below the file's size.
//! The agent is this test binary's only child, so RUSAGE_CHILDREN is the agent's.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::process::Command;

use sha2::{Digest, Sha256};

const FILE_BYTES: u64 = 200 << 20;
/// A memory bound, generous for a 200 MiB file: the agent's own binary and buffers.
const MAX_PEAK_RSS: u64 = 64 << 20;

/// `FILE_BYTES` of a repeating text line, gzipped: a small config, a large file.
fn gzipped_text() -> (Vec<u8>, Sha256) {
    let line = b"harmony streams large files to disk\n";
    let chunk: Vec<u8> = line.iter().copied().cycle().take(1 << 20).collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut hash = Sha256::new();
    for _ in 0..FILE_BYTES >> 20 {
        gz.write_all(&chunk).unwrap();
        hash.update(&chunk);
    }
    (gz.finish().unwrap(), hash)
}

fn apply(root: &std::path::Path, config: &std::path::Path) {
    harmony_test_support::command::run_ok(
        Command::new(env!("CARGO_BIN_EXE_harmony-agent"))
            .args(["apply", "--root"])
            .arg(root)
            .arg(config),
    );
}

fn sha256_of_file(path: &std::path::Path) -> [u8; 32] {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h.finalize().into();
        }
        h.update(&buf[..n]);
    }
}

#[test]
fn a_200_mib_gzip_file_is_applied_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (gz, mut whole) = gzipped_text();
    whole.update(b"end\n");
    let whole: [u8; 32] = whole.finalize().into();
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, gz);
    let config = dir.path().join("large.ign");
    std::fs::write(
        &config,
        format!(
            r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[
            {{"path":"/var/lib/large","overwrite":true,
              "contents":{{"source":"data:;base64,{b64}","compression":"gzip"}},
              "append":[{{"source":"data:,end%0A"}}]}}]}}}}"#
        ),
    )
    .unwrap();

    apply(&root, &config);
    let written = root.join("var/lib/large");
    assert_eq!(std::fs::metadata(&written).unwrap().len(), FILE_BYTES + 4);
    assert_eq!(sha256_of_file(&written), whole);
    // Again: the file already there is compared by digest, not read into memory.
    apply(&root, &config);
    assert_eq!(sha256_of_file(&written), whole);

    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak = usage.max_rss() as u64 * 1024;
    eprintln!("peak resident size {peak} bytes");
    assert!(
        peak < MAX_PEAK_RSS,
        "peak resident size {peak} bytes applying a {FILE_BYTES}-byte file"
    );
}
