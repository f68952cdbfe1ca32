//! What the registry tests share: a real registry on loopback (Debian's `docker-registry`),
//! skopeo as the independent client, and `harmony` run as a user runs it.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]
// Each test crate that includes this module uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub fn tools_present() -> bool {
    let skopeo = Command::new("skopeo").arg("--version").output().is_ok();
    if !Path::new(REGISTRY_BIN).exists() || !skopeo {
        harmony_test_support::skip(
            "tool docker-registry or skopeo not installed: \
             Debian packages docker-registry, skopeo",
        );
        return false;
    }
    true
}

/// A registry serving from a temporary directory on 127.0.0.1, stopped when dropped.
pub struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// `htpasswd`: a bcrypt htpasswd file's text, to make the registry ask for Basic auth.
    pub fn start(htpasswd: Option<&str>) -> Registry {
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

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn at(&self, repo: &str) -> String {
        format!("127.0.0.1:{}/{repo}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn harmony() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harmony"))
}

pub fn cache_dir() -> PathBuf {
    std::env::var_os("HARMONY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(harmony::cache::default_dir)
}

pub fn skopeo_digest(reference: &str, extra: &[&str]) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(reference));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["Digest"].as_str().expect("Digest").to_string()
}

/// The one manifest digest of an OCI image layout.
pub fn layout_digest(dir: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "{index}");
    manifests[0]["digest"].as_str().unwrap().to_string()
}

/// A bcrypt htpasswd line from the system's crypt(3) through Python; None when this
/// Python has no `crypt` module.
pub fn htpasswd_line(user: &str, password: &str) -> Option<String> {
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

/// `cmd` with no registry credentials from this machine: HOME, XDG_RUNTIME_DIR and the
/// auth file variables point into `home` (which must exist), so only what a test writes
/// there is found.
pub fn isolated<'a>(cmd: &'a mut Command, home: &Path) -> &'a mut Command {
    std::fs::create_dir_all(home.join("run")).unwrap();
    cmd.env("HOME", home)
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("HARMONY_REGISTRY_CREDS")
}
