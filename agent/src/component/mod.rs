//! `harmony-agent component run NAME`: run a platform component baked into the image
//! (`/usr/share/harmony/components/NAME/`, an OCI image layout plus `config/`) without
//! a container runtime.
//!
//! Why our own runner: containerd is not on every Harmony image (the default busybox
//! image has none), and a component must still run there. The runner does the least a
//! container needs: the image's layers unpacked into a fresh root under
//! `/run/harmony/components/NAME/rootfs` (whiteouts honoured), the rendered config
//! bind-mounted read-only at the catalog's path, fresh mount/PID/UTS namespaces, a chroot,
//! and the catalog entry's command (from component.json; the image config's
//! Entrypoint+Cmd when it names none) with the image's Env plus the entry's variables and
//! node secrets (see `secrets`), its WorkingDir and User. The network
//! namespace is the host's (a component serves on the node's addresses), and /dev is the
//! host's, bind-mounted. The process stays in the foreground so init (respawn),
//! systemd (Restart=always) or supervise-daemon restarts it.

mod described;
mod image;
mod in_root;
mod secrets;
mod unpack;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use image::{ComponentImage, RuntimeConfig};

pub const COMPONENTS_DIR: &str = "usr/share/harmony/components";
pub const RUN_DIR: &str = "run/harmony/components";

/// Unpack NAME's image under `root` and run it; returns its exit code.
pub fn run(root: &Path, name: &str) -> anyhow::Result<i32> {
    let dir = root.join(COMPONENTS_DIR).join(name);
    // Secrets first: a node whose config did not write one gets that said, and nothing
    // is unpacked or started.
    let described =
        described::Described::read(&dir).with_context(|| format!("component {name}"))?;
    let handed =
        secrets::gather(root, &described.secrets).with_context(|| format!("component {name}"))?;
    let image = ComponentImage::open(&dir)
        .with_context(|| format!("component {name}: reading {}", dir.display()))?;
    let rootfs = root.join(RUN_DIR).join(name).join("rootfs");
    let layers = prepare_rootfs(&image, &rootfs)
        .with_context(|| format!("component {name}: unpacking into {}", rootfs.display()))?;
    println!(
        "harmony-agent: component {name}: {} ({layers} layer(s)) unpacked into {}",
        image.manifest_digest,
        rootfs.display()
    );
    let config_mount = image.config_mount.clone();
    launch(
        name,
        &rootfs,
        &dir.join("config"),
        config_mount.as_deref(),
        &image.runtime,
        &handed,
    )
}

/// A fresh root from the layers, bottom first; returns how many were applied.
pub fn prepare_rootfs(image: &ComponentImage, rootfs: &Path) -> anyhow::Result<usize> {
    if rootfs.exists() {
        std::fs::remove_dir_all(rootfs)
            .with_context(|| format!("removing the old {}", rootfs.display()))?;
    }
    std::fs::create_dir_all(rootfs)?;
    for layer in &image.layers {
        let reader = image.open_layer(layer)?;
        unpack::apply_layer(reader, rootfs).with_context(|| format!("layer {}", layer.digest))?;
    }
    Ok(image.layers.len())
}

/// Namespaces, mounts, chroot, then the entrypoint as a child we wait for.
fn launch(
    name: &str,
    rootfs: &Path,
    config: &Path,
    config_mount: Option<&str>,
    rt: &RuntimeConfig,
    handed: &secrets::Handed,
) -> anyhow::Result<i32> {
    use nix::mount::{mount, MsFlags};
    use nix::sched::{unshare, CloneFlags};

    let argv = rt.argv();
    let Some(program) = argv.first() else {
        anyhow::bail!("component {name}: the image config has neither Entrypoint nor Cmd");
    };
    // Our own mount and UTS namespaces; the PID namespace applies to the child, which is
    // its PID 1.
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWUTS)
        .context("unshare (mount, pid, uts)")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private in the new mount namespace")?;
    nix::unistd::sethostname(name).context("sethostname")?;
    if let (Some(target), true) = (config_mount, config.is_dir()) {
        let at = rootfs.join(target.trim_start_matches('/'));
        std::fs::create_dir_all(&at).with_context(|| format!("creating {}", at.display()))?;
        mount(
            Some(config),
            &at,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting {} on {}", config.display(), at.display()))?;
        mount(
            None::<&str>,
            &at,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .context("making the config mount read-only")?;
    }
    let dev = rootfs.join("dev");
    std::fs::create_dir_all(&dev)?;
    mount(
        Some("/dev"),
        &dev,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("bind-mounting /dev")?;
    let (uid, gid) = rt.user_ids(rootfs)?;
    secrets::install(rootfs, handed, uid, gid)?;
    nix::unistd::chroot(rootfs).with_context(|| format!("chroot {}", rootfs.display()))?;
    std::env::set_current_dir("/")?;
    let program = rt.resolve(Path::new("/"), program)?;
    let mut cmd = std::process::Command::new(&program);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(rt.env_pairs())
        .envs(handed.env.iter().map(|(k, v)| (k, v)))
        .current_dir(rt.working_dir.as_deref().unwrap_or("/"))
        .uid(uid)
        .gid(gid);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("component {name}: starting {}", program.display()))?;
    println!(
        "harmony-agent: component {name}: started pid {} (uid {uid}): {}",
        child.id(),
        argv.join(" ")
    );
    let status = child.wait()?;
    println!("harmony-agent: component {name}: exited ({status})");
    Ok(status.code().unwrap_or(1))
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
        assert!(!root.path().join(super::RUN_DIR).exists());
    }
}
