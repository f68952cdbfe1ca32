//! Pulling from a registry (distribution spec v2) into the cache's blob store, verified.
//!
//! Plain HTTP for loopback registries, HTTPS otherwise; anonymous bearer tokens are
//! fetched when the registry asks for them (`WWW-Authenticate: Bearer realm=...`).

use std::io::{self, Read};
use std::path::Path;

use oci_spec::image::{ImageIndex, ImageManifest};

use super::digest::{blob_path, check_sha256, sha256_digest, HashingReader};
use super::error::OciError;
use super::image::{load_image, SourceImage};
use super::layout::{is_index, pick_linux_amd64};

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// Pull `registry/repository` at `digest` (preferred) or `tag` into `cache/blobs`.
pub fn pull(
    registry: &str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&str>,
    cache: &Path,
    reference: &str,
) -> Result<SourceImage, OciError> {
    let mut client = Client::new(registry, repository);
    let wanted = digest.or(tag).ok_or_else(|| OciError::BadReference {
        input: reference.into(),
        problem: "a registry reference needs a tag or a digest".into(),
    })?;
    let (mut bytes, mut media_type) = client.manifest(wanted)?;
    let mut manifest_digest = sha256_digest(&bytes);
    if let Some(pinned) = digest {
        if manifest_digest != pinned {
            return Err(OciError::DigestMismatch {
                what: format!("{reference}: manifest"),
                expected: pinned.into(),
                actual: manifest_digest,
            });
        }
    }
    if is_index(&media_type) {
        let what = format!("{reference}: index {manifest_digest}");
        let index = ImageIndex::from_reader(&bytes[..]).map_err(OciError::document(&what))?;
        let desc = pick_linux_amd64(&index, &what)?;
        let chosen = desc.digest().to_string();
        (bytes, media_type) = client.manifest(&chosen)?;
        manifest_digest = sha256_digest(&bytes);
        if manifest_digest != chosen {
            return Err(OciError::DigestMismatch {
                what,
                expected: chosen,
                actual: manifest_digest,
            });
        }
    }
    let what = format!("{reference}: manifest {manifest_digest} ({media_type})");
    let manifest = ImageManifest::from_reader(&bytes[..]).map_err(OciError::document(&what))?;
    let dir = blob_path(cache, &manifest_digest)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    std::fs::create_dir_all(&dir).map_err(OciError::io(&dir))?;
    let path = blob_path(cache, &manifest_digest);
    std::fs::write(&path, &bytes).map_err(OciError::io(&path))?;
    let blobs = std::iter::once(manifest.config()).chain(manifest.layers().iter());
    for desc in blobs {
        client.fetch_blob(desc.digest().as_ref(), desc.size(), cache, reference)?;
    }
    load_image(cache, reference, &manifest_digest, Some(bytes.len() as u64))
}

struct Client {
    base: String,
    repository: String,
    agent: ureq::Agent,
    token: Option<String>,
}

impl Client {
    fn new(registry: &str, repository: &str) -> Self {
        let host = registry.rsplit_once(':').map_or(registry, |(h, _)| h);
        let scheme = if matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            "http"
        } else {
            "https"
        };
        Client {
            base: format!("{scheme}://{registry}/v2/{repository}"),
            repository: repository.to_string(),
            agent: ureq::AgentBuilder::new().build(),
            token: None,
        }
    }

    /// GET a manifest; returns its bytes and media type.
    fn manifest(&mut self, reference: &str) -> Result<(Vec<u8>, String), OciError> {
        let url = format!("{}/manifests/{reference}", self.base);
        let response = self.get(&url, Some(MANIFEST_ACCEPT))?;
        let header_type = response
            .header("Content-Type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_string());
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(4 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| OciError::Registry {
                url: url.clone(),
                problem: e.to_string(),
            })?;
        // Registries may answer with a generic content type: the body's mediaType decides then.
        let body_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            });
        let media_type = body_type.or(header_type).unwrap_or_default();
        Ok((bytes, media_type))
    }

    /// Download a blob into the cache unless a file of the right size is there already
    /// (whatever is there is verified again when the image is loaded).
    fn fetch_blob(
        &mut self,
        digest: &str,
        size: u64,
        cache: &Path,
        reference: &str,
    ) -> Result<(), OciError> {
        check_sha256(digest).map_err(|problem| OciError::Document {
            what: reference.into(),
            problem,
        })?;
        let dest = blob_path(cache, digest);
        if std::fs::metadata(&dest).is_ok_and(|m| m.len() == size) {
            return Ok(());
        }
        let url = format!("{}/blobs/{digest}", self.base);
        let response = self.get(&url, None)?;
        let dir = dest.parent().unwrap_or(cache);
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(OciError::io(dir))?;
        let mut reader = HashingReader::new(response.into_reader().take(size + 1));
        io::copy(&mut reader, tmp.as_file_mut()).map_err(|e| OciError::Registry {
            url: url.clone(),
            problem: format!("downloading: {e}"),
        })?;
        let (actual, count) = reader.finish();
        let what = format!("{reference}: blob {digest}");
        if count != size {
            return Err(OciError::SizeMismatch {
                what,
                expected: size,
                actual: count,
            });
        }
        if actual != digest {
            return Err(OciError::DigestMismatch {
                what,
                expected: digest.into(),
                actual,
            });
        }
        tmp.persist(&dest).map_err(|e| OciError::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        Ok(())
    }

    /// GET with the token if we have one; on 401 fetch an anonymous token once and retry.
    fn get(&mut self, url: &str, accept: Option<&str>) -> Result<ureq::Response, OciError> {
        for attempt in 0..2 {
            let mut request = self.agent.get(url);
            if let Some(a) = accept {
                request = request.set("Accept", a);
            }
            if let Some(t) = &self.token {
                request = request.set("Authorization", &format!("Bearer {t}"));
            }
            match request.call() {
                Ok(response) => return Ok(response),
                Err(ureq::Error::Status(401, response)) if attempt == 0 => {
                    let challenge = response
                        .header("WWW-Authenticate")
                        .unwrap_or_default()
                        .to_string();
                    self.token = Some(self.fetch_token(url, &challenge)?);
                }
                Err(ureq::Error::Status(code, response)) => {
                    let mut body = String::new();
                    let _ = response.into_reader().take(512).read_to_string(&mut body);
                    return Err(OciError::Registry {
                        url: url.into(),
                        problem: format!("HTTP {code}: {}", body.trim()),
                    });
                }
                Err(e) => {
                    return Err(OciError::Registry {
                        url: url.into(),
                        problem: e.to_string(),
                    })
                }
            }
        }
        Err(OciError::Registry {
            url: url.into(),
            problem: "still unauthorized with an anonymous token".into(),
        })
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
            .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
        request = request.query("scope", &scope);
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
        assert!(Client::new("127.0.0.1:5000", "a")
            .base
            .starts_with("http://127.0.0.1:5000/v2/a"));
        assert!(Client::new("localhost", "a").base.starts_with("http://"));
        assert!(Client::new("quay.io", "a/b")
            .base
            .starts_with("https://quay.io/v2/a/b"));
    }
}
