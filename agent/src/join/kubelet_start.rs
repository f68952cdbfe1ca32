//! Enable and start kubelet once its bootstrap files are in place: systemd over D-Bus
//! (`systemctl` when the bus cannot be reached), or OpenRC on roots that have it (Alpine).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dbus::{self, Arg, Connection, DbusError};
use crate::target_root::TargetRoot;

pub const UNIT: &str = "kubelet.service";
const OPENRC_SERVICE: &str = "kubelet";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceManager {
    Systemd,
    OpenRc,
}

impl ServiceManager {
    /// OpenRC when the root has its `openrc-run` (every OpenRC service script's
    /// interpreter), systemd otherwise.
    pub fn of(root: &TargetRoot) -> ServiceManager {
        let has = |p: &str| root.node(p).ok().flatten().is_some();
        if has("/sbin/openrc-run") || has("/usr/sbin/openrc-run") {
            ServiceManager::OpenRc
        } else {
            ServiceManager::Systemd
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServiceManager::Systemd => "systemd",
            ServiceManager::OpenRc => "openrc",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The system bus; tests point it at a private dbus-daemon.
    pub bus_socket: PathBuf,
    pub timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            bus_socket: PathBuf::from(dbus::SYSTEM_BUS),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Enable and start kubelet; says how, or why it could not.
pub fn start(manager: ServiceManager, opts: &StartOptions) -> Result<String, String> {
    match manager {
        ServiceManager::Systemd => match start_over_dbus(opts) {
            Ok(job) => Ok(format!(
                "enabled and started {UNIT} through systemd over D-Bus (job {job})"
            )),
            Err(DbusError::Connect { path, problem }) => {
                eprintln!("harmony-agent: join: no D-Bus at {path} ({problem}); using systemctl");
                run(&["systemctl", "enable", "--now", UNIT])?;
                Ok(format!("enabled and started {UNIT} with systemctl"))
            }
            Err(e) => Err(format!("systemd could not start {UNIT}: {e}")),
        },
        ServiceManager::OpenRc => {
            run(&["rc-update", "add", OPENRC_SERVICE, "default"])?;
            run(&["rc-service", OPENRC_SERVICE, "start"])?;
            Ok(format!(
                "added {OPENRC_SERVICE} to the default runlevel and started it with OpenRC"
            ))
        }
    }
}

/// EnableUnitFiles then StartUnit on org.freedesktop.systemd1; the job's object path.
pub fn start_over_dbus(opts: &StartOptions) -> Result<String, DbusError> {
    let mut bus = Connection::open(&opts.bus_socket, opts.timeout)?;
    let manager = |bus: &mut Connection, member: &str, args: &[Arg<'_>]| {
        bus.call(
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            member,
            args,
        )
    };
    // (files, runtime=false: persistent, force=false: never replace others' links)
    manager(
        &mut bus,
        "EnableUnitFiles",
        &[Arg::StrArray(&[UNIT]), Arg::Bool(false), Arg::Bool(false)],
    )?;
    let job = manager(
        &mut bus,
        "StartUnit",
        &[Arg::Str(UNIT), Arg::Str("replace")],
    )?;
    job.first_string()
        .ok_or_else(|| DbusError::Protocol(format!("StartUnit returned {:?}", job.signature)))
}

fn run(argv: &[&str]) -> Result<(), String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openrc_roots_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = TargetRoot::new(dir.path());
        assert_eq!(ServiceManager::of(&root), ServiceManager::Systemd);
        std::fs::create_dir(dir.path().join("sbin")).unwrap();
        std::fs::write(dir.path().join("sbin/openrc-run"), "").unwrap();
        assert_eq!(ServiceManager::of(&root), ServiceManager::OpenRc);
    }

    #[test]
    fn a_missing_bus_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = start_over_dbus(&StartOptions {
            bus_socket: dir.path().join("nope"),
            timeout: Duration::from_secs(1),
        })
        .unwrap_err();
        assert!(matches!(e, DbusError::Connect { .. }), "{e}");
    }
}
