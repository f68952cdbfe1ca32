//! Bakes harmony-agent into the image with the boot hook of whichever init system the
//! base has: busybox init (`/etc/inittab`), systemd, or OpenRC.

use sha2::{Digest, Sha256};

use super::StepOutput;
use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta, Tree};

pub const AGENT_PATH: &str = "/usr/bin/harmony-agent";
const FIRSTBOOT: &str = "/usr/bin/harmony-agent firstboot";
const INITTAB_LINE: &str = "::sysinit:/usr/bin/harmony-agent firstboot";

const SYSTEMD_UNIT: &str = "\
[Unit]
Description=Harmony first-boot configuration
Documentation=file:/usr/share/doc/harmony/boot-flow.md
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service
Before=sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
# READY=1 once the node's files are written and systemd has reloaded: sysinit.target
# waits for that, and no longer, so the agent can then wait for the units it enabled
# (ordered after basic.target) and report their state (docs/boot-flow.md).
Type=notify
NotifyAccess=main
TimeoutStartSec=infinity
RemainAfterExit=yes
ExecStart=/usr/bin/harmony-agent firstboot
StandardOutput=journal+console

[Install]
WantedBy=sysinit.target
";

const OPENRC_SCRIPT: &str = "\
#!/sbin/openrc-run
description=\"Harmony first-boot configuration\"

depend() {
\tneed localmount
\tbefore net
}

start() {
\tebegin \"Harmony first boot\"
\t/usr/bin/harmony-agent firstboot
\teend $?
}
";

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
            let unit = "/usr/lib/systemd/system/harmony-firstboot.service";
            changes.put(unit, Entry::file(SYSTEMD_UNIT.as_bytes().to_vec(), 0o644));
            changes.put(
                "/etc/systemd/system/sysinit.target.wants/harmony-firstboot.service",
                Entry {
                    kind: Kind::Symlink(unit.to_string()),
                    meta: Meta::new(0o777),
                },
            );
            digest.update(SYSTEMD_UNIT.as_bytes());
        }
        InitSystem::OpenRc => {
            let script = "/etc/init.d/harmony-firstboot";
            changes.put(
                script,
                Entry::file(OPENRC_SCRIPT.as_bytes().to_vec(), 0o755),
            );
            changes.put(
                "/etc/runlevels/boot/harmony-firstboot",
                Entry {
                    kind: Kind::Symlink(script.to_string()),
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

/// Run the agent right after the base's own sysinit actions (busybox init runs `sysinit`
/// entries in file order, before any `respawn` shell on the console).
fn hook_inittab(inittab: &str) -> String {
    if inittab.lines().any(|l| l.trim() == INITTAB_LINE) {
        return inittab.to_string();
    }
    let lines: Vec<&str> = inittab.lines().collect();
    let after = lines
        .iter()
        .rposition(|l| l.contains(":sysinit:"))
        .map_or(0, |i| i + 1);
    let mut out: Vec<&str> = lines[..after].to_vec();
    out.push(INITTAB_LINE);
    out.extend_from_slice(&lines[after..]);
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inittab_hook_goes_after_the_last_sysinit_and_is_added_once() {
        let base = "::sysinit:/etc/init.d/rcS\n::respawn:-/bin/sh\n";
        let hooked = hook_inittab(base);
        assert_eq!(
            hooked,
            format!("::sysinit:/etc/init.d/rcS\n{INITTAB_LINE}\n::respawn:-/bin/sh\n")
        );
        assert_eq!(hook_inittab(&hooked), hooked);
    }

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
