//! Secrets a node gets at first boot, never from its image: the node's config writes each
//! as a file `/etc/harmony/secrets/NAME` (mode 0600), and whatever needs it reads it
//! there (the agent's HA render, the component runner). The value is held in a [`Secret`],
//! whose Debug and Display never print it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where the config writes secrets.
pub const SECRETS_DIR: &str = "/etc/harmony/secrets";
/// The mode a secret file is written with, whatever the config asks.
pub const SECRET_MODE: u32 = 0o600;
/// Keys, tokens and passwords are short: a larger file is a mistake, and is not read.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// `/etc/harmony/secrets/NAME`.
pub fn secret_path(name: &str) -> String {
    format!("{SECRETS_DIR}/{name}")
}

/// Whether `path` (absolute, in the node's root) is a secret file.
pub fn is_secret_path(path: &str) -> bool {
    path.strip_prefix(SECRETS_DIR)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
}

/// A secret's value: one trailing newline (what an editor or `echo` leaves) is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, &'static str> {
        let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text")?;
        let text = text.strip_suffix('\n').unwrap_or(text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() {
            return Err("is empty");
        }
        Ok(Secret(text.to_string()))
    }

    /// The value, for the one place that hands it on (a file, a variable).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(withheld)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(secret withheld)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {path} is missing: the node's config must write it (storage.files or write_files, mode 0600) before this runs")]
    Missing { path: String },
    #[error(
        "secret {path} is readable by group or others (mode {mode:04o}): write it with mode 0600"
    )]
    Exposed { path: String, mode: u32 },
    #[error("secret {path} {problem}")]
    Invalid { path: String, problem: String },
    #[error("reading secret {path}: {err}")]
    Io { path: String, err: std::io::Error },
}

/// Read secret NAME under `root` (`/` on the node); it must be a regular file only its
/// owner can read.
pub fn read_secret(root: &Path, name: &str) -> Result<Secret, SecretError> {
    let path = secret_path(name);
    let on_disk = root.join(path.trim_start_matches('/'));
    let meta = match std::fs::symlink_metadata(&on_disk) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing { path })
        }
        Err(err) => return Err(SecretError::Io { path, err }),
        Ok(m) => m,
    };
    if !meta.file_type().is_file() {
        return Err(SecretError::Invalid {
            path,
            problem: "is not a regular file".into(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Exposed { path, mode });
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(SecretError::Invalid {
            path,
            problem: format!("is larger than {MAX_SECRET_BYTES} bytes"),
        });
    }
    let bytes = std::fs::read(&on_disk).map_err(|err| SecretError::Io {
        path: path.clone(),
        err,
    })?;
    Secret::from_bytes(&bytes).map_err(|problem| SecretError::Invalid {
        path,
        problem: problem.to_string(),
    })
}

/// Where a component's secret files go inside its container: a tmpfs of its own, so the
/// values never touch the image or the node's disk beyond `/etc/harmony/secrets`.
pub const CONTAINER_SECRETS_DIR: &str = "/run/secrets";

/// A secret a platform component needs, and how the runner hands it over (the builder
/// writes these into the component's `component.json`; the runner reads them there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretUse {
    /// The file under [`SECRETS_DIR`].
    pub name: String,
    /// An environment variable of the process, set by the runner on purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A file name in [`CONTAINER_SECRETS_DIR`] inside the container (mode 0400, owned
    /// by the process's user), holding the value in `format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default)]
    pub format: SecretFormat,
}

/// How a secret is written into a file the software reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretFormat {
    /// The value as it is.
    #[default]
    Raw,
    /// keepalived's `auth_pass` line, after the password policy (see `keepalived`).
    KeepalivedAuth,
    /// A Consul config file `{"encrypt": KEY}`: KEY is base64 of 16, 24 or 32 bytes
    /// (`consul keygen`).
    ConsulEncrypt,
}

impl SecretFormat {
    /// The file's text, or what is wrong with the value (never the value itself).
    pub fn render(self, secret: &Secret) -> Result<String, String> {
        match self {
            SecretFormat::Raw => Ok(secret.expose().to_string()),
            SecretFormat::KeepalivedAuth => {
                Ok(crate::keepalived::VrrpPassword::new(secret.clone())?.fragment())
            }
            SecretFormat::ConsulEncrypt => {
                use base64::Engine;
                let key = base64::engine::general_purpose::STANDARD
                    .decode(secret.expose())
                    .map_err(|_| "is not base64 (make one with `consul keygen`)".to_string())?;
                if ![16, 24, 32].contains(&key.len()) {
                    return Err(format!(
                        "decodes to {} bytes; a gossip key is 16, 24 or 32 (`consul keygen`)",
                        key.len()
                    ));
                }
                Ok(serde_json::json!({ "encrypt": secret.expose() }).to_string() + "\n")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, name: &str, bytes: &[u8], mode: u32) {
        let path = root.join(secret_path(name).trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_secret_is_read_without_its_newline_and_never_printed() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "splunk-hec-token", b"hec-4f1e\n", 0o600);
        let s = read_secret(root.path(), "splunk-hec-token").unwrap();
        assert_eq!(s.expose(), "hec-4f1e");
        assert!(!format!("{s:?} {s}").contains("hec-4f1e"));
    }

    #[test]
    fn missing_exposed_and_empty_secrets_are_refused_naming_the_file() {
        let root = tempfile::tempdir().unwrap();
        let e = read_secret(root.path(), "consul-gossip-key").unwrap_err();
        assert_eq!(
            e.to_string(),
            "secret /etc/harmony/secrets/consul-gossip-key is missing: the node's config \
             must write it (storage.files or write_files, mode 0600) before this runs"
        );
        write(root.path(), "consul-gossip-key", b"k\n", 0o644);
        let e = read_secret(root.path(), "consul-gossip-key").unwrap_err();
        assert!(
            e.to_string()
                .contains("(mode 0644): write it with mode 0600"),
            "{e}"
        );
        write(root.path(), "consul-gossip-key", b"\n", 0o600);
        let e = read_secret(root.path(), "consul-gossip-key").unwrap_err();
        assert!(e.to_string().ends_with("consul-gossip-key is empty"), "{e}");
    }

    #[test]
    fn formats_check_the_value_and_never_echo_it() {
        let s = |v: &str| Secret::from_bytes(v.as_bytes()).unwrap();
        let key = "pUqJrVyVRj5jsiYEkM/tFQYfWyJIv4s3XkvDwy7Cu5s=";
        assert_eq!(
            SecretFormat::ConsulEncrypt.render(&s(key)).unwrap(),
            format!("{{\"encrypt\":\"{key}\"}}\n")
        );
        let e = SecretFormat::ConsulEncrypt
            .render(&s("c2hvcnQ="))
            .unwrap_err();
        assert!(
            e.contains("decodes to 5 bytes") && !e.contains("c2hvcnQ"),
            "{e}"
        );
        let e = SecretFormat::KeepalivedAuth
            .render(&s("far too long"))
            .unwrap_err();
        assert!(!e.contains("far too long"), "{e}");
        assert_eq!(SecretFormat::Raw.render(&s("t\n")).unwrap(), "t");
        let json = r#"{"name": "elastic-password", "file": "elastic-password"}"#;
        let u: SecretUse = serde_json::from_str(json).unwrap();
        assert_eq!(u.format, SecretFormat::Raw);
        assert_eq!(u.env, None);
    }

    #[test]
    fn only_files_below_the_directory_are_secrets() {
        assert!(is_secret_path("/etc/harmony/secrets/x"));
        assert!(!is_secret_path("/etc/harmony/secrets"));
        assert!(!is_secret_path("/etc/harmony/secrets/"));
        assert!(!is_secret_path("/etc/harmony/secretsx/y"));
    }
}
