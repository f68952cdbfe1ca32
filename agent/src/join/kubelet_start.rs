//! Enable and start kubelet once its bootstrap files are in place: systemd over D-Bus,
//! or OpenRC on roots that have it (Alpine). A root with neither (busybox init) has no
//! service to start: that is reported.
//!
//! On systemd this runs at first boot while the boot is still coming up (the system bus
//! daemon may not run yet): as the same-boot unit activation does
//! ([`crate::firstboot::unit_activation`]), through PID 1's private socket first, then
//! EnableUnitFiles and StartUnit, whose job systemd runs when kubelet's ordering allows —
//! nothing waits for it (`systemctl enable --now`, the old fallback, waits, and from
//! inside sysinit.target that wait never ends). Units the config wrote are known to
//! systemd already (first boot reloaded it); the files the join writes are read by
//! kubelet's unit when it starts (EnvironmentFile=).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::dbus::{self, Arg, Connection, DbusError};
use crate::init_system::InitSystem;
use crate::target_root::TargetRoot;

pub const UNIT: &str = "kubelet.service";
const OPENRC_SERVICE: &str = "kubelet";

/// Where packages put kubelet (Debian/RPM packages: /usr/bin; hand installs: /usr/local/bin).
pub const BINARY_PATHS: [&str; 3] = [
    "/usr/bin/kubelet",
    "/usr/local/bin/kubelet",
    "/usr/sbin/kubelet",
];
/// Where kubelet.service comes from: the package's unit, or one the config writes.
pub const UNIT_PATHS: [&str; 3] = [
    "/etc/systemd/system/kubelet.service",
    "/usr/lib/systemd/system/kubelet.service",
    "/lib/systemd/system/kubelet.service",
];
pub const OPENRC_SCRIPT: &str = "/etc/init.d/kubelet";
/// The warning's words when there is nothing to start (issue 11: reported, not fatal).
pub const NOT_INSTALLED: &str = "kubelet not installed";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceManager {
    Systemd,
    OpenRc,
    /// busybox init: services are inittab lines, nothing to ask.
    None,
}

impl ServiceManager {
    /// As the rest of the agent (and the builder) decide it: [`crate::init_system::detect`].
    /// A root that cannot be read there counts as having neither.
    pub fn of(root: &TargetRoot) -> ServiceManager {
        match crate::init_system::detect(root) {
            Ok(Some(InitSystem::Systemd)) => ServiceManager::Systemd,
            Ok(Some(InitSystem::OpenRc)) => ServiceManager::OpenRc,
            Ok(None) | Err(_) => ServiceManager::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ServiceManager::Systemd => "systemd",
            ServiceManager::OpenRc => "openrc",
            ServiceManager::None => "no service manager",
        }
    }
}

#[derive(Debug, Clone)]
pub struct StartOptions {
    /// systemd's private socket, tried first.
    pub systemd_private: PathBuf,
    /// The system bus, when the private socket is not there; tests point it at a
    /// private dbus-daemon.
    pub bus_socket: PathBuf,
    /// One call's reply: first boot has no deadline, and PID 1 answers slowly while a
    /// TCG boot on a loaded host starts its units (120 s was seen to run out).
    pub timeout: Duration,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            systemd_private: PathBuf::from(dbus::SYSTEMD_PRIVATE),
            bus_socket: PathBuf::from(dbus::SYSTEM_BUS),
            timeout: Duration::from_secs(600),
        }
    }
}

/// Whether the root has a kubelet its service manager can start: the binary, and the
/// unit (systemd) or service script (OpenRC). `Err` says what is missing, starting with
/// [`NOT_INSTALLED`]. An image without kubelet (Debian ships none) is still joined: the
/// files are written, and nothing is started that would fail on every boot.
pub fn installed(root: &TargetRoot, manager: ServiceManager) -> Result<(), String> {
    let exists = |paths: &[&str]| paths.iter().any(|p| matches!(root.node(p), Ok(Some(_))));
    if !exists(&BINARY_PATHS) {
        return Err(format!(
            "{NOT_INSTALLED}: none of {} in the image; the bootstrap files are written for \
             a kubelet added later",
            BINARY_PATHS.join(", ")
        ));
    }
    let (service, paths): (&str, &[&str]) = match manager {
        ServiceManager::Systemd => (UNIT, &UNIT_PATHS),
        ServiceManager::OpenRc => (OPENRC_SERVICE, &[OPENRC_SCRIPT]),
        ServiceManager::None => return Ok(()),
    };
    if exists(paths) {
        Ok(())
    } else {
        Err(format!(
            "{NOT_INSTALLED}: the kubelet binary is there but its {} service {service} is not \
             (looked at {})",
            manager.name(),
            paths.join(", ")
        ))
    }
}

/// Enable and start kubelet; says how, or why it could not.
pub fn start(manager: ServiceManager, opts: &StartOptions) -> Result<String, String> {
    match manager {
        ServiceManager::Systemd => match start_over_dbus(opts) {
            Ok(job) => Ok(format!(
                "enabled and started {UNIT} through systemd over D-Bus (job {job})"
            )),
            Err(e) => Err(format!("systemd could not start {UNIT}: {e}")),
        },
        ServiceManager::OpenRc => {
            run(&["rc-update", "add", OPENRC_SERVICE, "default"])?;
            run(&["rc-service", OPENRC_SERVICE, "start"])?;
            Ok(format!(
                "added {OPENRC_SERVICE} to the default runlevel and started it with OpenRC"
            ))
        }
        ServiceManager::None => {
            let why = "not started: the root has neither systemd nor OpenRC, so its own \
                       init (inittab) must run kubelet";
            eprintln!("harmony-agent: join: warning: kubelet {why}");
            Ok(why.to_string())
        }
    }
}

/// EnableUnitFiles, then StartUnit on org.freedesktop.systemd1 without waiting for the
/// job; the job's object path.
pub fn start_over_dbus(opts: &StartOptions) -> Result<String, DbusError> {
    let mut bus = crate::firstboot::unit_activation::connect_at(
        &opts.systemd_private,
        &opts.bus_socket,
        opts.timeout,
    )?;
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
    fn service_managers_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let root = TargetRoot::new(dir.path());
        assert_eq!(ServiceManager::of(&root), ServiceManager::None);
        std::fs::create_dir(dir.path().join("sbin")).unwrap();
        std::fs::write(dir.path().join("sbin/openrc"), "").unwrap();
        assert_eq!(ServiceManager::of(&root), ServiceManager::OpenRc);
        std::fs::create_dir_all(dir.path().join("usr/lib/systemd")).unwrap();
        std::fs::write(dir.path().join("usr/lib/systemd/systemd"), "").unwrap();
        assert_eq!(ServiceManager::of(&root), ServiceManager::Systemd);
    }

    #[test]
    fn without_a_service_manager_kubelet_is_reported_not_started() {
        let how = start(ServiceManager::None, &StartOptions::default()).unwrap();
        assert!(
            how.starts_with("not started: the root has neither"),
            "{how}"
        );
    }

    #[test]
    fn kubelet_is_installed_with_its_binary_and_its_service() {
        let dir = tempfile::tempdir().unwrap();
        let root = TargetRoot::new(dir.path());
        let err = installed(&root, ServiceManager::Systemd).unwrap_err();
        assert!(
            err.starts_with("kubelet not installed: none of /usr/bin/kubelet"),
            "{err}"
        );
        std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
        std::fs::write(dir.path().join("usr/bin/kubelet"), "#!/bin/sh\n").unwrap();
        assert_eq!(installed(&root, ServiceManager::None), Ok(()));
        let err = installed(&root, ServiceManager::Systemd).unwrap_err();
        assert!(
            err.starts_with("kubelet not installed: the kubelet binary is there but its systemd service kubelet.service is not"),
            "{err}"
        );
        assert!(installed(&root, ServiceManager::OpenRc).is_err());
        std::fs::create_dir_all(dir.path().join("usr/lib/systemd/system")).unwrap();
        std::fs::write(
            dir.path().join("usr/lib/systemd/system/kubelet.service"),
            "",
        )
        .unwrap();
        assert_eq!(installed(&root, ServiceManager::Systemd), Ok(()));
    }

    /// No systemd to ask: an error naming the unit, never a `systemctl enable --now` that
    /// would wait for the start job (from inside sysinit.target, for ever).
    #[test]
    fn without_systemd_s_sockets_starting_is_an_error_not_systemctl() {
        let dir = tempfile::tempdir().unwrap();
        let err = start(
            ServiceManager::Systemd,
            &StartOptions {
                systemd_private: dir.path().join("private"),
                bus_socket: dir.path().join("bus"),
                timeout: Duration::from_secs(1),
            },
        )
        .unwrap_err();
        assert!(
            err.starts_with(
                "systemd could not start kubelet.service: connecting to the D-Bus socket"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_bus_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = start_over_dbus(&StartOptions {
            systemd_private: dir.path().join("no-private"),
            bus_socket: dir.path().join("nope"),
            timeout: Duration::from_secs(1),
        })
        .unwrap_err();
        assert!(matches!(e, DbusError::Connect { .. }), "{e}");
    }
}
