//! What first boot's writes mean to a running systemd: which units it must see as
//! written (their unit file, their drop-ins, masked), which units a written `.wants/`,
//! `.requires/` or `.upholds/` link adds to another, and whether anything was written
//! that systemd reads only on a daemon reload (a drop-in for a whole unit type, a
//! generator's input under a unit directory). [`super::unit_activation`] asks systemd
//! whether it already sees each unit as written, and reloads only when it does not.

use std::collections::{BTreeMap, BTreeSet};

use crate::report::{UnitReport, Written};

/// The system instance's unit directories (systemd.unit(5)), as the plan names paths.
const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system/",
    "/run/systemd/system/",
    "/usr/local/lib/systemd/system/",
    "/usr/lib/systemd/system/",
    "/lib/systemd/system/",
];

const UNIT_SUFFIXES: [&str; 11] = [
    ".service",
    ".socket",
    ".target",
    ".timer",
    ".mount",
    ".automount",
    ".path",
    ".slice",
    ".scope",
    ".swap",
    ".device",
];

/// Link directories that make one unit pull in another.
const DEPENDENCY_DIRS: [&str; 3] = [".wants", ".requires", ".upholds"];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct UnitChanges {
    /// A unit file the config wrote: unit name → its path.
    pub fragments: BTreeMap<String, String>,
    /// Drop-ins the config wrote: unit name → their paths.
    pub dropins: BTreeMap<String, Vec<String>>,
    /// Units the config masked.
    pub masked: BTreeSet<String>,
    /// Every other unit the config names (its state is recorded after the boot).
    pub named: BTreeSet<String>,
    /// `(wanting unit, wanted unit)` for each dependency link written.
    pub wanted: Vec<(String, String)>,
    /// Written paths systemd reads only on a reload, with why.
    pub reload_only: Vec<String>,
}

impl UnitChanges {
    /// From the report's written paths and the units the config names.
    pub fn from_report(written: &[Written], units: &[UnitReport]) -> UnitChanges {
        let mut changes = UnitChanges::default();
        for w in written.iter().filter(|w| w.kind != "directory") {
            changes.add_path(&w.path);
        }
        for u in units {
            if u.masked {
                changes.masked.insert(u.name.clone());
            } else {
                changes.named.insert(u.name.clone());
            }
        }
        changes
    }

    /// Whether systemd has anything to learn: nothing written under a unit directory and
    /// no unit named means nothing to ask.
    pub fn is_empty(&self) -> bool {
        *self == UnitChanges::default()
    }

    /// Every unit whose loaded state must match what was written, each once.
    pub fn units_to_check(&self) -> BTreeSet<&str> {
        self.fragments
            .keys()
            .chain(self.dropins.keys())
            .chain(self.masked.iter())
            .chain(self.named.iter())
            .map(String::as_str)
            .collect()
    }

    fn add_path(&mut self, path: &str) {
        let Some(rel) = UNIT_DIRS.iter().find_map(|d| path.strip_prefix(d)) else {
            return;
        };
        match rel.split_once('/') {
            None if is_unit_name(rel) => {
                self.fragments.insert(rel.to_string(), path.to_string());
            }
            Some((dir, file)) if !file.contains('/') => {
                if let Some(by) = DEPENDENCY_DIRS.iter().find_map(|s| dir.strip_suffix(s)) {
                    if is_unit_name(by) && is_unit_name(file) {
                        self.wanted.push((by.to_string(), file.to_string()));
                        return;
                    }
                }
                if let Some(unit) = dir.strip_suffix(".d") {
                    if is_unit_name(unit) && file.ends_with(".conf") {
                        self.dropins
                            .entry(unit.to_string())
                            .or_default()
                            .push(path.to_string());
                        return;
                    }
                }
                self.reload_only.push(path.to_string());
            }
            _ => self.reload_only.push(path.to_string()),
        }
    }
}

/// `NAME.service`, `getty@ttyS0.service`, `foo@.service`: a name with a unit suffix.
fn is_unit_name(name: &str) -> bool {
    UNIT_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s))
}

/// How systemd sees one unit now (properties of org.freedesktop.systemd1.Unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedUnit {
    pub load_state: String,
    pub fragment_path: String,
    pub dropin_paths: Vec<String>,
    pub need_daemon_reload: bool,
}

impl UnitChanges {
    /// Why systemd's view of `name` is not what was written (so a reload is needed), or
    /// `None` when starting it now would run what the config wrote. A unit loaded before
    /// the write keeps its old file and drop-ins until a reload; one first loaded after
    /// it (every new unit) is read as written.
    pub fn stale(&self, name: &str, loaded: &LoadedUnit) -> Option<String> {
        if loaded.need_daemon_reload {
            return Some(format!("{name}: systemd reports NeedDaemonReload"));
        }
        if self.masked.contains(name) {
            return (loaded.load_state != "masked").then(|| {
                format!(
                    "{name}: masked by the config, loaded as {:?}",
                    loaded.load_state
                )
            });
        }
        if let Some(path) = self.fragments.get(name) {
            if loaded.fragment_path != *path {
                return Some(format!(
                    "{name}: written to {path}, loaded from {:?}",
                    loaded.fragment_path
                ));
            }
        }
        self.dropins
            .get(name)
            .into_iter()
            .flatten()
            .find(|d| !loaded.dropin_paths.contains(d))
            .map(|d| format!("{name}: drop-in {d} not loaded"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(path: &str, kind: &str) -> Written {
        Written::bare(path, kind)
    }

    fn unit(name: &str, masked: bool) -> UnitReport {
        UnitReport {
            name: name.into(),
            enabled: Some(true),
            masked,
            state: None,
        }
    }

    #[test]
    fn written_paths_are_told_apart() {
        let w = [
            written("/etc/motd", "file"),
            written("/etc/systemd/system/probe.service", "file"),
            written("/etc/systemd/system/multi-user.target.wants", "directory"),
            written(
                "/etc/systemd/system/multi-user.target.wants/probe.service",
                "link",
            ),
            written(
                "/etc/systemd/system/getty.target.wants/getty@ttyS1.service",
                "link",
            ),
            written("/etc/systemd/system/ssh.service.d/10-keys.conf", "file"),
            written("/etc/systemd/system/service.d/10-all.conf", "file"),
            written("/etc/systemd/system/foo.service.d/notes.txt", "file"),
            written("/etc/systemd/user/x.service", "file"),
        ];
        let c = UnitChanges::from_report(
            &w,
            &[
                unit("probe.service", false),
                unit("debug-shell.service", true),
            ],
        );
        assert_eq!(
            c.fragments,
            BTreeMap::from([(
                "probe.service".to_string(),
                "/etc/systemd/system/probe.service".to_string()
            )])
        );
        assert_eq!(
            c.wanted,
            [
                ("multi-user.target".to_string(), "probe.service".to_string()),
                (
                    "getty.target".to_string(),
                    "getty@ttyS1.service".to_string()
                ),
            ]
        );
        assert_eq!(
            c.dropins["ssh.service"],
            ["/etc/systemd/system/ssh.service.d/10-keys.conf"]
        );
        // A drop-in for every service, and a stray file in a drop-in directory: only a
        // reload makes systemd look at those.
        assert_eq!(
            c.reload_only,
            [
                "/etc/systemd/system/service.d/10-all.conf",
                "/etc/systemd/system/foo.service.d/notes.txt"
            ]
        );
        assert!(c.masked.contains("debug-shell.service"));
        assert_eq!(
            c.units_to_check().into_iter().collect::<Vec<_>>(),
            ["debug-shell.service", "probe.service", "ssh.service"]
        );
        assert!(UnitChanges::from_report(&[written("/etc/motd", "file")], &[]).is_empty());
    }

    #[test]
    fn a_unit_loaded_before_the_write_is_stale() {
        let w = [
            written("/etc/systemd/system/containerd.service", "file"),
            written("/etc/systemd/system/ssh.service.d/10-keys.conf", "file"),
        ];
        let c = UnitChanges::from_report(&w, &[unit("debug-shell.service", true)]);
        let loaded = |fragment: &str, dropins: &[&str]| LoadedUnit {
            load_state: "loaded".into(),
            fragment_path: fragment.into(),
            dropin_paths: dropins.iter().map(|d| d.to_string()).collect(),
            need_daemon_reload: false,
        };
        // Loaded from the package's file before the config's copy in /etc existed.
        assert_eq!(
            c.stale(
                "containerd.service",
                &loaded("/lib/systemd/system/containerd.service", &[])
            )
            .as_deref(),
            Some(
                "containerd.service: written to /etc/systemd/system/containerd.service, \
                 loaded from \"/lib/systemd/system/containerd.service\""
            )
        );
        assert_eq!(
            c.stale(
                "containerd.service",
                &loaded("/etc/systemd/system/containerd.service", &[])
            ),
            None
        );
        assert_eq!(
            c.stale(
                "ssh.service",
                &loaded("/lib/systemd/system/ssh.service", &[])
            )
            .as_deref(),
            Some("ssh.service: drop-in /etc/systemd/system/ssh.service.d/10-keys.conf not loaded")
        );
        assert_eq!(
            c.stale(
                "ssh.service",
                &loaded(
                    "/lib/systemd/system/ssh.service",
                    &["/etc/systemd/system/ssh.service.d/10-keys.conf"]
                )
            ),
            None
        );
        assert!(c
            .stale("debug-shell.service", &loaded("/lib/systemd/system/x", &[]))
            .is_some());
        let masked = LoadedUnit {
            load_state: "masked".into(),
            ..loaded("/etc/systemd/system/debug-shell.service", &[])
        };
        assert_eq!(c.stale("debug-shell.service", &masked), None);
        let changed = LoadedUnit {
            need_daemon_reload: true,
            ..loaded("/etc/systemd/system/containerd.service", &[])
        };
        assert!(c.stale("containerd.service", &changed).is_some());
    }
}
