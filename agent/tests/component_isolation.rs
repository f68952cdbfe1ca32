//! `harmony-agent component run` for real (issue 12 items 3 and 5): a component image
//! made of the host's static busybox, baked into a scratch root as the builder lays it
//! out, run by the agent binary (as root: it makes namespaces and mounts), and looked at
//! from inside: its uid, capabilities, no_new_privs, /dev, /proc, a read-only root, and
//! writable /tmp and data directory. Run again it finds its data and reuses the unpacked
//! root; a new image digest is unpacked afresh.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

const BUSYBOX: &str = "/bin/busybox";
const NAME: &str = "probe";

/// What the component reports about itself, into its data directory (`/data`).
const PROBE: &str = r#"
exec > /data/report 2>&1
grep -E '^(Uid|Gid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status
echo "pid $$"
echo "nofile $(ulimit -n) $(ulimit -Hn)"
echo "dev $(ls /dev | tr '\n' ' ')"
touch /var/open/x && echo "root writable" || echo "root read-only"
touch /etc/probe/written && echo "config writable" || echo "config read-only"
touch /tmp/x && echo "tmp writable"
echo "config says $(cat /etc/probe/setting)"
echo "image says $(cat /etc/version)"
n=$(cat /data/starts 2>/dev/null || echo 0)
echo $((n + 1)) > /data/starts
echo "starts $(cat /data/starts)"
"#;

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn put_blob(layout: &Path, bytes: &[u8]) -> String {
    let hex = sha256(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&hex), bytes).unwrap();
    format!("sha256:{hex}")
}

/// One layer: busybox, `sh` and the tools the probe uses as links to it, /etc/version,
/// and /var/open, a directory anyone may write to were the root writable.
fn layer(version: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let header = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(size);
        h
    };
    for (dir, mode) in [
        ("bin/", 0o755),
        ("etc/", 0o755),
        ("var/", 0o755),
        ("var/open/", 0o1777),
    ] {
        b.append_data(
            &mut header(tar::EntryType::Directory, mode, 0),
            dir,
            &[][..],
        )
        .unwrap();
    }
    let busybox = std::fs::read(BUSYBOX).unwrap();
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o755, busybox.len() as u64),
        "bin/busybox",
        &busybox[..],
    )
    .unwrap();
    for tool in ["sh", "grep", "ls", "tr", "touch", "cat", "echo"] {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{tool}"), "busybox")
            .unwrap();
    }
    b.append_data(
        &mut header(tar::EntryType::Regular, 0o644, version.len() as u64),
        "etc/version",
        version.as_bytes(),
    )
    .unwrap();
    b.into_inner().unwrap()
}

/// The component as the builder bakes it: an OCI layout, component.json and config/.
fn bake(root: &Path, version: &str) {
    let dir = root.join("usr/share/harmony/components").join(NAME);
    let layer = layer(version);
    let layer_digest = put_blob(&dir, &layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"], "User": "0:0"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put_blob(&dir, &config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": put_blob(&dir, &manifest), "size": manifest.len()}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    let described = serde_json::json!({
        "name": NAME,
        "config_mount": "/etc/probe",
        "command": ["sh", "-c", PROBE],
        "user": "1000:1000",
        "capabilities": ["NET_BIND_SERVICE"],
        "data_mount": "/data",
    });
    std::fs::write(
        dir.join("component.json"),
        serde_json::to_vec(&described).unwrap(),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    // Open to all: only the read-only mount keeps the process from writing there.
    std::fs::set_permissions(dir.join("config"), PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::File::create(dir.join("config/setting"))
        .unwrap()
        .write_all(b"rendered")
        .unwrap();
}

/// `component run` as init would start it; returns its stdout.
fn run(root: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_harmony-agent"))
        .args(["component", "run", NAME, "--root"])
        .arg(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn report(root: &Path) -> String {
    std::fs::read_to_string(
        root.join("var/lib/harmony/components")
            .join(NAME)
            .join("report"),
    )
    .unwrap()
}

fn line<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in:\n{report}"))
        .trim()
}

#[test]
fn a_component_runs_confined_and_keeps_its_data_across_restarts() {
    if !Path::new(BUSYBOX).exists() {
        harmony_test_support::skip("tool busybox (busybox-static) not installed");
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        harmony_test_support::skip("component run needs root (namespaces, mounts)");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    bake(root, "one");
    let first = run(root);
    assert!(first.contains("layer(s)) unpacked into"), "{first}");
    let r = report(root);
    // The entry's uid and gid; only NET_BIND_SERVICE (bit 10) in every set, bounding
    // included; no_new_privs; PID 1 of its own namespace with its own /proc.
    assert_eq!(line(&r, "Uid:"), "1000\t1000\t1000\t1000", "{r}");
    assert_eq!(line(&r, "Gid:"), "1000\t1000\t1000\t1000", "{r}");
    for set in ["CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(line(&r, set), "0000000000000400", "{set}\n{r}");
    }
    assert_eq!(line(&r, "NoNewPrivs:"), "1", "{r}");
    assert_eq!(line(&r, "pid"), "1", "{r}");
    // Raised for it (a non-root process cannot raise its own): to 1048576, or where the
    // test runs without CAP_SYS_RESOURCE (a container) the soft limit up to the hard one.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    let nofile: Vec<u64> = line(&r, "nofile")
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    assert!(
        nofile[0] == nofile[1] && nofile[0] >= hard.min(1 << 20),
        "{nofile:?} {hard}"
    );
    assert_eq!(
        line(&r, "dev"),
        "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero",
        "{r}"
    );
    assert_eq!(line(&r, "root"), "read-only", "{r}");
    assert_eq!(line(&r, "config"), "read-only", "{r}");
    assert_eq!(line(&r, "tmp"), "writable", "{r}");
    assert_eq!(line(&r, "config says"), "rendered", "{r}");
    assert_eq!(line(&r, "image says"), "one", "{r}");
    assert_eq!(line(&r, "starts"), "1", "{r}");
    let data = root.join("var/lib/harmony/components").join(NAME);
    let meta = std::fs::metadata(&data).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.permissions().mode() & 0o7777),
        (1000, 1000, 0o700)
    );

    // A restart: the data is there, the unpacked root is reused as it is.
    let second = run(root);
    assert!(second.contains("already unpacked in"), "{second}");
    let r = report(root);
    assert_eq!(line(&r, "starts"), "2", "{r}");
    assert_eq!(line(&r, "image says"), "one", "{r}");

    // A new image (another manifest digest): unpacked afresh, the data kept.
    bake(root, "two");
    let third = run(root);
    assert!(third.contains("layer(s)) unpacked into"), "{third}");
    let r = report(root);
    assert_eq!(line(&r, "image says"), "two", "{r}");
    assert_eq!(line(&r, "starts"), "3", "{r}");
}
