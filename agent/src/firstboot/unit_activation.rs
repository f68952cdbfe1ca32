//! First boot on systemd behaves as Ignition's: what the config writes or enables is
//! active in the same boot. The agent runs in sysinit.target, after systemd has read its
//! unit files (it reads them at start and on reload only), so after the last write it:
//!
//! 1. asks systemd to reload (`Manager.Reload`, over systemd's private socket: the system
//!    bus daemon does not run yet) — the new units and `.wants/` links are now known;
//! 2. starts the unit this boot is heading for (`default.target`, or `systemd.unit=`
//!    from the kernel command line) again with mode `replace`: its start job merges with
//!    the pending one and the transaction adds start jobs for what it now wants, exactly
//!    what the boot would have started had the units been there from the beginning;
//! 3. tells systemd READY=1 (the service is `Type=notify`): sysinit.target may now be
//!    reached, so units ordered after basic.target can start — waiting for them before
//!    this point would deadlock the boot;
//! 4. waits until each unit the config named has no job left and is not in a transition,
//!    and records its ActiveState (`active`, `failed`, `inactive`, …) for the report.
//!
//! See docs/boot-flow.md ("First boot on systemd").

use std::path::Path;
use std::time::{Duration, Instant};

use crate::join::dbus::{Arg, Connection, DbusError, Value, SYSTEMD_PRIVATE, SYSTEM_BUS};

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const UNIT: &str = "org.freedesktop.systemd1.Unit";
/// One call's reply; Reload re-runs the generators and re-reads every unit (under TCG on
/// a loaded host a Reload had not answered after 120 s; first boot has no deadline).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);
/// How long the named units may take to settle after READY (TCG boots are slow).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(250);

/// The unit the boot is heading for: the last `systemd.unit=` on the kernel command line,
/// else `default.target` (what systemd itself starts).
pub fn boot_target(cmdline: &str) -> String {
    cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("systemd.unit="))
        .rfind(|u| !u.is_empty())
        .unwrap_or("default.target")
        .to_string()
}

/// Whether systemd must re-read its units: the plan wrote or linked something a unit
/// directory holds, or named a unit.
pub fn touches_units<'a>(mut paths: impl Iterator<Item = &'a str>, named_units: usize) -> bool {
    named_units > 0
        || paths.any(|p| {
            [
                "/etc/systemd/",
                "/usr/lib/systemd/",
                "/lib/systemd/",
                "/usr/local/lib/systemd/",
            ]
            .iter()
            .any(|d| p.starts_with(d))
        })
}

/// A transition systemd is still making; anything else is where the unit settled.
fn in_transition(active_state: &str) -> bool {
    matches!(active_state, "activating" | "deactivating" | "reloading")
}

/// A connection to PID 1: its private socket, else the system bus.
pub fn connect(root: &Path) -> Result<Connection, DbusError> {
    connect_at(
        &root.join(SYSTEMD_PRIVATE.trim_start_matches('/')),
        &root.join(SYSTEM_BUS.trim_start_matches('/')),
        CALL_TIMEOUT,
    )
}

/// A connection to PID 1 through `private` (systemd's peer socket: there from PID 1's
/// start, before the bus daemon runs), else through the bus at `bus`.
pub fn connect_at(private: &Path, bus: &Path, timeout: Duration) -> Result<Connection, DbusError> {
    match Connection::open_peer(private, timeout) {
        Ok(c) => Ok(c),
        Err(DbusError::Connect { .. }) => Connection::open(bus, timeout),
        Err(e) => Err(e),
    }
}

/// Steps 1 and 2: reload, then start `target` again; returns the start job's path.
pub fn reload_and_start(bus: &mut Connection, target: &str) -> Result<String, DbusError> {
    bus.call(DEST, MANAGER_PATH, MANAGER, "Reload", &[])?;
    let job = bus.call(
        DEST,
        MANAGER_PATH,
        MANAGER,
        "StartUnit",
        &[Arg::Str(target), Arg::Str("replace")],
    )?;
    job.first_string()
        .ok_or_else(|| DbusError::Protocol(format!("StartUnit returned {:?}", job.signature)))
}

/// Step 4: each unit's ActiveState once it has settled (or as it was at `timeout`).
pub fn settle(
    bus: &mut Connection,
    units: &[String],
    timeout: Duration,
) -> Vec<(String, Result<String, String>)> {
    let deadline = Instant::now() + timeout;
    units
        .iter()
        .map(|name| (name.clone(), settle_one(bus, name, deadline)))
        .collect()
}

fn settle_one(bus: &mut Connection, name: &str, deadline: Instant) -> Result<String, String> {
    let path = bus
        .call(DEST, MANAGER_PATH, MANAGER, "LoadUnit", &[Arg::Str(name)])
        .map_err(|e| format!("loading {name}: {e}"))?
        .first_string()
        .ok_or_else(|| format!("LoadUnit({name}) returned no object path"))?;
    loop {
        let job = bus
            .get_property(DEST, &path, UNIT, "Job")
            .map_err(|e| format!("{name}: Job: {e}"))?;
        let state = match bus
            .get_property(DEST, &path, UNIT, "ActiveState")
            .map_err(|e| format!("{name}: ActiveState: {e}"))?
        {
            Value::Str(s) => s,
            other => return Err(format!("{name}: ActiveState is {other:?}")),
        };
        let pending = matches!(job, Value::Job(id, _) if id != 0);
        if (!pending && !in_transition(&state)) || Instant::now() >= deadline {
            return Ok(state);
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_target_is_default_unless_the_command_line_names_one() {
        assert_eq!(boot_target("console=ttyS0 quiet"), "default.target");
        assert_eq!(
            boot_target("systemd.unit=rescue.target quiet systemd.unit=multi-user.target"),
            "multi-user.target"
        );
        assert_eq!(boot_target("systemd.unit= quiet"), "default.target");
    }

    #[test]
    fn unit_directories_and_named_units_need_a_reload() {
        assert!(!touches_units(
            ["/etc/motd", "/etc/hostname"].into_iter(),
            0
        ));
        assert!(touches_units(
            ["/etc/systemd/system/multi-user.target.wants/x.service"].into_iter(),
            0
        ));
        assert!(touches_units(
            ["/usr/lib/systemd/system/y.service"].into_iter(),
            0
        ));
        assert!(touches_units(std::iter::empty(), 1));
    }

    #[test]
    fn transitions_are_waited_for() {
        for s in ["activating", "deactivating", "reloading"] {
            assert!(in_transition(s));
        }
        for s in ["active", "failed", "inactive", "maintenance"] {
            assert!(!in_transition(s));
        }
    }
}
