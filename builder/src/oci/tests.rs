//! Opening images end to end: layouts written here, tampered with, archived, and served
//! by a real registry on loopback.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use super::digest::{blob_path, sha256_digest};
use super::*;
use crate::tree::layer::{diff_trees, encode_layer};
use crate::tree::unpack::apply_layer;
use crate::tree::{Entry, Kind, Meta, Tree};

fn sample_tree(text: &str) -> Tree {
    let mut t = Tree::new();
    t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
    t.insert(
        "etc/motd",
        Entry {
            kind: Kind::File(Arc::new(text.as_bytes().to_vec())),
            meta: Meta::new(0o644),
        },
    )
    .unwrap();
    t
}

/// A one-layer layout tagged `tag` at `dir`; returns the manifest digest.
fn write_layout(dir: &Path, tag: &str, text: &str) -> String {
    let mut w = LayoutWriter::create(dir, 0).unwrap();
    w.add_layer(
        &encode_layer(&diff_trees(&Tree::new(), &sample_tree(text)), 0).unwrap(),
        "test",
    )
    .unwrap();
    w.finish(&ImageDetails {
        tag: tag.into(),
        ..Default::default()
    })
    .unwrap()
}

fn layout_ref(dir: &Path, suffix: &str) -> ImageRef {
    format!("oci-layout:{}{suffix}", dir.display())
        .parse()
        .unwrap()
}

#[test]
fn opens_the_sole_manifest_by_tag_and_by_digest_and_applies_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let digest = write_layout(&dir, "v1", "hello");
    for suffix in ["".to_string(), ":v1".to_string(), format!("@{digest}")] {
        let img = open_image(&layout_ref(&dir, &suffix), tmp.path()).unwrap();
        assert_eq!(img.manifest_digest, digest);
        assert_eq!(
            img.layers[0].media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let mut t = Tree::new();
        apply_layer(&mut t, img.layers[0].open_tar().unwrap()).unwrap();
        assert_eq!(t, sample_tree("hello"));
    }
    let err = open_image(&layout_ref(&dir, ":v2"), tmp.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no manifest tagged \"v2\"") && err.contains("v1"),
        "{err}"
    );
}

#[test]
fn tampered_blobs_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    write_layout(&dir, "v1", "hello");
    let img = open_image(&layout_ref(&dir, ":v1"), tmp.path()).unwrap();
    let layer = img.layers[0].path.clone();
    let good = std::fs::read(&layer).unwrap();

    // Same size, different bytes: the blob digest catches it.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&layer, &bad).unwrap();
    let err = open_image(&layout_ref(&dir, ":v1"), tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::DigestMismatch { .. } | OciError::Document { .. }
        ),
        "{err}"
    );

    // Extra bytes: the size check names the layer.
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&layer, &longer).unwrap();
    let err = open_image(&layout_ref(&dir, ":v1"), tmp.path()).unwrap_err();
    assert!(
        matches!(err, OciError::SizeMismatch { .. })
            && err.to_string().contains(&img.layers[0].digest),
        "{err}"
    );
    std::fs::write(&layer, &good).unwrap();

    // A config whose diff_id does not match the layer's uncompressed bytes.
    let config_path = blob_path(&dir, &img.config_digest);
    let config = std::fs::read_to_string(&config_path).unwrap();
    let forged = config.replace(&img.layers[0].diff_id, &sha256_digest(b"other"));
    let forged_digest = sha256_digest(forged.as_bytes());
    std::fs::write(blob_path(&dir, &forged_digest), &forged).unwrap();
    let manifest_path = blob_path(&dir, &img.manifest_digest);
    let manifest = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace(&img.config_digest, &forged_digest);
    let manifest_digest = sha256_digest(manifest.as_bytes());
    std::fs::write(blob_path(&dir, &manifest_digest), &manifest).unwrap();
    let err = open_image(
        &layout_ref(&dir, &format!("@{manifest_digest}")),
        tmp.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("diff_id"), "{err}");
}

#[test]
fn zstd_and_uncompressed_layers_are_verified_and_opened() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    write_layout(&dir, "v1", "hello");
    let img = open_image(&layout_ref(&dir, ""), tmp.path()).unwrap();
    let mut tar = Vec::new();
    img.layers[0]
        .open_tar()
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    for (media_type, blob) in [
        ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
        (
            "application/vnd.oci.image.layer.v1.tar+zstd",
            zstd::encode_all(&tar[..], 3).unwrap(),
        ),
    ] {
        let digest = sha256_digest(&blob);
        std::fs::write(blob_path(&dir, &digest), &blob).unwrap();
        let source = LayerBlob {
            digest,
            diff_id: img.layers[0].diff_id.clone(),
            media_type: media_type.into(),
            size: blob.len() as u64,
            path: blob_path(&dir, &sha256_digest(&blob)),
        };
        let out = tmp.path().join(format!("out-{}", blob.len()));
        let mut w = LayoutWriter::create(&out, 0).unwrap();
        w.add_source_layer(&source, "copied").unwrap();
        w.finish(&ImageDetails {
            tag: "t".into(),
            ..Default::default()
        })
        .unwrap();
        let copied = open_image(&layout_ref(&out, ":t"), tmp.path()).unwrap();
        assert_eq!(copied.layers[0].media_type, media_type);
        let mut t = Tree::new();
        apply_layer(&mut t, copied.layers[0].open_tar().unwrap()).unwrap();
        assert_eq!(t, sample_tree("hello"));
    }
}

/// Rewrite a layout's index.json to point at a multi-platform index.
fn make_multi_arch(dir: &Path, amd64_manifest: &str) {
    let size = std::fs::metadata(blob_path(dir, amd64_manifest))
        .unwrap()
        .len();
    let nested = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256_digest(b"arm"), "size": 3,
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd64_manifest, "size": size,
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    });
    let bytes = serde_json::to_vec(&nested).unwrap();
    std::fs::write(blob_path(dir, &sha256_digest(&bytes)), &bytes).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha256_digest(&bytes),
                       "size": bytes.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_multi_arch_index_resolves_to_linux_amd64() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let digest = write_layout(&dir, "v1", "hello");
    make_multi_arch(&dir, &digest);
    let img = open_image(&layout_ref(&dir, ":multi"), tmp.path()).unwrap();
    assert_eq!(img.manifest_digest, digest);
}

fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

#[test]
fn archives_unpack_into_the_cache_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let digest = write_layout(&dir, "v1", "hello");
    let archive = tmp.path().join("img.tar");
    tar_dir(&dir, &archive);
    let cache = tmp.path().join("cache");
    let r: ImageRef = format!("oci-archive:{}:v1", archive.display())
        .parse()
        .unwrap();
    assert_eq!(open_image(&r, &cache).unwrap().manifest_digest, digest);
    assert_eq!(open_image(&r, &cache).unwrap().manifest_digest, digest);
    assert_eq!(
        std::fs::read_dir(cache.join("archives")).unwrap().count(),
        1
    );
}

/// A Debian docker-registry on 127.0.0.1:PORT with its storage in a temp dir; killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    _storage: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let storage = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = storage.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.path().join("data").display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker-registry (Debian package docker-registry) must be installed");
    let mut registry = Registry {
        child,
        port,
        _storage: storage,
    };
    // Generous: a loaded machine may take a while to start it; an early exit ends the wait.
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < bound {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return registry;
        }
        if let Ok(Some(status)) = registry.child.try_wait() {
            panic!("docker-registry exited ({status}) before listening on 127.0.0.1:{port}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("docker-registry did not listen on 127.0.0.1:{port}");
}

fn skopeo_copy(from: &str, to: &str) {
    let status = std::process::Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", from, to])
        .status()
        .expect("skopeo must be installed");
    assert!(status.success(), "skopeo copy {from} {to}");
}

#[test]
fn pulls_from_a_registry_by_tag_digest_and_multi_arch_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let digest = write_layout(&dir, "v1", "from the registry");
    let registry = start_registry();
    let host = format!("127.0.0.1:{}", registry.port);
    skopeo_copy(
        &format!("oci:{}:v1", dir.display()),
        &format!("docker://{host}/harmony/base:v1"),
    );
    let cache = tmp.path().join("cache");

    let by_tag: ImageRef = format!("docker://{host}/harmony/base:v1").parse().unwrap();
    let img = open_image(&by_tag, &cache).unwrap();
    // skopeo keeps OCI manifests byte for byte, so the digest is the one we wrote.
    assert_eq!(img.manifest_digest, digest);
    let mut t = Tree::new();
    apply_layer(&mut t, img.layers[0].open_tar().unwrap()).unwrap();
    assert_eq!(t, sample_tree("from the registry"));

    let pinned: ImageRef = format!("docker://{host}/harmony/base:v1@{digest}")
        .parse()
        .unwrap();
    assert_eq!(open_image(&pinned, &cache).unwrap().manifest_digest, digest);
    let wrong: ImageRef = format!("docker://{host}/harmony/base@{}", sha256_digest(b"nope"))
        .parse()
        .unwrap();
    let err = open_image(&wrong, &cache).unwrap_err().to_string();
    assert!(
        err.contains("HTTP 404") || err.contains("mismatch"),
        "{err}"
    );

    make_multi_arch(&dir, &digest);
    skopeo_copy(
        &format!("oci:{}:multi", dir.display()),
        &format!("docker://{host}/harmony/multi:latest"),
    );
    let multi: ImageRef = format!("docker://{host}/harmony/multi:latest")
        .parse()
        .unwrap();
    let _ = std::fs::remove_dir_all(&cache);
    assert_eq!(open_image(&multi, &cache).unwrap().manifest_digest, digest);
}
