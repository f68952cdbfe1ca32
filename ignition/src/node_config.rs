//! `NodeConfig`: what a node should look like, independent of the input format. The agent
//! plans from this alone; Ignition (and later cloud-config) are translated into it.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NodeConfig {
    pub files: Vec<FileEntry>,
    pub directories: Vec<DirectoryEntry>,
    pub links: Vec<LinkEntry>,
    pub units: Vec<UnitEntry>,
    pub users: Vec<UserEntry>,
    pub groups: Vec<GroupEntry>,
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
    /// Decoded and verified bytes; `None` keeps what exists (or an empty file).
    pub contents: Option<Vec<u8>>,
    /// Appended in order after `contents` (or after the existing file).
    pub append: Vec<Vec<u8>>,
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
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupEntry {
    pub name: String,
    pub gid: Option<u32>,
    pub password_hash: Option<String>,
    pub system: bool,
    pub should_exist: bool,
}
