//! Registry credentials found the way skopeo, podman and buildah find them
//! (containers-auth.json(5)), with docker's `config.json` and credential helpers.
//!
//! Auth files, in order, until one has credentials for the repository: the file given with
//! `--authfile` or `$REGISTRY_AUTH_FILE` (then only that one), else
//! `${XDG_RUNTIME_DIR}/containers/auth.json` (`/run/containers/UID/auth.json` without it:
//! where `skopeo login` writes), `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
//! `${DOCKER_CONFIG:-~/.docker}/config.json`. A default file that does not exist is
//! skipped; a named one that does not exist, or any consulted file that is malformed, is
//! an error naming it. Files are read only when a registry asks for credentials.

pub mod file;
pub mod helper;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::client::Credentials;
use super::error::OciError;
use file::{AuthFile, Match};

/// Credentials and where they came from (for messages; never the secret).
#[derive(Debug, Clone)]
pub struct Found {
    pub credentials: Credentials,
    pub source: String,
}

/// The auth files to consult, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFiles {
    pub files: Vec<PathBuf>,
    /// Named by `--authfile` or `$REGISTRY_AUTH_FILE` (it must exist), and the only one.
    pub named_by: Option<&'static str>,
}

impl AuthFiles {
    /// From `--authfile` and the process environment.
    pub fn locate(authfile: Option<&Path>) -> AuthFiles {
        Self::locate_in(
            authfile,
            |k| std::env::var_os(k).filter(|v| !v.is_empty()),
            nix::unistd::getuid().as_raw(),
        )
    }

    fn locate_in(
        authfile: Option<&Path>,
        env: impl Fn(&str) -> Option<OsString>,
        uid: u32,
    ) -> AuthFiles {
        if let Some(f) = authfile {
            return AuthFiles {
                files: vec![f.to_path_buf()],
                named_by: Some("--authfile"),
            };
        }
        if let Some(f) = env("REGISTRY_AUTH_FILE") {
            return AuthFiles {
                files: vec![f.into()],
                named_by: Some("$REGISTRY_AUTH_FILE"),
            };
        }
        let home = env("HOME").map(PathBuf::from);
        let mut files = vec![match env("XDG_RUNTIME_DIR") {
            Some(dir) => PathBuf::from(dir).join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{uid}/auth.json")),
        }];
        if let Some(config) = env("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".config")))
        {
            files.push(config.join("containers/auth.json"));
        }
        if let Some(docker) = env("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".docker")))
        {
            files.push(docker.join("config.json"));
        }
        AuthFiles {
            files,
            named_by: None,
        }
    }

    /// The files, for a message.
    pub fn describe(&self) -> String {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        match self.named_by {
            Some(by) => format!("{} (from {by})", names.join(", ")),
            None => names.join(", "),
        }
    }

    /// The credentials for `registry/repository`, from the first file that has some.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Found>, OciError> {
        for path in &self.files {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.named_by.is_none() => {
                    continue
                }
                Err(e) => {
                    return Err(OciError::Auth {
                        what: format!("auth file {}", path.display()),
                        problem: match self.named_by {
                            Some(by) if e.kind() == std::io::ErrorKind::NotFound => {
                                format!("does not exist (named by {by})")
                            }
                            _ => e.to_string(),
                        },
                    })
                }
            };
            let bad = |problem: String| OciError::Auth {
                what: format!("auth file {}", path.display()),
                problem,
            };
            let parsed = AuthFile::parse(&bytes).map_err(bad)?;
            match parsed.find(registry, repository).map_err(bad)? {
                None => {}
                Some(Match::Entry { key, credentials }) => {
                    return Ok(Some(Found {
                        credentials,
                        source: format!("auth file {} (key {key:?})", path.display()),
                    }))
                }
                Some(Match::Helper { name, field }) => {
                    let url = helper::server_url(registry);
                    let asked = helper::get(&name, &url).map_err(|problem| OciError::Auth {
                        what: format!("credential helper {name:?} ({field} in {})", path.display()),
                        problem,
                    })?;
                    if let Some(credentials) = asked {
                        return Ok(Some(Found {
                            credentials,
                            source: format!(
                                "{} ({field} in {})",
                                helper::program(&name),
                                path.display()
                            ),
                        }));
                    }
                }
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_lookup_order_of_containers_auth_json() {
        let all = [
            ("HOME", "/home/u"),
            ("XDG_RUNTIME_DIR", "/run/user/1000"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("DOCKER_CONFIG", "/dock"),
            ("REGISTRY_AUTH_FILE", "/env/auth.json"),
        ];
        let flag = AuthFiles::locate_in(Some(Path::new("/flag.json")), env(&all), 1000);
        assert_eq!(flag.files, [PathBuf::from("/flag.json")]);
        assert_eq!(flag.named_by, Some("--authfile"));
        let from_env = AuthFiles::locate_in(None, env(&all), 1000);
        assert_eq!(from_env.files, [PathBuf::from("/env/auth.json")]);
        let defaults = AuthFiles::locate_in(None, env(&all[..4]), 1000);
        assert_eq!(
            defaults.files,
            [
                "/run/user/1000/containers/auth.json",
                "/cfg/containers/auth.json",
                "/dock/config.json"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(defaults.named_by, None);
        let home_only = AuthFiles::locate_in(None, env(&all[..1]), 0);
        assert_eq!(
            home_only.files,
            [
                "/run/containers/0/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json"
            ]
            .map(PathBuf::from)
        );
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn auths(key: &str, pair: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(pair);
        format!(r#"{{"auths": {{"{key}": {{"auth": "{b}"}}}}}}"#)
    }

    #[test]
    fn files_are_searched_in_order_and_only_as_far_as_needed() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "first.json", &auths("a.lan", "first:1"));
        let broken = write(dir.path(), "broken.json", "{not json");
        let last = write(dir.path(), "last.json", &auths("b.lan", "last:2"));
        let files = AuthFiles {
            files: vec![
                dir.path().join("missing.json"),
                first.clone(),
                broken.clone(),
                last,
            ],
            named_by: None,
        };
        // Found in the first existing file: the broken one is never read.
        let found = files.lookup("a.lan", "x/y").unwrap().unwrap();
        assert_eq!(found.credentials.username, "first");
        assert_eq!(
            found.source,
            format!("auth file {} (key \"a.lan\")", first.display())
        );
        // Not there: the broken file is consulted, and named.
        let err = files.lookup("b.lan", "x").unwrap_err().to_string();
        assert!(
            err.contains(&broken.display().to_string()) && err.contains("not valid JSON"),
            "{err}"
        );
        let files = AuthFiles {
            files: vec![first],
            named_by: None,
        };
        assert!(files.lookup("c.lan", "x").unwrap().is_none());
    }

    #[test]
    fn a_named_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let files = AuthFiles::locate_in(Some(&dir.path().join("typo.json")), env(&[]), 0);
        let err = files.lookup("a.lan", "x").unwrap_err().to_string();
        assert!(
            err.contains("typo.json") && err.contains("does not exist (named by --authfile)"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_entry_names_file_and_key_but_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        let b = base64::engine::general_purpose::STANDARD.encode("s3cret-without-colon");
        let f = write(
            dir.path(),
            "auth.json",
            &format!(r#"{{"auths": {{"a.lan": {{"auth": "{b}"}}}}}}"#),
        );
        let files = AuthFiles::locate_in(Some(&f), env(&[]), 0);
        let err = files.lookup("a.lan", "x").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "auth file {}: auths.\"a.lan\".auth: decodes to no USER:PASSWORD (no colon)",
                f.display()
            )
        );
    }
}
