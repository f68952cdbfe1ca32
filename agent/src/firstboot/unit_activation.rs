//! First boot on systemd behaves as Ignition's: what the config writes or enables is
//! active in the same boot. The agent runs in sysinit.target, after systemd has loaded the
//! units this boot needs, so after the last write it:
//!
//! 1. asks systemd (`LoadUnit` and the unit's properties, over systemd's private socket:
//!    the system bus daemon does not run yet) whether it sees every unit the config wrote,
//!    changed or named as written ([`UnitChanges::stale`]). A unit first loaded now (every
//!    new unit) is read from disk as written; one loaded before the write keeps its old
//!    file and drop-ins;
//! 2. if all are seen as written, starts (mode `replace`) each unit a written `.wants/`,
//!    `.requires/` or `.upholds/` link adds to a unit this boot is starting or has started
//!    (what the boot would have started had the link been in the image; a unit enabled
//!    into a target this boot does not reach is not started, as with Ignition);
//!    otherwise asks systemd to reload (`Manager.Reload`) and starts the unit this boot is
//!    heading for (`default.target`, or `systemd.unit=` from the kernel command line) again:
//!    its start job merges with the pending one and the transaction adds what it now wants.
//!    A reload re-reads every unit and re-runs the generators, minutes under TCG on a
//!    loaded host, and a boot's first boot rarely needs it;
//! 3. tells systemd READY=1 (the service is `Type=notify`): sysinit.target may now be
//!    reached, so units ordered after basic.target can start — waiting for them before
//!    this point would deadlock the boot;
//! 4. waits until each unit the config named has no job left and is not in a transition,
//!    and records its ActiveState (`active`, `failed`, `inactive`, …) for the report.
//!
//! See docs/boot-flow.md ("First boot on systemd").

use std::path::Path;
use std::time::{Duration, Instant};

use super::unit_changes::{LoadedUnit, UnitChanges};
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

/// What step 2 did.
#[derive(Debug, PartialEq, Eq)]
pub enum Activation {
    /// systemd saw every unit as written: these were started (their start jobs).
    Started(Vec<(String, String)>),
    /// systemd reloaded (why), and the boot's target was started again (its job).
    Reloaded { why: String, job: String },
}

/// Steps 1 and 2.
pub fn activate(
    bus: &mut Connection,
    changes: &UnitChanges,
    target: &str,
) -> Result<Activation, DbusError> {
    let mut why = changes
        .reload_only
        .first()
        .map(|p| format!("{p} is read only on a reload"));
    for name in changes.units_to_check() {
        if why.is_some() {
            break;
        }
        let loaded = loaded_unit(bus, name)?;
        why = changes.stale(name, &loaded);
    }
    if let Some(why) = why {
        let job = reload_and_start(bus, target)?;
        return Ok(Activation::Reloaded { why, job });
    }
    let mut started = Vec::new();
    for (by, unit) in &changes.wanted {
        if started.iter().any(|(u, _)| u == unit) || !in_this_boot(bus, by)? {
            continue;
        }
        let job = start_unit(bus, unit)?;
        started.push((unit.clone(), job));
    }
    Ok(Activation::Started(started))
}

fn unit_path(bus: &mut Connection, name: &str) -> Result<String, DbusError> {
    bus.call(DEST, MANAGER_PATH, MANAGER, "LoadUnit", &[Arg::Str(name)])?
        .first_string()
        .ok_or_else(|| DbusError::Protocol(format!("LoadUnit({name}) returned no object path")))
}

fn loaded_unit(bus: &mut Connection, name: &str) -> Result<LoadedUnit, DbusError> {
    let path = unit_path(bus, name)?;
    let mut get = |property: &str| bus.get_property(DEST, &path, UNIT, property);
    let unexpected =
        |property: &str, v: Value| DbusError::Protocol(format!("{name}: {property} is {v:?}"));
    let text = |property: &str, v: Value| match v {
        Value::Str(s) => Ok(s),
        other => Err(unexpected(property, other)),
    };
    Ok(LoadedUnit {
        load_state: text("LoadState", get("LoadState")?)?,
        fragment_path: text("FragmentPath", get("FragmentPath")?)?,
        dropin_paths: match get("DropInPaths")? {
            Value::StrArray(paths) => paths,
            other => return Err(unexpected("DropInPaths", other)),
        },
        need_daemon_reload: match get("NeedDaemonReload")? {
            Value::Bool(b) => b,
            other => return Err(unexpected("NeedDaemonReload", other)),
        },
    })
}

/// Whether this boot is starting `name` or has started it: a job pending, or active.
fn in_this_boot(bus: &mut Connection, name: &str) -> Result<bool, DbusError> {
    let path = unit_path(bus, name)?;
    let job = bus.get_property(DEST, &path, UNIT, "Job")?;
    let state = bus.get_property(DEST, &path, UNIT, "ActiveState")?;
    Ok(matches!(job, Value::Job(id, _) if id != 0)
        || matches!(state, Value::Str(s) if s == "active" || s == "activating"))
}

fn start_unit(bus: &mut Connection, name: &str) -> Result<String, DbusError> {
    let job = bus.call(
        DEST,
        MANAGER_PATH,
        MANAGER,
        "StartUnit",
        &[Arg::Str(name), Arg::Str("replace")],
    )?;
    job.first_string()
        .ok_or_else(|| DbusError::Protocol(format!("StartUnit returned {:?}", job.signature)))
}

/// Reload, then start `target` again; returns the start job's path.
fn reload_and_start(bus: &mut Connection, target: &str) -> Result<String, DbusError> {
    bus.call(DEST, MANAGER_PATH, MANAGER, "Reload", &[])?;
    start_unit(bus, target)
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
    let path = unit_path(bus, name).map_err(|e| format!("loading {name}: {e}"))?;
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
    fn transitions_are_waited_for() {
        for s in ["activating", "deactivating", "reloading"] {
            assert!(in_transition(s));
        }
        for s in ["active", "failed", "inactive", "maintenance"] {
            assert!(!in_transition(s));
        }
    }
}
