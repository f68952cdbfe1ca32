//! One repository on a registry (distribution spec v2), as pulls and pushes talk to it.
//!
//! Plain HTTP for loopback registries (`localhost`, `127.0.0.1`, `[::1]`) or when asked
//! (`--plain-http`), HTTPS otherwise. A 401 is answered once per request: with a bearer
//! token fetched from the challenge's realm (anonymous, or with the credentials), or with
//! the credentials as Basic auth when the registry asks for Basic. Credentials are
//! `--creds`, or looked up in auth files ([`super::auth`]) at the first 401, so a registry
//! that never asks never makes us read one.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine;

use super::auth::{AuthFiles, Found};
use super::error::OciError;
use super::reference::api_host;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Use plain HTTP even for a registry that is not on loopback.
    pub plain_http: bool,
    /// `--creds`: for every registry, instead of any auth file.
    pub credentials: Option<Credentials>,
    /// `--authfile`: the one auth file to read (else `$REGISTRY_AUTH_FILE`, else the
    /// containers-auth.json(5) defaults).
    pub authfile: Option<PathBuf>,
}

/// `USER:PASSWORD`; the password never shows in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// `USER:PASSWORD`, as skopeo's `--creds` takes it.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        match text.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }),
            _ => Err("credentials must be USER:PASSWORD".into()),
        }
    }

    fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}:<redacted>)", self.username)
    }
}

/// What a request carries. Files are re-opened for a retry after a 401.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `path` from `offset`.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

/// A status the caller may want to handle (404 on a HEAD), with the start of the body.
#[derive(Debug)]
pub(crate) struct Refused {
    pub status: u16,
    pub body: String,
}

pub(crate) struct Client {
    /// `scheme://host[:port]`, for relative upload locations.
    pub origin: String,
    /// `ORIGIN/v2/REPOSITORY`.
    pub base: String,
    /// `host[:port]`, as the reference names it.
    registry: String,
    repository: String,
    /// `pull` or `pull,push`: the scope asked for when a challenge names none.
    actions: &'static str,
    agent: ureq::Agent,
    explicit: Option<Credentials>,
    authfile: Option<PathBuf>,
    /// The credentials, once looked up (at the first 401).
    found: Option<Option<Found>>,
    /// The Authorization header that worked last.
    authorization: Option<String>,
}

impl Client {
    pub fn new(registry: &str, repository: &str, opts: &RegistryOptions, push: bool) -> Self {
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        let scheme = if loopback || opts.plain_http {
            "http"
        } else {
            "https"
        };
        let origin = format!("{scheme}://{}", api_host(registry));
        Client {
            base: format!("{origin}/v2/{repository}"),
            origin,
            registry: registry.to_string(),
            repository: repository.to_string(),
            actions: if push { "pull,push" } else { "pull" },
            // Redirects only for reads: a blob GET may be sent on to a storage backend.
            agent: ureq::AgentBuilder::new().build(),
            explicit: opts.credentials.clone(),
            authfile: opts.authfile.clone(),
            found: None,
            authorization: None,
        }
    }

    /// A request that must succeed (2xx); anything else is an error naming the URL.
    pub fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<ureq::Response, OciError> {
        self.try_send(method, url, headers, body)?
            .map_err(|r| OciError::Registry {
                url: format!("{method} {url}"),
                problem: format!("HTTP {}: {}", r.status, r.body),
            })
    }

    /// A request whose refusal (a non-2xx status other than an answerable 401) the caller
    /// handles; transport errors are errors.
    pub fn try_send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<Result<ureq::Response, Refused>, OciError> {
        for attempt in 0..2 {
            let mut request = self.agent.request(method, url);
            for (k, v) in headers {
                request = request.set(k, v);
            }
            if let Some(a) = &self.authorization {
                request = request.set("Authorization", a);
            }
            let result = match &body {
                Body::Empty if method == "PUT" || method == "POST" || method == "PATCH" => {
                    request.set("Content-Length", "0").send_bytes(&[])
                }
                Body::Empty => request.call(),
                Body::Bytes(b) => request.send_bytes(b),
                Body::File { path, offset, len } => {
                    let mut file = std::fs::File::open(path).map_err(OciError::io(*path))?;
                    file.seek(SeekFrom::Start(*offset))
                        .map_err(OciError::io(*path))?;
                    request
                        .set("Content-Length", &len.to_string())
                        .send(file.take(*len))
                }
            };
            match result {
                Ok(response) => return Ok(Ok(response)),
                Err(ureq::Error::Status(401, response)) if attempt == 0 => {
                    let challenge = response
                        .header("WWW-Authenticate")
                        .unwrap_or_default()
                        .to_string();
                    self.authorization = Some(self.answer(url, &challenge)?);
                }
                Err(ureq::Error::Status(401, _)) => break,
                Err(ureq::Error::Status(status, response)) => {
                    let mut body = String::new();
                    let _ = response.into_reader().take(512).read_to_string(&mut body);
                    return Ok(Err(Refused {
                        status,
                        body: body.trim().to_string(),
                    }));
                }
                Err(e) => {
                    return Err(OciError::Registry {
                        url: format!("{method} {url}"),
                        problem: e.to_string(),
                    })
                }
            }
        }
        Err(self.unauthorized())
    }

    /// The credentials for this repository: `--creds`, else the auth files (looked up once).
    fn credentials(&mut self) -> Result<Option<Credentials>, OciError> {
        if self.found.is_none() {
            let found = match &self.explicit {
                Some(c) => Some(Found {
                    credentials: c.clone(),
                    source: "--creds".into(),
                }),
                None => {
                    let files = AuthFiles::locate(self.authfile.as_deref());
                    let found = files.lookup(&self.registry, &self.repository)?;
                    match &found {
                        Some(f) => tracing::debug!(
                            "{}/{}: credentials of {} from {}",
                            self.registry,
                            self.repository,
                            f.credentials.username,
                            f.source
                        ),
                        None => tracing::debug!(
                            "{}/{}: no credentials in {}",
                            self.registry,
                            self.repository,
                            files.describe()
                        ),
                    }
                    found
                }
            };
            self.found = Some(found);
        }
        Ok(self
            .found
            .iter()
            .flatten()
            .next()
            .map(|f| f.credentials.clone()))
    }

    /// Why a 401 stands: no credentials (and how to give some), or refused ones (whose).
    fn unauthorized(&self) -> OciError {
        let problem = match self.found.iter().flatten().next() {
            Some(f) => format!(
                "refused the credentials of user {} (from {}) for {}: check them, or log in \
                 again with `skopeo login {}`",
                f.credentials.username, f.source, self.repository, self.registry
            ),
            None => {
                let files = AuthFiles::locate(self.authfile.as_deref());
                let mut how = format!(
                    "log in with `skopeo login {}` (or podman/docker login; skopeo's \
                     --tls-verify=false for a plain-HTTP registry), or give --authfile FILE",
                    self.registry
                );
                if self.actions.contains("push") {
                    how += " or --creds USER:PASSWORD";
                }
                format!(
                    "{} needs credentials and none were found (looked in {}): {how}",
                    self.repository,
                    files.describe()
                )
            }
        };
        OciError::Unauthorized {
            registry: self.registry.clone(),
            problem,
        }
    }

    /// The Authorization header that answers a 401's challenge.
    fn answer(&mut self, url: &str, challenge: &str) -> Result<String, OciError> {
        let credentials = self.credentials()?;
        let scheme = challenge.split_whitespace().next().unwrap_or_default();
        if scheme.eq_ignore_ascii_case("basic") {
            return match credentials {
                Some(c) => Ok(c.basic()),
                None => Err(self.unauthorized()),
            };
        }
        Ok(format!(
            "Bearer {}",
            self.fetch_token(url, challenge, credentials.as_ref())?
        ))
    }

    fn fetch_token(
        &self,
        url: &str,
        challenge: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String, OciError> {
        let params = parse_bearer_challenge(challenge).ok_or_else(|| OciError::Registry {
            url: url.into(),
            problem: format!("401 without a Bearer challenge (WWW-Authenticate: {challenge:?})"),
        })?;
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let mut request = self.agent.get(&realm);
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            request = request.query("service", service);
        }
        let scope = params
            .iter()
            .find(|(k, _)| k == "scope")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| format!("repository:{}:{}", self.repository, self.actions));
        request = request.query("scope", &scope);
        match credentials {
            Some(c) if self.may_send_credentials_to(&realm) => {
                request = request.set("Authorization", &c.basic());
            }
            Some(_) => tracing::warn!(
                "not sending the credentials for {} to the token realm {realm}: it is not \
                 https on the registry's own host; asking for an anonymous token",
                self.registry
            ),
            None => {}
        }
        let body: serde_json::Value = request
            .call()
            .map_err(|e| match e {
                ureq::Error::Status(401 | 403, _) => self.unauthorized(),
                e => OciError::Registry {
                    url: realm.clone(),
                    problem: format!("token request: {e}"),
                },
            })?
            .into_json()
            .map_err(|e| OciError::Registry {
                url: realm.clone(),
                problem: format!("token response: {e}"),
            })?;
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(String::from)
            .ok_or_else(|| OciError::Registry {
                url: realm,
                problem: "token response has no token".into(),
            })
    }

    /// The registry's password goes only to a realm on the registry's own host, over
    /// https — or over http when the registry itself is spoken to in plain http (a
    /// loopback registry, `--plain-http`), where the password already travels that way.
    /// A challenge may name any URL: it must not collect the credentials.
    fn may_send_credentials_to(&self, realm: &str) -> bool {
        let (Ok(realm), Ok(registry)) = (url::Url::parse(realm), url::Url::parse(&self.origin))
        else {
            return false;
        };
        let same_host = realm.host_str().is_some() && realm.host_str() == registry.host_str();
        same_host && (realm.scheme() == "https" || registry.scheme() == "http")
    }

    /// An upload `Location` made absolute (registries may answer with a path).
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}/{}", self.origin, location.trim_start_matches('/'))
        }
    }
}

/// `Bearer realm="https://auth",service="reg",scope="repository:x:pull"` → key/value pairs.
fn parse_bearer_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| header.trim().strip_prefix("bearer "))?;
    let mut params = Vec::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.push((key.trim().to_string(), value.to_string()));
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    params.iter().any(|(k, _)| k == "realm").then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges() {
        let p = parse_bearer_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull""#,
        )
        .unwrap();
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(
            p[2],
            ("scope".into(), "repository:library/debian:pull".into())
        );
        assert!(parse_bearer_challenge(r#"Basic realm="x""#).is_none());
        assert!(parse_bearer_challenge(r#"Bearer service="x""#).is_none());
    }

    #[test]
    fn loopback_registries_use_plain_http() {
        let opts = RegistryOptions::default();
        assert!(Client::new("127.0.0.1:5000", "a", &opts, false)
            .base
            .starts_with("http://127.0.0.1:5000/v2/a"));
        assert!(Client::new("localhost", "a", &opts, false)
            .base
            .starts_with("http://"));
        assert!(Client::new("quay.io", "a/b", &opts, false)
            .base
            .starts_with("https://quay.io/v2/a/b"));
        let plain = RegistryOptions {
            plain_http: true,
            ..RegistryOptions::default()
        };
        assert!(Client::new("registry.lan:5000", "a", &plain, true)
            .base
            .starts_with("http://registry.lan:5000/v2/a"));
    }

    /// Docker Hub's v2 API is at registry-1.docker.io, not at the name references use.
    #[test]
    fn docker_hub_references_are_sent_to_its_registry_api_host() {
        let opts = RegistryOptions::default();
        for reference in [
            "docker://docker.io/alpine:3.20.3",
            "docker://index.docker.io/library/alpine:3.20.3",
        ] {
            let Ok(crate::oci::ImageRef::Registry {
                registry,
                repository,
                ..
            }) = reference.parse()
            else {
                panic!("{reference}")
            };
            for push in [false, true] {
                let client = Client::new(&registry, &repository, &opts, push);
                assert_eq!(client.origin, "https://registry-1.docker.io", "{reference}");
                assert_eq!(
                    format!("{}/manifests/3.20.3", client.base),
                    "https://registry-1.docker.io/v2/library/alpine/manifests/3.20.3",
                    "{reference}"
                );
            }
        }
    }

    #[test]
    fn basic_challenges_need_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("auth.json");
        std::fs::write(&empty, "{}").unwrap();
        let anonymous = RegistryOptions {
            authfile: Some(empty.clone()),
            ..RegistryOptions::default()
        };
        let mut pull = Client::new("127.0.0.1:1", "a/b", &anonymous, false);
        let err = pull
            .answer("http://x", r#"Basic realm="basic-realm""#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "registry 127.0.0.1:1: a/b needs credentials and none were found (looked in {} \
                 (from --authfile)): log in with `skopeo login 127.0.0.1:1` (or podman/docker \
                 login; skopeo's --tls-verify=false for a plain-HTTP registry), or give \
                 --authfile FILE",
                empty.display()
            )
        );
        let mut push = Client::new("127.0.0.1:1", "a/b", &anonymous, true);
        let err = push
            .answer("http://x", r#"Basic realm="basic-realm""#)
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("or --creds USER:PASSWORD"), "{err}");

        // --creds wins over the auth file (which would be an error: it does not exist).
        let opts = RegistryOptions {
            credentials: Some(Credentials::parse("ci:s3cret:x").unwrap()),
            authfile: Some(dir.path().join("missing.json")),
            ..RegistryOptions::default()
        };
        let mut with = Client::new("127.0.0.1:1", "a", &opts, true);
        // base64("ci:s3cret:x")
        assert_eq!(
            with.answer("http://x", r#"Basic realm="basic-realm""#)
                .unwrap(),
            "Basic Y2k6czNjcmV0Ong="
        );
        let refused = with.unauthorized().to_string();
        assert!(
            refused.contains("refused the credentials of user ci (from --creds)")
                && !refused.contains("s3cret"),
            "{refused}"
        );
        assert!(format!("{:?}", opts.credentials).contains("<redacted>"));
        assert!(!format!("{:?}", with.found).contains("s3cret"));
        assert!(Credentials::parse("nopassword").is_err());
    }

    /// A token server that records the request head of its one request.
    fn token_server(ip: &str) -> (String, std::sync::mpsc::Receiver<String>) {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind((ip, 0)).unwrap();
        let url = format!("http://{}/token", l.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut head = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let body = r#"{"token":"t"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            tx.send(head).unwrap();
        });
        (url, rx)
    }

    /// A challenge names the realm: Basic credentials go only to the registry's own host
    /// (here plain http, the registry being a loopback one), never to another host.
    #[test]
    fn credentials_go_only_to_a_realm_on_the_registrys_host() {
        let opts = RegistryOptions {
            credentials: Some(Credentials::parse("ci:s3cret").unwrap()),
            ..RegistryOptions::default()
        };
        let client = Client::new("127.0.0.1:5000", "a", &opts, false);
        let c = opts.credentials.as_ref();

        let (elsewhere, heads) = token_server("127.0.0.2");
        let challenge = format!(r#"Bearer realm="{elsewhere}",service="reg""#);
        assert_eq!(client.fetch_token("http://x", &challenge, c).unwrap(), "t");
        let head = heads.recv().unwrap();
        assert!(!head.contains("authorization"), "{head}");

        let (own_host, heads) = token_server("127.0.0.1");
        let challenge = format!(r#"Bearer realm="{own_host}",service="reg""#);
        assert_eq!(client.fetch_token("http://x", &challenge, c).unwrap(), "t");
        assert!(heads.recv().unwrap().contains("authorization: basic "));

        // An https registry: its password never goes over plain http, nor elsewhere.
        let remote = Client::new("registry.example", "a", &opts, false);
        assert!(remote.may_send_credentials_to("https://registry.example/token"));
        assert!(!remote.may_send_credentials_to("http://registry.example/token"));
        assert!(!remote.may_send_credentials_to("https://auth.example/token"));
        assert!(!remote.may_send_credentials_to("not a url"));
    }

    #[test]
    fn upload_locations_become_absolute() {
        let c = Client::new("127.0.0.1:5000", "a", &RegistryOptions::default(), true);
        assert_eq!(
            c.absolute("/v2/a/blobs/uploads/u1?_state=x"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/u1?_state=x"
        );
        assert_eq!(c.absolute("https://s/up"), "https://s/up");
    }
}
