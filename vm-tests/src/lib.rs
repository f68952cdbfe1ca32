//! Shared harness for the QEMU end-to-end tests and benchmarks: build the default image
//! once per process and debian-node once per machine per inputs (bases and layers
//! cached), write configs, boot.

pub mod openscap;

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

/// The shipped debian-node recipe (image-recipes/debian-node.yaml).
pub fn debian_node_recipe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-recipes/debian-node.yaml")
}

/// debian-node (systemd, containerd, nftables, IPVS; every output format), built once
/// per machine per inputs: the output directory under `target/vm-tests/` is named by a
/// digest of the recipe, its package list, the builder's sources and the static binaries
/// baked in, and a lock file makes concurrent test binaries wait for one build instead
/// of building twice or reading a half-built directory (`harmony build` renames the
/// output into place only when it is complete). Its base is made once per machine in
/// the Harmony cache ([`cache_dir`]).
pub fn debian_node_image() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let recipe = debian_node_recipe();
        let digest = debian_node_inputs_digest(&recipe)
            .unwrap_or_else(|e| panic!("reading debian-node's inputs: {e:#}"));
        let dir = target_dir().join("vm-tests");
        std::fs::create_dir_all(&dir).expect("creating target/vm-tests");
        let out = dir.join(format!("debian-node-{}", &digest[..16]));
        let lock = std::fs::File::create(out.with_extension("lock")).expect("lock file");
        let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .unwrap_or_else(|(_, e)| panic!("locking {}: {e}", out.display()));
        if !out.join(harmony::manifest::MANIFEST_FILE).is_file() {
            build(&BuildOptions {
                recipe: Some(recipe),
                out: out.clone(),
                cache: cache_dir(),
                agent_bin: None,
                init_bin: None,
                source_date_epoch: 0,
            })
            .unwrap_or_else(|e| panic!("building debian-node: {e:#}"));
        }
        out
    })
}

/// sha256 over what a debian-node build is a function of (besides the Debian archive).
fn debian_node_inputs_digest(recipe: &Path) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut add = |name: &str, bytes: &[u8]| {
        h.update(format!("{name}\0{}\0", bytes.len()).as_bytes());
        h.update(bytes);
    };
    add("recipe", &std::fs::read(recipe)?);
    let recipes = recipe.parent().unwrap_or(Path::new("."));
    add(
        "packages",
        &std::fs::read(recipes.join("debian-node.packages"))?,
    );
    add(
        "agent",
        &harmony::binaries::locate("harmony-agent", None)?.bytes,
    );
    add(
        "init",
        &harmony::binaries::locate("harmony-init", None)?.bytes,
    );
    add("efi-stub", &harmony::binaries::locate_efi_stub()?.bytes);
    let builder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../builder/src");
    let mut files = Vec::new();
    collect_files(&builder, &mut files)?;
    files.sort();
    for f in files {
        let name = f.strip_prefix(&builder).unwrap_or(&f).display().to_string();
        add(&name, &std::fs::read(&f)?);
    }
    Ok(hex::encode(h.finalize()))
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
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
