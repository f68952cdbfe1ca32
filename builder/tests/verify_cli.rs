//! `harmony verify` as a user runs it: exit status, the per-rule text, `--json`, and a
//! clear error for something that is not an image. Images are small OCI layouts made
//! here from a busybox-shaped tree, hardened or not.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use harmony::harden::apply_profile;
use harmony::oci::{ImageDetails, LayoutWriter};
use harmony::tree::diff::diff;
use harmony::tree::layer::encode_layer;
use harmony::tree::{Entry, Kind, Meta, Tree};

fn put(t: &mut Tree, path: &str, text: &str, mode: u32) {
    if let Some((parent, _)) = path.rsplit_once('/') {
        t.mkdir_all(parent, &Meta::new(0o755)).unwrap();
    }
    t.insert(
        path,
        Entry {
            kind: Kind::File(Arc::new(text.as_bytes().to_vec())),
            meta: Meta::new(mode),
        },
    )
    .unwrap();
}

fn busybox_tree() -> Tree {
    let mut t = Tree::new();
    put(&mut t, "etc/inittab", "::sysinit:/etc/init.d/rcS\n", 0o644);
    put(&mut t, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644);
    put(&mut t, "etc/group", "root:x:0:\nshadow:x:42:\n", 0o644);
    put(&mut t, "usr/sbin/nft", "", 0o755);
    t
}

/// One layer for the base, one for the hardening (if any): like a real build.
fn layout(dir: &Path, hardened: bool) {
    let base = busybox_tree();
    let mut w = LayoutWriter::create(dir, 0).unwrap();
    w.add_layer(
        &encode_layer(&diff(&Tree::new(), &base), 0).unwrap(),
        "base",
    )
    .unwrap();
    if hardened {
        let mut h = base.clone();
        apply_profile(&mut h, &[]).unwrap();
        w.add_layer(&encode_layer(&diff(&base, &h), 0).unwrap(), "hardening")
            .unwrap();
    }
    w.finish(&ImageDetails {
        tag: "t".into(),
        labels: Default::default(),
        annotations: Default::default(),
    })
    .unwrap();
}

fn harmony(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(args)
        .env("HARMONY_LOG", "warn")
        .output()
        .unwrap()
}

#[test]
fn verify_passes_a_hardened_layout_and_fails_an_unhardened_one() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let bad = tmp.path().join("bad");
    layout(&good, true);
    layout(&bad, false);

    let ok = harmony(&["verify".as_ref(), good.as_os_str()]);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("PASS     sysctl-network"), "{text}");
    assert!(text.contains("N/A      ssh-root-login"), "{text}");

    let fail = harmony(&["verify".as_ref(), bad.as_os_str()]);
    let text = String::from_utf8_lossy(&fail.stdout);
    let err = String::from_utf8_lossy(&fail.stderr);
    assert_eq!(fail.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL     mount-tmp"), "{text}");
    assert!(
        text.contains("         - /etc/fstab has no entry for /tmp"),
        "{text}"
    );
    assert!(
        err.contains("rule(s) failed: sysctl-network, sysctl-kernel,"),
        "{err}"
    );

    let json = harmony(&["verify".as_ref(), "--json".as_ref(), bad.as_os_str()]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let tmp_rule = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "mount-tmp")
        .unwrap();
    assert_eq!(tmp_rule["outcome"]["status"], "fail");
    assert_eq!(
        tmp_rule["outcome"]["details"][0],
        "/etc/fstab has no entry for /tmp"
    );
    assert_eq!(
        v["failed"].as_u64(),
        Some(
            v["rules"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["outcome"]["status"] == "fail")
                .count() as u64
        )
    );
}

#[test]
fn verify_names_what_is_not_an_image() {
    let tmp = tempfile::tempdir().unwrap();
    let out = harmony(&["verify".as_ref(), tmp.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neither a harmony build output"), "{err}");
}
