//! `kernel.from`: the kernel comes from a second OCI image, layered onto a base that has
//! none; the result boots and the agent reports first boot.

use std::time::Duration;

use harmony::base::debian::{make_debian_base, BaseMode, DebianBaseOptions};
use harmony::build::default_base::{ensure_default_base, DEFAULT_BASE_TAG};
use harmony::build::{build, BuildOptions};
use harmony::run::{run, VmOptions};
use harmony_vm_tests::cache_dir;

#[test]
fn a_kernel_from_a_second_image_boots() {
    let shared = cache_dir();
    let kernel_image = ensure_default_base(&shared, 0).expect("default base (has the kernel)");
    let tmp = tempfile::tempdir().unwrap();
    let userland = tmp.path().join("userland");
    make_debian_base(&DebianBaseOptions {
        packages: vec!["busybox-static".into()],
        mode: BaseMode::Unpack,
        out: userland.clone(),
        tag: "latest".into(),
        cache: shared.clone(),
        source_date_epoch: 0,
    })
    .expect("busybox-only base");

    let recipe = tmp.path().join("split.yaml");
    std::fs::write(
        &recipe,
        format!(
            "name: split-kernel\nversion: '1'\nbase: oci-layout:userland:latest\n\
             kernel:\n  from: oci-layout:{}:{DEFAULT_BASE_TAG}\noutputs: [pxe]\n",
            kernel_image.display()
        ),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let report = build(&BuildOptions {
        recipe: Some(recipe),
        out: out.clone(),
        cache: shared,
        agent_bin: None,
        init_bin: None,
        source_date_epoch: 0,
    })
    .unwrap_or_else(|e| panic!("build: {e:#}"));
    let lock = &report.manifest.inputs;
    assert!(
        lock["kernel_image"]["manifest_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{lock}"
    );
    assert_ne!(
        lock["kernel_image"]["manifest_digest"],
        lock["base"]["manifest_digest"]
    );

    let first = run(&VmOptions::new(&out), Duration::from_secs(240)).expect("boot");
    assert_eq!(first.json["status"], "success", "{}", first.json);
}
