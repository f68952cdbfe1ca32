//! `harmony-agent install [--root DIR]`: put this agent binary and its boot hook on a
//! host that already runs an OS (a pre-provisioned VM or server), as the builder bakes
//! them into an image (ignition::agent_boot_hook): a systemd unit wanted by
//! sysinit.target, an OpenRC script in the boot runlevel, or a busybox `::sysinit:` line
//! in /etc/inittab, whichever init the root has (systemd wins over OpenRC over busybox,
//! as the builder decides). Written through the plan and apply path, so every file is
//! written to a temp file and renamed, and a second install changes nothing.

use std::path::Path;

use anyhow::Context;
use ignition::agent_boot_hook as hook;
use ignition::{Contents, FileEntry, LinkEntry, NodeConfig, Owner};

use crate::init_system::{self, InitSystem};
use crate::target_root::TargetRoot;

/// The boot hook an install writes, by the root's init system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Systemd,
    OpenRc,
    BusyboxInittab,
}

impl Hook {
    pub fn detect(root: &TargetRoot) -> anyhow::Result<Hook> {
        let init = init_system::detect(root)
            .with_context(|| format!("detecting the init system of {}", root.dir().display()))?;
        Ok(match init {
            Some(InitSystem::Systemd) => Hook::Systemd,
            Some(InitSystem::OpenRc) => Hook::OpenRc,
            None if root.node(hook::INITTAB_PATH)?.is_some() => Hook::BusyboxInittab,
            None => anyhow::bail!(
                "{}: no init system harmony-agent can hook into (looked for \
                 /usr/lib/systemd/systemd, /lib/systemd/systemd, /sbin/openrc, \
                 /usr/sbin/openrc, {})",
                root.dir().display(),
                hook::INITTAB_PATH
            ),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Hook::Systemd => "systemd",
            Hook::OpenRc => "OpenRC",
            Hook::BusyboxInittab => "busybox init",
        }
    }
}

/// What an install writes into `root`, as a config for the plan.
pub fn node_config(root: &TargetRoot, agent_binary: &[u8]) -> anyhow::Result<(Hook, NodeConfig)> {
    let hook = Hook::detect(root)?;
    let mut cfg = NodeConfig::default();
    cfg.files
        .push(file(hook::AGENT_PATH, agent_binary.to_vec(), 0o755));
    let (path, link) = match hook {
        Hook::Systemd => (
            file(hook::SYSTEMD_UNIT_PATH, hook::SYSTEMD_UNIT.into(), 0o644),
            Some((hook::SYSTEMD_WANTS_LINK, hook::SYSTEMD_UNIT_PATH)),
        ),
        Hook::OpenRc => (
            file(hook::OPENRC_SCRIPT_PATH, hook::OPENRC_SCRIPT.into(), 0o755),
            Some((hook::OPENRC_RUNLEVEL_LINK, hook::OPENRC_SCRIPT_PATH)),
        ),
        Hook::BusyboxInittab => {
            let current = root.read(hook::INITTAB_PATH)?.unwrap_or_default();
            let text = String::from_utf8(current).map_err(|_| {
                anyhow::anyhow!(
                    "{}{}: not UTF-8 text",
                    root.dir().display(),
                    hook::INITTAB_PATH
                )
            })?;
            (
                file(
                    hook::INITTAB_PATH,
                    hook::hook_inittab(&text).into_bytes(),
                    0o644,
                ),
                None,
            )
        }
    };
    cfg.files.push(path);
    if let Some((path, target)) = link {
        cfg.links.push(LinkEntry {
            path: path.to_string(),
            overwrite: true,
            target: target.to_string(),
            hard: false,
            user: Some(Owner::Id(0)),
            group: Some(Owner::Id(0)),
        });
    }
    Ok((hook, cfg))
}

fn file(path: &str, contents: Vec<u8>, mode: u32) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        overwrite: true,
        contents: Some(Contents::from(contents)),
        append: Vec::new(),
        mode: Some(mode),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
    }
}

/// Install the running binary into `root`; one line per change, for the console.
pub fn run(root: &Path) -> anyhow::Result<Vec<String>> {
    let exe = std::env::current_exe().context("finding the running harmony-agent binary")?;
    let binary = std::fs::read(&exe).with_context(|| format!("reading {}", exe.display()))?;
    let target = TargetRoot::new(root);
    let (hook, cfg) = node_config(&target, &binary)?;
    let plan = crate::plan::plan(&cfg, &target)?;
    let changed = crate::apply::apply(&plan, &target)?;
    let mut lines: Vec<String> = plan
        .actions
        .iter()
        .zip(&changed)
        .filter(|(_, c)| **c)
        .map(|(a, _)| a.to_string())
        .collect();
    lines.push(format!(
        "harmony-agent installed in {} with its {} boot hook ({} of {} actions changed); \
         it runs `{}` at the next boot",
        root.display(),
        hook.name(),
        changed.iter().filter(|c| **c).count(),
        changed.len(),
        hook::FIRSTBOOT
    ));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_init_system_is_refused_naming_what_was_looked_for() {
        let dir = tempfile::tempdir().unwrap();
        let err = Hook::detect(&TargetRoot::new(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no init system harmony-agent can hook into"),
            "{err}"
        );
        assert!(err.contains("/etc/inittab"), "{err}");
    }

    #[test]
    fn an_inittab_that_is_not_text_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/inittab"), [0xff, 0xfe]).unwrap();
        let err = node_config(&TargetRoot::new(dir.path()), b"bin")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("/etc/inittab: not UTF-8 text"), "{err}");
    }
}
