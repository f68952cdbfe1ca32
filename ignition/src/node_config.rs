//! `NodeConfig`: what a node should look like, independent of the input format. The agent
//! plans from this alone; Ignition (and later cloud-config) are translated into it.

use serde::Serialize;

use crate::Contents;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeConfig {
    pub files: Vec<FileEntry>,
    pub directories: Vec<DirectoryEntry>,
    pub links: Vec<LinkEntry>,
    pub units: Vec<UnitEntry>,
    pub users: Vec<UserEntry>,
    pub groups: Vec<GroupEntry>,
    /// Commands to run at first boot, in order within each stage (cloud-config bootcmd,
    /// runcmd, user-data scripts).
    pub commands: Vec<CommandEntry>,
    /// What the config asked for that Harmony does not do; carried into the report.
    pub warnings: Vec<ConfigWarning>,
}

/// Who owns a node: a number, or a name resolved against the target root's
/// /etc/passwd or /etc/group at plan time. `None` in an entry means root (0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Id(u32),
    Name(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Absolute and normalised (no `.`, `..` or `//`).
    pub path: String,
    pub overwrite: bool,
    /// Decoded and verified (gzip kept compressed until written); `None` keeps what
    /// exists (or an empty file).
    pub contents: Option<Contents>,
    /// Appended in order after `contents` (or after the existing file).
    pub append: Vec<Contents>,
    pub mode: Option<u32>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DirectoryEntry {
    pub path: String,
    pub overwrite: bool,
    pub mode: Option<u32>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkEntry {
    pub path: String,
    pub overwrite: bool,
    /// As written: a symlink target may be relative; a hard link target is absolute.
    pub target: String,
    pub hard: bool,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnitEntry {
    pub name: String,
    /// `None` leaves enablement as the image has it.
    pub enabled: Option<bool>,
    pub mask: bool,
    pub contents: Option<String>,
    pub dropins: Vec<DropinEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DropinEntry {
    pub name: String,
    pub contents: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserEntry {
    pub name: String,
    pub uid: Option<u32>,
    pub password_hash: Option<String>,
    pub ssh_authorized_keys: Vec<String>,
    pub gecos: Option<String>,
    pub home_dir: Option<String>,
    pub no_create_home: bool,
    pub primary_group: Option<String>,
    pub groups: Vec<String>,
    pub no_user_group: bool,
    pub no_log_init: bool,
    pub shell: Option<String>,
    pub system: bool,
    pub should_exist: bool,
    /// Whose rules make the account (see [`AccountStyle`]).
    pub style: AccountStyle,
}

/// Ignition and cloud-init make the same user differently; the agent follows the tool
/// whose config it reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountStyle {
    /// Ignition's useradd: a missing group in `groups` is an error; ssh keys go to
    /// `~/.ssh/authorized_keys.d/ignition`.
    #[default]
    Ignition,
    /// cloud-init's: missing groups are created first (groupadd), a busybox image's
    /// adduser always makes the user's own group, ssh keys are added to
    /// `~/.ssh/authorized_keys`.
    CloudInit,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    pub name: String,
    pub gid: Option<u32>,
    pub password_hash: Option<String>,
    pub system: bool,
    pub should_exist: bool,
}

/// When a command runs relative to the other changes, in cloud-init's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandStage {
    /// Before any file is written (cloud-config bootcmd, #cloud-boothook parts).
    Early,
    /// After files, users and units (runcmd, #! user-data scripts).
    Late,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandEntry {
    /// Unique within a config: `bootcmd`, `runcmd`, `part-001`, or a MIME part's filename.
    pub name: String,
    pub stage: CommandStage,
    /// A complete script: it starts with `#!`, or it is run by /bin/sh.
    pub script: Vec<u8>,
    /// Extra environment (cloud-init gives bootcmd and boothooks INSTANCE_ID).
    pub env: Vec<(String, String)>,
}

/// A part of the config that was understood but not acted on, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigWarning {
    /// The key path (`packages`, `users[1].ssh_import_id`) or part name.
    pub path: String,
    pub message: String,
}

impl ConfigWarning {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigWarning {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}
