//! `harmony push` and registry bases against a real registry on loopback (Debian's
//! `docker-registry`, distribution 2.8), with skopeo as the independent client: skopeo
//! pushes our default base, a recipe builds from it by digest, `harmony push` sends the
//! result, and skopeo reads back exactly what we pushed (same manifest digest), including
//! the kernel in its bootc place.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use harmony::build::default_base::{ensure_default_base, DEFAULT_BASE_TAG};
use support::*;

/// Every path in every layer of the image in layout `dir`.
fn layer_paths(dir: &Path, tag: &str) -> Vec<String> {
    let r: harmony::oci::ImageRef = format!("oci-layout:{}:{tag}", dir.display())
        .parse()
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = harmony::oci::open_image(&r, cache.path()).expect("a valid image");
    let mut paths = Vec::new();
    for layer in &image.layers {
        let mut archive = tar::Archive::new(layer.open_tar().unwrap());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            paths.push(entry.path().unwrap().display().to_string());
        }
    }
    paths
}

/// The blobs `harmony build --progress=json` reported pulling (their ids), each checked to
/// go from `start` at 0 to an `end` with every byte done.
fn pulls_reported(stderr: &[u8]) -> Vec<String> {
    let mut by_id: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for line in String::from_utf8_lossy(stderr).lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if event["phase"] == "pull" {
            let id = event["id"].as_str().expect("a pull's id").to_string();
            by_id.entry(id).or_default().push(event);
        }
    }
    for (id, events) in &by_id {
        let (first, last) = (&events[0], &events[events.len() - 1]);
        assert_eq!(
            (&first["type"], &first["done"]),
            (&"start".into(), &0.into()),
            "{id}"
        );
        assert_eq!(last["type"], "end", "{id}: {events:?}");
        assert_eq!(last["unit"], "bytes", "{id}");
        assert!(last["total"].as_u64().unwrap() > 0, "{id}: {last}");
        assert_eq!(last["done"], last["total"], "{id}: {last}");
    }
    by_id.into_keys().collect()
}

#[test]
fn skopeo_base_builds_and_our_push_reads_back_with_skopeo() {
    if !tools_present() {
        return;
    }
    let registry = Registry::start(None);
    let base_dir = ensure_default_base(&cache_dir(), 0).expect("default base");
    let base_digest = layout_digest(&base_dir);

    // skopeo pushes the base; the registry names it by the digest the layout has.
    let base_ref = format!("docker://{}", registry.at("harmony/debian-base:12"));
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{DEFAULT_BASE_TAG}", base_dir.display()))
        .arg(&base_ref));
    assert_eq!(skopeo_digest(&base_ref, &[]), base_digest);

    // A recipe pinned to that digest in the registry builds (pulled over plain HTTP: loopback).
    let work = tempfile::tempdir().unwrap();
    let recipe = work.path().join("node.yaml");
    std::fs::write(
        &recipe,
        format!(
            "name: pushed-node\nversion: 1.0.0\n\
             base: docker://{}@{base_digest}\n\
             files:\n  - path: /etc/motd\n    contents: \"pushed by harmony\\n\"\n\
             outputs: [oci]\n",
            registry.at("harmony/debian-base")
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    let fresh_cache = work.path().join("cache");
    let built_output = run(harmony()
        .arg("build")
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(&fresh_cache)
        .arg("--progress=json"));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("harmony.lock.json")).unwrap()).unwrap();
    assert_eq!(lock["base"]["manifest_digest"], base_digest.as_str());
    // Every layer was pulled with its progress reported in bytes, from start to done.
    let pulls = pulls_reported(&built_output.stderr);
    for layer in lock["base"]["layers"].as_array().unwrap() {
        let hex = layer.as_str().unwrap().trim_start_matches("sha256:");
        assert!(
            pulls.iter().any(|id| hex.starts_with(id.as_str())),
            "no pull of {hex} in {pulls:?}"
        );
    }
    let built = layout_digest(&out.join("oci"));

    // harmony push, in chunks of 4 MiB for the large layers (the config goes in one PUT).
    let target = registry.at("harmony/node:1.0.0");
    let pushed = run(harmony()
        .arg("push")
        .arg(&out)
        .arg(&target)
        .args(["--chunk-size", "4194304"]));
    let stdout = String::from_utf8(pushed.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("docker://{}@{built}", registry.at("harmony/node"))
    );

    // skopeo sees the digest we built, and copies the image out byte for byte.
    assert_eq!(skopeo_digest(&format!("docker://{target}"), &[]), built);
    let copied = work.path().join("copied");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{target}"))
        .arg(format!("oci:{}:copied", copied.display())));
    assert_eq!(layout_digest(&copied), built);
    let paths = layer_paths(&copied, "copied");
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("usr/lib/modules/") && p.ends_with("/vmlinuz")),
        "no usr/lib/modules/KVER/vmlinuz in the pushed image: {:?}",
        paths
            .iter()
            .filter(|p| p.contains("vmlinuz"))
            .collect::<Vec<_>>()
    );
    assert!(paths.iter().any(|p| p == "etc/motd"), "the files layer");

    // A second push finds every blob in place and uploads none.
    let again = run(harmony().arg("push").arg(&out).arg(&target));
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(log.contains("(0 blob(s) uploaded"), "{log}");
}

#[test]
fn basic_auth_registry_needs_and_takes_credentials() {
    if !tools_present() {
        return;
    }
    let Some(htpasswd) = htpasswd_line("ci", "s3cret") else {
        harmony_test_support::skip(
            "/usr/bin/python3 crypt module not available: cannot write a bcrypt htpasswd",
        );
        return;
    };
    let registry = Registry::start(Some(&htpasswd));
    let base_dir = ensure_default_base(&cache_dir(), 0).expect("default base");
    let target = registry.at("harmony/base:latest");
    let home = tempfile::tempdir().unwrap();

    let refused = isolated(
        harmony().arg("push").arg(&base_dir).arg(&target),
        home.path(),
    )
    .output()
    .unwrap();
    let mut message = String::new();
    refused
        .stderr
        .as_slice()
        .read_to_string(&mut message)
        .unwrap();
    assert!(!refused.status.success());
    assert!(message.contains("--creds USER:PASSWORD"), "{message}");

    let wrong = isolated(
        harmony()
            .arg("push")
            .arg(&base_dir)
            .arg(&target)
            .args(["--creds", "ci:wrong"]),
        home.path(),
    )
    .output()
    .unwrap();
    assert!(!wrong.status.success());
    let message = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        message.contains("refused the credentials of user ci (from --creds)")
            && !message.contains("wrong"),
        "{message}"
    );

    run(harmony()
        .arg("push")
        .arg(&base_dir)
        .arg(&target)
        .env("HARMONY_REGISTRY_CREDS", "ci:s3cret"));
    assert_eq!(
        skopeo_digest(&format!("docker://{target}"), &["--creds", "ci:s3cret"]),
        layout_digest(&base_dir)
    );
}
