//! One auth file in containers-auth.json(5) / docker `config.json` form, and which of its
//! entries answers for a repository.
//!
//! `{"auths": {KEY: {"auth": base64("USER:PASSWORD")}}, "credHelpers": {HOST: NAME},
//! "credsStore": NAME}`. A KEY is `host`, `host/namespace` or `host/namespace/repo`; the most
//! specific one wins. Keys written as URLs (`https://index.docker.io/v1/`, as `docker login`
//! once wrote them) match by their host, and Docker Hub's names (`docker.io`,
//! `index.docker.io`, `registry-1.docker.io`) are one registry. Other fields (docker's
//! `psFormat`, `HttpHeaders`, …) are ignored.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::oci::client::Credentials;
use crate::oci::reference::canonical_host;

/// The parsed file. No Debug: it holds secrets.
#[derive(Deserialize)]
pub struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
}

/// What a file says for one repository.
pub enum Match {
    /// An `auths` entry, under `key`.
    Entry {
        key: String,
        credentials: Credentials,
    },
    /// Ask `docker-credential-NAME`; `field` is `credHelpers` or `credsStore`.
    Helper { name: String, field: &'static str },
}

/// The host a key names: URL keys (`https://host/v1/`) lose scheme and path; Docker Hub's
/// names become one.
fn key_host(key: &str) -> &str {
    let (stripped, was_url) = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => (rest, true),
        None => (key, false),
    };
    let host = if was_url {
        stripped.split('/').next().unwrap_or_default()
    } else {
        stripped
    };
    canonical_host(host)
}

impl AuthFile {
    /// Parse; the problem never quotes the file's text (it holds secrets).
    pub fn parse(bytes: &[u8]) -> Result<AuthFile, String> {
        serde_json::from_slice(bytes).map_err(|e| {
            let at = format!("line {} column {}", e.line(), e.column());
            match e.classify() {
                serde_json::error::Category::Data => format!(
                    "unexpected structure at {at}: expected {{\"auths\": {{\"REGISTRY\": \
                     {{\"auth\": \"BASE64(USER:PASSWORD)\"}}}}}} with optional \"credHelpers\" \
                     {{\"REGISTRY\": \"NAME\"}} and \"credsStore\": \"NAME\""
                ),
                _ => format!("not valid JSON ({at})"),
            }
        })
    }

    /// The entry for `registry/repository`: a `credHelpers` entry for the host, else the most
    /// specific `auths` key holding credentials, else `credsStore`. An `auths` entry without
    /// `auth` (docker writes `{}` beside a credential store) holds none.
    pub fn find(&self, registry: &str, repository: &str) -> Result<Option<Match>, String> {
        let host = canonical_host(registry);
        if let Some((_, name)) = self.cred_helpers.iter().find(|(k, _)| key_host(k) == host) {
            return Ok(Some(Match::Helper {
                name: name.clone(),
                field: "credHelpers",
            }));
        }
        let mut scope = format!("{host}/{repository}");
        loop {
            if let Some(found) = self.entry(&scope)? {
                return Ok(Some(found));
            }
            match scope.rfind('/') {
                Some(i) => scope.truncate(i),
                None => break,
            }
        }
        // Keys that name the host in another spelling (a URL, another Docker Hub name).
        let aliases: Vec<&String> = self
            .auths
            .keys()
            .filter(|k| k.as_str() != host && key_host(k) == host)
            .collect();
        for key in aliases {
            if let Some(found) = self.entry(key)? {
                return Ok(Some(found));
            }
        }
        Ok(self.creds_store.as_ref().map(|name| Match::Helper {
            name: name.clone(),
            field: "credsStore",
        }))
    }

    fn entry(&self, key: &str) -> Result<Option<Match>, String> {
        let Some(encoded) = self.auths.get(key).and_then(|e| e.auth.as_deref()) else {
            return Ok(None);
        };
        if encoded.is_empty() {
            return Ok(None);
        }
        let bad = |problem: &str| format!("auths.\"{key}\".auth: {problem}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad("not valid base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| bad("not UTF-8 once decoded"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| bad("decodes to no USER:PASSWORD (no colon)"))?;
        Ok(Some(Match::Entry {
            key: key.to_string(),
            credentials: Credentials {
                username: user.to_string(),
                // Old docker versions padded with NULs.
                password: password.trim_end_matches('\0').to_string(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn user_of(m: Option<Match>) -> String {
        match m {
            Some(Match::Entry { key, credentials }) => {
                format!("{key}={}:{}", credentials.username, credentials.password)
            }
            Some(Match::Helper { name, field }) => format!("{field}={name}"),
            None => "none".into(),
        }
    }

    #[test]
    fn the_most_specific_key_wins() {
        let file = AuthFile::parse(
            format!(
                r#"{{"auths": {{
                    "reg.lan:5000": {{"auth": "{}"}},
                    "reg.lan:5000/team": {{"auth": "{}"}},
                    "reg.lan:5000/team/app": {{"auth": "{}"}}
                }}}}"#,
                b64("host:1"),
                b64("ns:2"),
                b64("repo:3")
            )
            .as_bytes(),
        )
        .unwrap();
        let find = |repo| user_of(file.find("reg.lan:5000", repo).unwrap());
        assert_eq!(find("team/app"), "reg.lan:5000/team/app=repo:3");
        assert_eq!(find("team/other"), "reg.lan:5000/team=ns:2");
        assert_eq!(find("team/app/sub"), "reg.lan:5000/team/app=repo:3");
        assert_eq!(find("else/app"), "reg.lan:5000=host:1");
        // A prefix of a component is not a namespace.
        assert_eq!(find("teamwork/app"), "reg.lan:5000=host:1");
        assert_eq!(
            user_of(file.find("reg.lan:5001", "team/app").unwrap()),
            "none"
        );
    }

    #[test]
    fn docker_hub_names_and_url_keys_match_their_host() {
        let file = AuthFile::parse(
            format!(
                r#"{{"auths": {{
                    "https://index.docker.io/v1/": {{"auth": "{}"}},
                    "http://quay.example:8443/v2/": {{"auth": "{}"}}
                }}}}"#,
                b64("hub:pw:with:colons"),
                b64("quay:x\u{0}\u{0}")
            )
            .as_bytes(),
        )
        .unwrap();
        for host in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(
                user_of(file.find(host, "library/debian").unwrap()),
                "https://index.docker.io/v1/=hub:pw:with:colons"
            );
        }
        assert_eq!(
            user_of(file.find("quay.example:8443", "a/b").unwrap()),
            "http://quay.example:8443/v2/=quay:x"
        );
        // A host-only key written for Docker Hub under another name.
        let file = AuthFile::parse(
            format!(
                r#"{{"auths": {{"registry-1.docker.io": {{"auth": "{}"}}}}}}"#,
                b64("a:b")
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            user_of(file.find("docker.io", "library/x").unwrap()),
            "registry-1.docker.io=a:b"
        );
    }

    #[test]
    fn helpers_come_first_and_the_store_last() {
        let file = AuthFile::parse(
            format!(
                r#"{{"auths": {{"reg.lan": {{"auth": "{}"}}, "docker.io": {{}}}},
                    "credHelpers": {{"gcr.example": "gcloud"}},
                    "credsStore": "pass",
                    "psFormat": "table"}}"#,
                b64("u:p")
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            user_of(file.find("gcr.example", "a").unwrap()),
            "credHelpers=gcloud"
        );
        assert_eq!(user_of(file.find("reg.lan", "a").unwrap()), "reg.lan=u:p");
        // docker's `{}` marker beside a store: ask the store.
        assert_eq!(
            user_of(file.find("index.docker.io", "library/a").unwrap()),
            "credsStore=pass"
        );
    }

    #[test]
    fn malformed_files_and_entries_are_named_without_their_secrets() {
        let err = AuthFile::parse(br#"{"auths": {"reg": {"auth": "c2VjcmV0"}"#)
            .err()
            .unwrap();
        assert!(err.starts_with("not valid JSON (line 1"), "{err}");
        let err = AuthFile::parse(br#"{"auths": {"reg": {"auth": 12345}}}"#)
            .err()
            .unwrap();
        assert!(
            err.contains("unexpected structure at line 1") && !err.contains("12345"),
            "{err}"
        );
        let err = AuthFile::parse(br#"{"auths": "s3cret"}"#).err().unwrap();
        assert!(!err.contains("s3cret"), "{err}");

        let file = AuthFile::parse(
            format!(
                r#"{{"auths": {{"bad64": {{"auth": "s3cret!!"}}, "nocolon": {{"auth": "{}"}},
                    "fine": {{"auth": "{}"}}}}}}"#,
                b64("s3cret"),
                b64("u:p")
            )
            .as_bytes(),
        )
        .unwrap();
        let err = file.find("bad64", "a").err().unwrap();
        assert_eq!(err, "auths.\"bad64\".auth: not valid base64");
        let err = file.find("nocolon", "a").err().unwrap();
        assert!(err.contains("no colon") && !err.contains("s3cret"), "{err}");
        // Entries for other registries are not decoded, so they are no error here.
        assert_eq!(user_of(file.find("fine", "a").unwrap()), "fine=u:p");
    }
}
