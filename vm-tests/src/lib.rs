//! Shared harness for the QEMU end-to-end tests and benchmarks: build the default image
//! once per process (base and layers cached under `target/`), write configs, boot.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use harmony::build::{build, BuildOptions, BuildReport};
use harmony::run::Vm;

/// `target/` of this workspace (tests run from the crate directory).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join("target")
        })
}

/// The user's Harmony cache (`$HARMONY_CACHE`, else `~/.cache/harmony`), as `harmony build`
/// uses it: Debian packages are downloaded once per machine, not once per checkout, and a
/// test run needs no mirror when they are there.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("HARMONY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(harmony::cache::default_dir)
}

pub fn build_default(out: &Path) -> anyhow::Result<BuildReport> {
    build(&BuildOptions {
        recipe: None,
        out: out.to_path_buf(),
        cache: cache_dir(),
        agent_bin: None,
        init_bin: None,
        source_date_epoch: 0,
    })
}

/// The default image, built once per test process.
pub fn default_image() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        // One output per test binary: concurrent binaries never share a directory.
        let exe = std::env::current_exe().ok();
        let stem = exe
            .as_deref()
            .and_then(Path::file_stem)
            .map(|s| s.to_string_lossy().into_owned());
        let out = target_dir()
            .join("vm-tests")
            .join(format!("default-{}", stem.unwrap_or_default()));
        build_default(&out).unwrap_or_else(|e| panic!("building the default image: {e:#}"));
        out
    })
}

/// Write `json` to a fresh file in `dir` and return its path.
pub fn write_config(dir: &Path, name: &str, json: &serde_json::Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(json).expect("json")).expect("writing config");
    path
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

/// Whether the guest's console should be echoed (`HARMONY_TEST_ECHO` set), for debugging.
pub fn echo_requested() -> bool {
    std::env::var_os("HARMONY_TEST_ECHO").is_some()
}

/// How long a shell command on a booted guest's console may take to answer.
pub const SHELL_ANSWER: Duration = Duration::from_secs(60);

/// Send a command line to the guest's shell and wait for the line it prints that starts
/// with `tag` (trailing white space trimmed).
pub fn ask(vm: &Vm, command: &str, tag: &str) -> String {
    vm.send(&format!("{command}\n"))
        .unwrap_or_else(|e| panic!("sending {command}: {e}"));
    vm.wait_for_line(|l| l.starts_with(tag), SHELL_ANSWER)
        .unwrap_or_else(|e| panic!("{command}: {e}\n{}", vm.tail().join("\n")))
        .trim_end()
        .to_string()
}

/// The entry for `path` in a first-boot report's `written` list.
pub fn written<'a>(report: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    report["written"]
        .as_array()
        .expect("written[]")
        .iter()
        .find(|w| w["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in report: {report}"))
}

/// The `harmony` command (`target/release/harmony`, built by scripts/build.sh), for tests
/// that drive the CLI as a user does.
pub fn harmony_cli() -> PathBuf {
    let path = target_dir().join("release").join("harmony");
    assert!(
        path.is_file(),
        "{} not found: build it with scripts/build.sh (cargo build --release -p harmony-builder)",
        path.display()
    );
    path
}

/// A TCP port on 127.0.0.1 that nothing listens on right now (for a host forward).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}
