//! One change to the target root. A plan is a list of these, in the order they run.

use std::fmt;

use ignition::Contents;
use serde::Serialize;

/// What a `Remove` expects to find; apply removes only that, so applying a plan twice
/// never deletes what the first run wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExistingKind {
    File,
    Directory,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Create a directory, or set mode and owner of the one there.
    CreateDir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Replace the file atomically (temp file in the same dir, fsync, rename).
    WriteFile {
        path: String,
        /// Serialized as its sha256.
        contents: Contents,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        path: String,
        target: String,
        uid: u32,
        gid: u32,
    },
    HardLink {
        path: String,
        target: String,
    },
    Remove {
        path: String,
        existing: ExistingKind,
    },
}

impl Action {
    pub fn path(&self) -> &str {
        match self {
            Action::CreateDir { path, .. }
            | Action::WriteFile { path, .. }
            | Action::Symlink { path, .. }
            | Action::HardLink { path, .. }
            | Action::Remove { path, .. } => path,
        }
    }
}

/// One line per action, for `harmony-agent plan`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::CreateDir {
                path,
                mode,
                uid,
                gid,
            } => write!(f, "directory {path} mode {mode:04o} owner {uid}:{gid}"),
            Action::WriteFile {
                path,
                contents,
                mode,
                uid,
                gid,
            } if ignition::secrets::is_secret_path(path) => write!(
                f,
                "file      {path} mode {mode:04o} owner {uid}:{gid} ({} bytes, secret)",
                contents.len()
            ),
            Action::WriteFile {
                path,
                contents,
                mode,
                uid,
                gid,
            } => write!(
                f,
                "file      {path} mode {mode:04o} owner {uid}:{gid} ({} bytes, sha256 {})",
                contents.len(),
                contents.sha256_hex()
            ),
            Action::Symlink {
                path,
                target,
                uid,
                gid,
            } => write!(f, "symlink   {path} -> {target} owner {uid}:{gid}"),
            Action::HardLink { path, target } => write!(f, "hardlink  {path} => {target}"),
            Action::Remove { path, existing } => {
                write!(f, "remove    {path} (existing {existing:?})")
            }
        }
    }
}
