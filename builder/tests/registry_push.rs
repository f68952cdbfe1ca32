//! `harmony push` and registry bases against a real registry on loopback (Debian's
//! `docker-registry`, distribution 2.8), with skopeo as the independent client: skopeo
//! pushes our default base, a recipe builds from it by digest, `harmony push` sends the
//! result, and skopeo reads back exactly what we pushed (same manifest digest), including
//! the kernel in its bootc place.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harmony::build::default_base::{ensure_default_base, DEFAULT_BASE_TAG};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

fn tools_present() -> bool {
    let skopeo = Command::new("skopeo").arg("--version").output().is_ok();
    if !Path::new(REGISTRY_BIN).exists() || !skopeo {
        eprintln!(
            "SKIPPED (tool docker-registry or skopeo not installed): \
             apt-get install docker-registry skopeo"
        );
        return false;
    }
    true
}

/// A registry serving from a temporary directory on 127.0.0.1, stopped when dropped.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// `htpasswd`: a bcrypt htpasswd file's text, to make the registry ask for Basic auth.
    fn start(htpasswd: Option<&str>) -> Registry {
        // A port taken between our probe and the registry's bind makes it exit: try again.
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut config = format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: harmony-test\n",
                dir.path().join("data").display()
            );
            if let Some(text) = htpasswd {
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, text).unwrap();
                config += &format!(
                    "auth:\n  htpasswd:\n    realm: harmony-test\n    path: {}\n",
                    file.display()
                );
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting docker-registry");
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                let answered = matches!(
                    ureq::get(&format!("http://127.0.0.1:{port}/v2/")).call(),
                    Ok(_) | Err(ureq::Error::Status(401, _))
                );
                if answered {
                    return Registry {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not come up on a loopback port in 5 tries");
    }

    fn at(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn harmony() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harmony"))
}

fn cache_dir() -> PathBuf {
    std::env::var_os("HARMONY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(harmony::cache::default_dir)
}

fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(reference));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"].as_str().expect("Digest").to_string()
}

/// The one manifest digest of an OCI image layout.
fn layout_digest(dir: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    manifests[0]["digest"].as_str().unwrap().to_string()
}

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
    run(harmony()
        .arg("build")
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .arg("--cache")
        .arg(&fresh_cache));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("harmony.lock.json")).unwrap()).unwrap();
    assert_eq!(lock["base"]["manifest_digest"], base_digest.as_str());
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

/// A bcrypt htpasswd line from the system's crypt(3) through Python; None when this
/// Python has no `crypt` module.
fn htpasswd_line(user: &str, password: &str) -> Option<String> {
    let out = Command::new("/usr/bin/python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(sys.argv[1] + ':' + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            user,
            password,
        ])
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && line.contains(":$2")).then_some(line)
}

#[test]
fn basic_auth_registry_needs_and_takes_credentials() {
    if !tools_present() {
        return;
    }
    let Some(htpasswd) = htpasswd_line("ci", "s3cret") else {
        eprintln!("SKIPPED (python3 crypt module not available): cannot write a bcrypt htpasswd");
        return;
    };
    let registry = Registry::start(Some(&htpasswd));
    let base_dir = ensure_default_base(&cache_dir(), 0).expect("default base");
    let target = registry.at("harmony/base:latest");

    let refused = harmony()
        .arg("push")
        .arg(&base_dir)
        .arg(&target)
        .env_remove("HARMONY_REGISTRY_CREDS")
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

    let wrong = harmony()
        .arg("push")
        .arg(&base_dir)
        .arg(&target)
        .args(["--creds", "ci:wrong"])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("still unauthorized as ci"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
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
