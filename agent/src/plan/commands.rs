//! Commands a config asks to run at first boot (cloud-config bootcmd and runcmd,
//! `#cloud-boothook`s, `#!` user-data scripts), as the plan carries them. They are not
//! changes to a tree: `harmony-agent firstboot` runs them on the live root only, early
//! ones before the first write and late ones after the last; `plan`/`apply --root DIR`
//! list them as what would run at first boot and skip them.

use std::fmt;

use ignition::{CommandEntry, CommandStage};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCommand {
    pub name: String,
    pub stage: CommandStage,
    /// A whole script: run directly when it starts with `#!`, else by /bin/sh.
    #[serde(serialize_with = "as_sha256", rename = "script_sha256")]
    pub script: Vec<u8>,
    pub env: Vec<(String, String)>,
}

fn as_sha256<S: serde::Serializer>(c: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(Sha256::digest(c)))
}

/// The config's commands in the order they run: every early one, then every late one,
/// each stage in config order (the cloud-config translation already sorted late ones by
/// name, as cloud-init's scripts_user does).
pub fn plan_commands(entries: &[CommandEntry]) -> Vec<PlannedCommand> {
    let stage = |s: CommandStage| {
        entries
            .iter()
            .filter(move |e| e.stage == s)
            .map(|e| PlannedCommand {
                name: e.name.clone(),
                stage: e.stage,
                script: e.script.clone(),
                env: e.env.clone(),
            })
    };
    stage(CommandStage::Early)
        .chain(stage(CommandStage::Late))
        .collect()
}

impl PlannedCommand {
    pub fn stage_name(&self) -> &'static str {
        match self.stage {
            CommandStage::Early => "early",
            CommandStage::Late => "late",
        }
    }
}

/// One line for `harmony-agent plan`, in the column layout of [`super::Action`]'s lines.
impl fmt::Display for PlannedCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = match self.stage {
            CommandStage::Early => "before the first write",
            CommandStage::Late => "after the last write",
        };
        write!(
            f,
            "command   {} ({}: {when}; {} bytes, sha256 {}) would run at first boot on the live root",
            self.name,
            self.stage_name(),
            self.script.len(),
            hex::encode(Sha256::digest(&self.script))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, stage: CommandStage) -> CommandEntry {
        CommandEntry {
            name: name.to_string(),
            stage,
            script: format!("echo {name}\n").into_bytes(),
            env: Vec::new(),
        }
    }

    #[test]
    fn early_commands_come_first_and_each_stage_keeps_its_order() {
        let planned = plan_commands(&[
            entry("part-002", CommandStage::Late),
            entry("bootcmd", CommandStage::Early),
            entry("runcmd", CommandStage::Late),
            entry("boothook", CommandStage::Early),
        ]);
        let names: Vec<_> = planned.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["bootcmd", "boothook", "part-002", "runcmd"]);
        assert_eq!(
            planned[0].to_string(),
            format!(
                "command   bootcmd (early: before the first write; 13 bytes, sha256 {}) would run at first boot on the live root",
                hex::encode(Sha256::digest(b"echo bootcmd\n"))
            )
        );
        let json = serde_json::to_value(&planned[3]).unwrap();
        assert_eq!(json["stage"], "late");
        assert_eq!(
            json["script_sha256"],
            hex::encode(Sha256::digest(b"echo runcmd\n"))
        );
    }
}
