//! Bakes harmony-agent into the image with the boot hook of whichever init system the
//! base has: busybox init (`/etc/inittab`), systemd, or OpenRC.

use sha2::{Digest, Sha256};

use super::StepOutput;
use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta, Tree};

pub use ignition::agent_boot_hook::AGENT_PATH;
use ignition::agent_boot_hook::{
    hook_inittab, FIRSTBOOT, OPENRC_RUNLEVEL_LINK, OPENRC_SCRIPT, OPENRC_SCRIPT_PATH, SYSTEMD_UNIT,
    SYSTEMD_UNIT_PATH, SYSTEMD_WANTS_LINK,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    BusyboxInit,
    Systemd,
    OpenRc,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentStepError {
    #[error(
        "the base image has no init system Harmony can hook the agent into \
         (looked for /usr/lib/systemd/systemd, /sbin/openrc, /etc/inittab); \
         set `agent: {{enabled: false}}` in the recipe to build without the agent"
    )]
    NoInitSystem,
    #[error(transparent)]
    InittabNotText(#[from] super::inittab::InittabNotText),
}

/// systemd wins over OpenRC over busybox init: a base with systemd may still carry an
/// inittab from a compat package.
pub fn detect_init(tree: &Tree) -> Option<InitSystem> {
    let exists = |p: &str| {
        tree.resolve_all(p)
            .ok()
            .and_then(|r| tree.get(&r).map(|_| ()))
            .is_some()
    };
    if exists("usr/lib/systemd/systemd") {
        Some(InitSystem::Systemd)
    } else if exists("sbin/openrc") || exists("usr/sbin/openrc") {
        Some(InitSystem::OpenRc)
    } else if exists("etc/inittab") {
        Some(InitSystem::BusyboxInit)
    } else {
        None
    }
}

pub fn agent_step(tree: &Tree, agent_binary: &[u8]) -> Result<StepOutput, AgentStepError> {
    let init = detect_init(tree).ok_or(AgentStepError::NoInitSystem)?;
    let mut changes = LayerChanges::default();
    changes.put(AGENT_PATH, Entry::file(agent_binary.to_vec(), 0o755));
    let mut digest = Sha256::new();
    digest.update(Sha256::digest(agent_binary));
    digest.update(format!("{init:?}\n"));

    match init {
        InitSystem::BusyboxInit => {
            let updated = super::inittab::edit(tree, &mut changes, hook_inittab)?;
            digest.update(updated.as_bytes());
        }
        InitSystem::Systemd => {
            changes.put(
                SYSTEMD_UNIT_PATH,
                Entry::file(SYSTEMD_UNIT.as_bytes().to_vec(), 0o644),
            );
            changes.put(
                SYSTEMD_WANTS_LINK,
                Entry {
                    kind: Kind::Symlink(SYSTEMD_UNIT_PATH.to_string()),
                    meta: Meta::new(0o777),
                },
            );
            digest.update(SYSTEMD_UNIT.as_bytes());
        }
        InitSystem::OpenRc => {
            changes.put(
                OPENRC_SCRIPT_PATH,
                Entry::file(OPENRC_SCRIPT.as_bytes().to_vec(), 0o755),
            );
            changes.put(
                OPENRC_RUNLEVEL_LINK,
                Entry {
                    kind: Kind::Symlink(OPENRC_SCRIPT_PATH.to_string()),
                    meta: Meta::new(0o777),
                },
            );
            digest.update(OPENRC_SCRIPT.as_bytes());
        }
    }
    Ok(StepOutput {
        name: "agent",
        description: format!("harmony agent: {AGENT_PATH} run at boot by {init:?} ({FIRSTBOOT})"),
        inputs_digest: hex::encode(digest.finalize()),
        changes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_system_is_detected_through_usrmerge_links() {
        let mut t = Tree::new();
        t.mkdir_all("usr/sbin", &Meta::new(0o755)).unwrap();
        t.insert(
            "sbin",
            Entry {
                kind: Kind::Symlink("usr/sbin".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        assert_eq!(detect_init(&t), None);
        t.insert("usr/sbin/openrc", Entry::file(vec![], 0o755))
            .unwrap();
        assert_eq!(detect_init(&t), Some(InitSystem::OpenRc));
    }

    #[test]
    fn a_base_without_init_is_refused() {
        assert!(matches!(
            agent_step(&Tree::new(), b"bin"),
            Err(AgentStepError::NoInitSystem)
        ));
    }
}
