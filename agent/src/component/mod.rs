//! `harmony-agent component run NAME`: run a platform component baked into the image
//! (`/usr/share/harmony/components/NAME/`, an OCI image layout plus `config/`) without
//! a container runtime.
//!
//! Why our own runner: containerd is not on every Harmony image (the default busybox
//! image has none), and a component must still run there. The runner does what a
//! container needs: the image's layers unpacked once per manifest digest under
//! `/var/lib/harmony/component-rootfs/NAME` (`unpacked`; whiteouts honoured), fresh
//! mount/PID/UTS/IPC namespaces, the root read-only with only a minimal /dev, /tmp, /run,
//! the rendered config (read-only) and the data directory (`data_dir`, writable) mounted
//! on it (`sandbox`), and the catalog entry's command (from component.json; the image
//! config's Entrypoint+Cmd when it names none) with the image's Env plus the entry's
//! variables and node secrets (`secrets`), as the entry's user with only its declared
//! capabilities and no_new_privs (`privileges`). The network namespace is the host's (a
//! component serves on the node's addresses). The process stays in the foreground so
//! init (respawn), systemd (Restart=always) or supervise-daemon restarts it.

mod data_dir;
mod described;
mod image;
mod in_root;
mod privileges;
mod sandbox;
mod secrets;
mod unpack;
mod unpacked;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use data_dir::DATA_DIR;
pub use image::{ComponentImage, RuntimeConfig};
pub use unpacked::{RootfsPaths, Unpacked, ROOTFS_DIR};

pub const COMPONENTS_DIR: &str = "usr/share/harmony/components";

/// Unpack NAME's image under `root` (once per manifest) and run it; returns its exit code.
pub fn run(root: &Path, name: &str) -> anyhow::Result<i32> {
    let dir = root.join(COMPONENTS_DIR).join(name);
    // Everything that can be refused is checked before anything is written: the
    // description, the capabilities it names, the node secrets it needs.
    let described =
        described::Described::read(&dir).with_context(|| format!("component {name}"))?;
    let keep = privileges::capability_set(
        &described.capabilities,
        &format!("{}: capabilities", dir.join("component.json").display()),
    )
    .with_context(|| format!("component {name}"))?;
    let handed =
        secrets::gather(root, &described.secrets).with_context(|| format!("component {name}"))?;
    let image = ComponentImage::open(&dir)
        .with_context(|| format!("component {name}: reading {}", dir.display()))?;
    let paths = RootfsPaths::new(root, name);
    let unpacked = unpacked::ensure(&image, &paths).with_context(|| {
        format!(
            "component {name}: unpacking into {}",
            paths.rootfs.display()
        )
    })?;
    match unpacked {
        Unpacked::Reused => println!(
            "harmony-agent: component {name}: {} already unpacked in {}",
            image.manifest_digest,
            paths.rootfs.display()
        ),
        Unpacked::Layers(n) => println!(
            "harmony-agent: component {name}: {} ({n} layer(s)) unpacked into {}",
            image.manifest_digest,
            paths.rootfs.display()
        ),
    }
    let ids = image
        .runtime
        .user_ids(&paths.rootfs)
        .with_context(|| format!("component {name}: user"))?;
    let data = match &described.data_mount {
        Some(at) => Some((data_dir::ensure(root, name, ids.0, ids.1)?, at.as_str())),
        None => None,
    };
    let config = dir.join("config");
    let mounts = sandbox::Mounts {
        config: image
            .config_mount
            .as_deref()
            .filter(|_| config.is_dir())
            .map(|at| (config.as_path(), at)),
        data: data.as_ref().map(|(d, at)| (d.as_path(), *at)),
    };
    launch(
        name,
        &paths.rootfs,
        &mounts,
        &image.runtime,
        ids,
        keep,
        &handed,
    )
}

/// Namespaces and mounts here, the rest in the child (see `privileges`); then the
/// entrypoint as a child we wait for.
fn launch(
    name: &str,
    rootfs: &Path,
    mounts: &sandbox::Mounts<'_>,
    rt: &RuntimeConfig,
    (uid, gid): (u32, u32),
    keep: rustix::thread::CapabilitySet,
    handed: &secrets::Handed,
) -> anyhow::Result<i32> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};

    let argv = rt.argv();
    let Some(program) = argv.first() else {
        anyhow::bail!("component {name}: the image config has neither Entrypoint nor Cmd");
    };
    let program = rt.resolve(rootfs, program)?;
    // Our own mount, UTS and IPC namespaces; the PID namespace applies to the child,
    // which is its PID 1.
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC,
    )
    .context("unshare (mount, pid, uts, ipc)")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private in the new mount namespace")?;
    nix::unistd::sethostname(name).context("sethostname")?;
    open_files_limit().with_context(|| format!("component {name}: RLIMIT_NOFILE"))?;
    let proc = sandbox::prepare(rootfs, mounts, handed, uid, gid)
        .with_context(|| format!("component {name}: setting up {}", rootfs.display()))?;
    let confinement = privileges::Confinement::new(
        &sandbox::fd_path(&proc),
        rootfs,
        rt.working_dir.as_deref().unwrap_or("/"),
        (uid, gid),
        keep,
    )?;
    let mut cmd = std::process::Command::new(&program);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(rt.env_pairs())
        .envs(handed.env.iter().map(|(k, v)| (k, v)));
    #[allow(unsafe_code)]
    // SAFETY: what a container's PID 1 must do before exec (mount its /proc, pivot_root,
    // drop privileges) has no safe hook in std; `enter` only makes syscalls on memory
    // prepared before the fork (no allocation, no locks), and this process runs no other
    // thread here.
    unsafe {
        cmd.pre_exec(move || confinement.enter());
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("component {name}: starting {}", program.display()))?;
    drop(proc);
    println!(
        "harmony-agent: component {name}: started pid {} (uid {uid}, capabilities {}): {}",
        child.id(),
        capability_names(keep),
        argv.join(" ")
    );
    let status = child.wait()?;
    println!("harmony-agent: component {name}: exited ({status})");
    Ok(status.code().unwrap_or(1))
}

/// The open-files limit a container gets (containerd's and Docker's default): the
/// process runs without the privilege to raise its own, and init's 1024 is too few for a
/// proxy (haproxy asks for 8206 at maxconn 4096 and refuses to start without them).
/// Capped at the kernel's fs.nr_open, which no limit may exceed; where the agent itself
/// lacks CAP_SYS_RESOURCE (in a container) the soft limit is raised to its hard one.
const OPEN_FILES: u64 = 1 << 20;

fn open_files_limit() -> anyhow::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(OPEN_FILES);
    let n = OPEN_FILES.min(nr_open);
    match setrlimit(Resource::RLIMIT_NOFILE, n, n) {
        Err(nix::errno::Errno::EPERM) => {
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("getrlimit")?;
            println!("harmony-agent: open files limited to {hard} (raising it to {n}: EPERM)");
            setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("setrlimit")
        }
        other => other.context("setrlimit"),
    }
}

/// `NET_BIND_SERVICE,IPC_LOCK`, or `none`.
fn capability_names(set: rustix::thread::CapabilitySet) -> String {
    let names: Vec<&str> = set.iter_names().map(|(n, _)| n).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

use std::os::unix::process::CommandExt;

impl RuntimeConfig {
    /// A bare name is looked up in the image's PATH (inside `root`).
    pub fn resolve(&self, root: &Path, program: &str) -> anyhow::Result<PathBuf> {
        if program.contains('/') {
            return Ok(PathBuf::from(program));
        }
        let path = self
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path.split(':')
            .map(|d| Path::new(d).join(program))
            .find(|p| root.join(p.strip_prefix("/").unwrap_or(p)).is_file())
            .ok_or_else(|| anyhow::anyhow!("`{program}` is not in the image's PATH ({path})"))
    }
}

#[cfg(test)]
mod tests {
    /// The node's config wrote no HEC token: `component run` says which file is missing
    /// and unpacks nothing.
    #[test]
    fn a_component_whose_secret_is_missing_does_not_start() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(super::COMPONENTS_DIR).join("fluent-bit");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("component.json"),
            r#"{"name": "fluent-bit", "config_mount": "/fluent-bit/etc",
                "command": ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.conf"],
                "secrets": [{"name": "splunk-hec-token", "env": "SPLUNK_HEC_TOKEN"}]}"#,
        )
        .unwrap();
        let e = format!("{:#}", super::run(root.path(), "fluent-bit").unwrap_err());
        assert!(
            e.starts_with(
                "component fluent-bit: secret /etc/harmony/secrets/splunk-hec-token is missing"
            ),
            "{e}"
        );
        assert!(!root.path().join(super::ROOTFS_DIR).exists());
    }
}
