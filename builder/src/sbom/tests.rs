//! The SBOM of a small image: contents, determinism, and SPDX validity by the SPDX
//! project's own validator (`pyspdxtools -i FILE`, PyPI spdx-tools; setup-host.sh).

use std::sync::Arc;

use super::*;
use crate::sbom::os_packages::tests::put;
use crate::tree::Entry;

const STATUS: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\n\
Version: 2.36-9+deb12u4\n\nPackage: libstdc++6\nStatus: install ok installed\n\
Architecture: amd64\nVersion: 12.2.0-14\n";

fn tree() -> Tree {
    let mut tree = Tree::new();
    put(
        &mut tree,
        os_packages::DPKG_STATUS,
        STATUS.as_bytes().to_vec(),
    );
    put(&mut tree, "etc/os-release", b"ID=debian\n".to_vec());
    tree
}

fn kernel() -> Kernel {
    Kernel {
        version: "6.1.0-56-cloud-amd64".to_string(),
        vmlinuz: Arc::new(b"not really a kernel".to_vec()),
        modules_dir: "usr/lib/modules/6.1.0-56-cloud-amd64".to_string(),
    }
}

const BASE_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const HAPROXY_DIGEST: &str =
    "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn render_with(tree: &Tree, epoch: i64) -> Value {
    let base: ImageRef = "docker://registry.example/library/debian:12"
        .parse()
        .unwrap();
    let haproxy: ImageRef = "docker://127.0.0.1:5000/haproxy:2.6".parse().unwrap();
    let kernel = kernel();
    let inputs = SbomInputs {
        name: "node",
        version: "1.0",
        tree,
        kernel: &kernel,
        base: SourceImageInput {
            name: "base",
            reference: &base,
            manifest_digest: BASE_DIGEST,
        },
        components: vec![SourceImageInput {
            name: "haproxy",
            reference: &haproxy,
            manifest_digest: HAPROXY_DIGEST,
        }],
        binaries: vec![
            BinaryInput {
                name: "harmony-agent",
                bytes: b"agent bytes",
            },
            BinaryInput {
                name: "harmony-init",
                bytes: b"init bytes",
            },
        ],
        image_digest: None,
        source_date_epoch: epoch,
    };
    serde_json::from_slice(&render(&inputs).unwrap()).unwrap()
}

fn purls(doc: &Value) -> Vec<String> {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["externalRefs"][0]["referenceLocator"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

#[test]
fn lists_packages_kernel_binaries_crates_and_images_with_purls() {
    let doc = render_with(&tree(), 1_700_000_000);
    let purls = purls(&doc);
    for expected in [
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64",
        "pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64",
        "pkg:generic/linux@6.1.0-56-cloud-amd64",
        "pkg:oci/debian@sha256:1111111111111111111111111111111111111111111111111111111111111111?repository_url=registry.example/library/debian",
        "pkg:oci/haproxy@sha256:2222222222222222222222222222222222222222222222222222222222222222?repository_url=127.0.0.1:5000/haproxy",
    ] {
        assert!(purls.iter().any(|p| p == expected), "{expected} not in {purls:#?}");
    }
    assert!(purls.iter().any(|p| p.starts_with("pkg:cargo/serde@")));
    let agent = package(&doc, "harmony-agent");
    assert_eq!(
        agent["checksums"][0]["checksumValue"],
        hex::encode(Sha256::digest(b"agent bytes"))
    );
    let linux = package(&doc, "linux");
    assert_eq!(
        linux["checksums"][0]["checksumValue"],
        hex::encode(Sha256::digest(b"not really a kernel"))
    );
    let serde = package(&doc, "serde");
    assert_eq!(serde["checksums"][0]["algorithm"], "SHA256");
    // serde is linked into both binaries and listed once.
    assert_eq!(
        doc["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "serde")
            .count(),
        1
    );
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
}

#[test]
fn same_inputs_same_bytes_and_the_namespace_follows_the_content() {
    let a = render_with(&tree(), 1_700_000_000);
    assert_eq!(a, render_with(&tree(), 1_700_000_000));
    let mut other = tree();
    other
        .insert(
            os_packages::DPKG_STATUS,
            Entry::file(STATUS.replace("12.2.0-14", "12.2.0-15").into_bytes(), 0o644),
        )
        .unwrap();
    let b = render_with(&other, 1_700_000_000);
    assert_ne!(a["documentNamespace"], b["documentNamespace"]);
    let ns = a["documentNamespace"].as_str().unwrap();
    assert!(
        ns.starts_with("https://spdx.org/spdxdocs/harmony-node-1.0-"),
        "{ns}"
    );
}

#[test]
fn a_bad_package_database_fails_the_sbom_naming_the_file() {
    let mut bad = tree();
    bad.insert(
        os_packages::DPKG_STATUS,
        Entry::file(
            b"Package: x\nStatus: install ok installed\n".to_vec(),
            0o644,
        ),
    )
    .unwrap();
    let kernel = kernel();
    let base: ImageRef = "docker://registry.example/library/debian:12"
        .parse()
        .unwrap();
    let err = render(&SbomInputs {
        name: "node",
        version: "1.0",
        tree: &bad,
        kernel: &kernel,
        base: SourceImageInput {
            name: "base",
            reference: &base,
            manifest_digest: BASE_DIGEST,
        },
        components: vec![],
        binaries: vec![],
        image_digest: None,
        source_date_epoch: 0,
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("/var/lib/dpkg/status: stanza 1: no `Version` field"),
        "{err}"
    );
}

#[test]
fn pyspdxtools_validates_the_document() {
    let Some(tool) = harmony_test_support::find_tool("pyspdxtools") else {
        harmony_test_support::skip(
            "tool pyspdxtools not installed: PyPI spdx-tools (scripts/setup-host.sh)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.spdx.json");
    std::fs::write(&file, serde_json::to_vec(&render_with(&tree(), 0)).unwrap()).unwrap();
    assert_spdx_valid(&tool, &file);
}

/// `pyspdxtools -i FILE` exits 0 and prints no validation message for a valid document.
pub fn assert_spdx_valid(tool: &std::path::Path, file: &std::path::Path) {
    let out = std::process::Command::new(tool)
        .arg("-i")
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stdout.contains("invalid") && !stderr.contains("invalid"),
        "pyspdxtools -i {}: {}\n{stdout}\n{stderr}",
        file.display(),
        out.status
    );
}
