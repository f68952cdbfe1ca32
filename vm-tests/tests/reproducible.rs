//! Same recipe, built twice at different times into different directories with separate
//! layer caches: every artifact has the same sha256, the SPDX SBOM included (which the SPDX
//! project's validator accepts). Only the base (made once from the same .debs) is shared,
//! as a registry image would be. Then a rebuild into the second cache copies every artifact
//! from it, and one whose cached bytes were tampered with is made again: the same sha256
//! every time.

use std::collections::BTreeMap;

use harmony::build::default_base::{ensure_default_base, DEFAULT_BASE_DIR};
use harmony::build::{build, BuildOptions};
use harmony::manifest::Manifest;
use harmony_vm_tests::cache_dir;

fn digests(m: &Manifest) -> BTreeMap<String, (u64, String)> {
    m.artifacts
        .iter()
        .map(|a| (a.path.clone(), (a.size, a.sha256.clone())))
        .collect()
}

#[test]
fn two_builds_give_identical_artifacts() {
    let shared = cache_dir();
    let build_into = |cache: &std::path::Path, out: std::path::PathBuf| {
        build(&BuildOptions {
            recipe: None,
            out,
            cache: cache.to_path_buf(),
            agent_bin: None,
            init_bin: None,
            source_date_epoch: 0,
        })
    };
    ensure_default_base(&shared, 0).expect("default base");
    let tmp = tempfile::tempdir().unwrap();
    let mut manifests = Vec::new();
    for run in ["first", "second"] {
        // A fresh cache per build: the step layers are encoded again, not reused.
        let cache = tmp.path().join(format!("cache-{run}"));
        std::fs::create_dir_all(cache.join("bases")).unwrap();
        let base = shared.join(DEFAULT_BASE_DIR);
        std::os::unix::fs::symlink(&base, cache.join(DEFAULT_BASE_DIR)).unwrap();
        let stamp = base.with_extension("stamp");
        std::os::unix::fs::symlink(&stamp, cache.join(DEFAULT_BASE_DIR).with_extension("stamp"))
            .unwrap();
        let report = build_into(&cache, tmp.path().join(format!("out-{run}")))
            .unwrap_or_else(|e| panic!("{run} build: {e:#}"));
        assert_eq!(
            (report.cached_steps, report.cached_artifacts),
            (0, 0),
            "the {run} build must not reuse layers or artifacts"
        );
        manifests.push(report.manifest);
        // Wall-clock time must not leak into the bytes.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let (a, b) = (digests(&manifests[0]), digests(&manifests[1]));
    assert!(a.len() >= 5, "expected every artifact: {a:?}");
    // The SBOM is an artifact like the others: the same bytes from both builds.
    assert!(
        a.contains_key("harmony-default.spdx.json"),
        "no SBOM in the manifest: {a:?}"
    );
    assert_eq!(
        a, b,
        "artifacts differ between two builds of the same recipe"
    );

    // Nothing changed: every artifact group (boot files, disk, disk formats) is copied.
    let cache = tmp.path().join("cache-second");
    let again = build_into(&cache, tmp.path().join("out-second")).expect("rebuild");
    assert_eq!(again.cached_artifacts, 3, "{}", again.summary());
    assert_eq!(
        digests(&again.manifest),
        a,
        "a cached rebuild changed an artifact"
    );

    // A cached blob that no longer has its digest is never copied: made again instead.
    let qcow2 = &a["disk.qcow2"].1;
    std::fs::write(cache.join("artifacts/blobs").join(qcow2), b"tampered").unwrap();
    let remade = build_into(&cache, tmp.path().join("out-second")).expect("rebuild");
    assert_eq!(remade.cached_artifacts, 2, "{}", remade.summary());
    assert_eq!(digests(&remade.manifest), a);
    let out_qcow2 = std::fs::read(tmp.path().join("out-second/disk.qcow2")).unwrap();
    assert_ne!(out_qcow2, b"tampered");
    // And stored again.
    let healed = build_into(&cache, tmp.path().join("out-second")).expect("rebuild");
    assert_eq!(healed.cached_artifacts, 3, "{}", healed.summary());

    // The SBOM passes the SPDX project's own validator.
    let Some(validator) = harmony_test_support::find_tool("pyspdxtools") else {
        harmony_test_support::skip(
            "tool pyspdxtools not installed: PyPI spdx-tools (scripts/setup-host.sh)",
        );
        return;
    };
    let sbom = tmp.path().join("out-first/harmony-default.spdx.json");
    let out = std::process::Command::new(validator)
        .arg("-i")
        .arg(&sbom)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pyspdxtools -i {}: {}{}",
        sbom.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
