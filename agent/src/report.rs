//! firstboot.json, exactly as docs/boot-flow.md shows it, and the console line.

use harmony_contract::console::FIRSTBOOT_MARKER;
use serde::{Deserialize, Serialize};

use crate::plan::{Action, Plan, UnitState};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Success,
    Failed,
    AlreadyDone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub status: Status,
    pub platform: Option<String>,
    pub source: Option<String>,
    pub config_sha256: Option<String>,
    /// cloud-init's instance-id, from the datasource's meta-data (NoCloud, VMware).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The host name the config gave the node (/etc/hostname as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub error: Option<String>,
    pub written: Vec<Written>,
    pub units: Vec<UnitReport>,
    /// What the config asked for that Harmony does not do (cloud-config keys with no
    /// place on an immutable image, unknown keys); also printed on the console.
    #[serde(default)]
    pub warnings: Vec<WarningReport>,
    /// Every command the config asked to run, in the order they ran.
    #[serde(default)]
    pub commands: Vec<CommandReport>,
    /// The node role's changes to the running system (module loads, sysctls, firewall);
    /// absent for a node without node settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_role: Vec<crate::node_role::live::StepReport>,
    /// How the node joined its cluster, or `skipped: no cluster settings` (present when
    /// there are node settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<crate::join::JoinSection>,
    /// What the node can prove it booted: `secure_boot`, `verity_root_hash`, `image`
    /// (provenance.rs), as fields of the report itself.
    #[serde(flatten)]
    pub provenance: crate::provenance::Provenance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarningReport {
    pub path: String,
    pub message: String,
}

impl From<&ignition::ConfigWarning> for WarningReport {
    fn from(w: &ignition::ConfigWarning) -> Self {
        WarningReport {
            path: w.path.clone(),
            message: w.message.clone(),
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandOutcome {
    /// It ran to its end; `exit_code` says how that went.
    Exited,
    /// A signal ended it (`signal`).
    Signalled,
    /// It ran past the timeout; its whole process group was killed.
    TimedOut,
    /// It could not be started (`error` says why).
    NotStarted,
    /// Not run: commands run only at first boot on the live root.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReport {
    pub name: String,
    /// `early` (before the first write) or `late` (after the last).
    pub stage: String,
    pub outcome: CommandOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How many bytes stdout and stderr (one stream, interleaved) carried in all.
    pub output_bytes: u64,
    /// Their last bytes (at most [`OUTPUT_TAIL_BYTES`]), as UTF-8 with bad bytes replaced.
    pub output_tail: String,
}

pub const OUTPUT_TAIL_BYTES: usize = 4096;

impl CommandReport {
    /// Exited 0, or not meant to run here.
    pub fn succeeded(&self) -> bool {
        match self.outcome {
            CommandOutcome::Exited => self.exit_code == Some(0),
            CommandOutcome::Skipped => true,
            _ => false,
        }
    }

    /// `runcmd (late) exited with status 3`, for the report's error.
    pub fn failure(&self) -> String {
        let how = match self.outcome {
            CommandOutcome::Exited => {
                format!("exited with status {}", self.exit_code.unwrap_or(-1))
            }
            CommandOutcome::Signalled => {
                format!("was killed by signal {}", self.signal.unwrap_or(0))
            }
            CommandOutcome::TimedOut | CommandOutcome::NotStarted => {
                self.error.clone().unwrap_or_default()
            }
            CommandOutcome::Skipped => "was skipped".to_string(),
        };
        format!("command {} ({}) {how}", self.name, self.stage)
    }
}

/// One node the plan wrote. Fields in the order the doc shows; absent ones are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitReport {
    pub name: String,
    pub enabled: Option<bool>,
    pub masked: bool,
    /// systemd's ActiveState for the unit once first boot's jobs settled (`active`,
    /// `failed`, `inactive`, …); absent where no systemd was asked (another init, a
    /// root that is not the live one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl Written {
    /// An entry with only its path and type; the rest is filled in where known.
    pub fn bare(path: &str, kind: &str) -> Written {
        Written {
            path: path.to_string(),
            kind: kind.to_string(),
            mode: None,
            uid: None,
            gid: None,
            sha256: None,
            target: None,
            hard: None,
        }
    }
}

/// What the plan wrote, in plan order (removals are not "written").
pub fn written(plan: &Plan) -> Vec<Written> {
    let entry = Written::bare;
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Action::CreateDir {
                path,
                mode,
                uid,
                gid,
            } => Some(Written {
                mode: Some(format!("{mode:04o}")),
                uid: Some(*uid),
                gid: Some(*gid),
                ..entry(path, "directory")
            }),
            Action::WriteFile {
                path,
                contents,
                mode,
                uid,
                gid,
            } => Some(Written {
                mode: Some(format!("{mode:04o}")),
                uid: Some(*uid),
                gid: Some(*gid),
                sha256: crate::plan::shown_sha256(path, contents),
                ..entry(path, "file")
            }),
            Action::Symlink { path, target, .. } => Some(Written {
                target: Some(target.clone()),
                hard: Some(false),
                ..entry(path, "link")
            }),
            Action::HardLink { path, target } => Some(Written {
                target: Some(target.clone()),
                hard: Some(true),
                ..entry(path, "link")
            }),
            Action::Remove { .. } => None,
        })
        .collect()
}

pub fn units(states: &[UnitState]) -> Vec<UnitReport> {
    states
        .iter()
        .map(|u| UnitReport {
            name: u.name.clone(),
            enabled: u.enabled,
            masked: u.masked,
            state: None,
        })
        .collect()
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report is plain data and always serialises")
    }

    /// `HARMONY-FIRSTBOOT {…}\n`, written by the caller in one write so that console
    /// output from elsewhere cannot split it.
    pub fn console_line(&self) -> String {
        format!("{FIRSTBOOT_MARKER}{}\n", self.to_json())
    }
}
