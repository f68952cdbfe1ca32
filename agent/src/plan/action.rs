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
    #[serde(serialize_with = "write_file_json")]
    WriteFile {
        path: String,
        /// Serialized as its sha256, a node secret's as null.
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

/// `plan --json`'s write-file: a node secret's contents are shown as null with
/// `"secret": true`, never by their sha256 (anyone holding the plan could test guesses of
/// a short secret against it: a keepalived password has at most 8 characters).
fn write_file_json<S: serde::Serializer>(
    path: &String,
    contents: &Contents,
    mode: &u32,
    uid: &u32,
    gid: &u32,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Shown<'a> {
        path: &'a str,
        contents: Option<&'a Contents>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        secret: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    }
    let secret = ignition::secrets::is_secret_path(path);
    Shown {
        path,
        contents: (!secret).then_some(contents),
        secret,
        mode: *mode,
        uid: *uid,
        gid: *gid,
    }
    .serialize(s)
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

/// The sha256 of a file's contents as the plan and the report show it; none for a node
/// secret: a short secret's digest would let anyone confirm a guess of it.
pub fn shown_sha256(path: &str, contents: &Contents) -> Option<String> {
    (!ignition::secrets::is_secret_path(path)).then(|| contents.sha256_hex())
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
            } => {
                let digest = shown_sha256(path, contents)
                    .map_or_else(|| "secret".to_string(), |hex| format!("sha256 {hex}"));
                write!(
                    f,
                    "file      {path} mode {mode:04o} owner {uid}:{gid} ({} bytes, {digest})",
                    contents.len()
                )
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &str) -> serde_json::Value {
        serde_json::to_value(Action::WriteFile {
            path: path.to_string(),
            contents: Contents::from_bytes(b"pw-1".to_vec()),
            mode: 0o600,
            uid: 0,
            gid: 0,
        })
        .unwrap()
    }

    /// `plan --json` printed a secret's sha256 (a short password can be found from it).
    #[test]
    fn plan_json_shows_a_secret_without_its_sha256() {
        let digest = Contents::from_bytes(b"pw-1".to_vec()).sha256_hex();
        let secret = write("/etc/harmony/secrets/keepalived-password");
        assert_eq!(secret["action"], "write-file");
        assert_eq!(secret["contents"], serde_json::Value::Null);
        assert_eq!(secret["secret"], true);
        assert!(!secret.to_string().contains(&digest), "{secret}");
        let plain = write("/etc/motd");
        assert_eq!(plain["action"], "write-file");
        assert_eq!(plain["contents"], digest.as_str());
        assert_eq!(plain["mode"], 0o600);
        assert!(plain.get("secret").is_none(), "{plain}");
    }
}
