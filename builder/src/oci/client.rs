//! One repository on a registry (distribution spec v2), as pulls and pushes talk to it.
//!
//! Plain HTTP for loopback registries (`localhost`, `127.0.0.1`, `[::1]`) or when asked
//! (`--plain-http`), HTTPS otherwise. A 401 is answered once per request: with a bearer
//! token fetched from the challenge's realm (anonymous, or with the credentials), or with
//! the credentials as Basic auth when the registry asks for Basic.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use base64::Engine;

use super::error::OciError;

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Use plain HTTP even for a registry that is not on loopback.
    pub plain_http: bool,
    pub credentials: Option<Credentials>,
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
    repository: String,
    /// `pull` or `pull,push`: the scope asked for when a challenge names none.
    actions: &'static str,
    agent: ureq::Agent,
    credentials: Option<Credentials>,
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
        let origin = format!("{scheme}://{registry}");
        Client {
            base: format!("{origin}/v2/{repository}"),
            origin,
            repository: repository.to_string(),
            actions: if push { "pull,push" } else { "pull" },
            // Redirects only for reads: a blob GET may be sent on to a storage backend.
            agent: ureq::AgentBuilder::new().build(),
            credentials: opts.credentials.clone(),
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
        Ok(Err(Refused {
            status: 401,
            body: match &self.credentials {
                Some(c) => format!("still unauthorized as {}", c.username),
                None => "still unauthorized anonymously (give credentials)".into(),
            },
        }))
    }

    /// The Authorization header that answers a 401's challenge.
    fn answer(&self, url: &str, challenge: &str) -> Result<String, OciError> {
        let scheme = challenge.split_whitespace().next().unwrap_or_default();
        if scheme.eq_ignore_ascii_case("basic") {
            return match &self.credentials {
                Some(c) => Ok(c.basic()),
                None => Err(OciError::Registry {
                    url: url.into(),
                    problem: "the registry asks for a user and password (Basic auth): \
                              give --creds USER:PASSWORD"
                        .into(),
                }),
            };
        }
        Ok(format!("Bearer {}", self.fetch_token(url, challenge)?))
    }

    fn fetch_token(&self, url: &str, challenge: &str) -> Result<String, OciError> {
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
        if let Some(c) = &self.credentials {
            request = request.set("Authorization", &c.basic());
        }
        let body: serde_json::Value = request
            .call()
            .map_err(|e| OciError::Registry {
                url: realm.clone(),
                problem: format!("token request: {e}"),
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

    #[test]
    fn basic_challenges_need_credentials() {
        let anonymous = Client::new("127.0.0.1:1", "a", &RegistryOptions::default(), true);
        let err = anonymous
            .answer("http://x", r#"Basic realm="basic-realm""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--creds"), "{err}");
        let opts = RegistryOptions {
            credentials: Some(Credentials::parse("ci:s3cret:x").unwrap()),
            ..RegistryOptions::default()
        };
        let with = Client::new("127.0.0.1:1", "a", &opts, true);
        // base64("ci:s3cret:x")
        assert_eq!(
            with.answer("http://x", r#"Basic realm="basic-realm""#)
                .unwrap(),
            "Basic Y2k6czNjcmV0Ong="
        );
        assert!(format!("{:?}", opts.credentials).contains("<redacted>"));
        assert!(Credentials::parse("nopassword").is_err());
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
