//! Pushing an image from an OCI image layout to a registry (distribution spec v2).
//!
//! Blobs first (config and layers): a HEAD says whether the registry has one already;
//! otherwise POST opens an upload and the blob goes up in one PUT, or, when it is larger
//! than the chunk size, in PATCHes of `chunk_size` bytes closed by a PUT with the digest.
//! The manifest goes last, byte for byte as the layout holds it, under its own media type,
//! so the digest the registry shows is the layout's.

use std::path::Path;

use super::client::{Body, Client, RegistryOptions};
use super::digest::blob_path;
use super::error::OciError;
use super::image::read_blob;
use super::layout::open_layout;
use super::reference::{ImageRef, RegistryParts};

/// Blobs up to this size go up in a single PUT.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;

#[derive(Debug, Clone)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    /// Blobs larger than this are sent in chunks of this size.
    pub chunk_size: u64,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registry: RegistryOptions::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// `docker://REGISTRY/REPOSITORY@sha256:…`
    pub pinned: String,
    pub manifest_digest: String,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    pub bytes_uploaded: u64,
}

/// Push the single image of the layout `dir` (verified first) to `target`, a
/// `docker://` reference with a tag (or the image's own digest).
pub fn push_layout(
    dir: &Path,
    target: &ImageRef,
    opts: &PushOptions,
) -> Result<PushReport, OciError> {
    let RegistryParts {
        registry,
        repository,
        tag,
        digest,
    } = target.registry_parts("push needs a docker://REGISTRY/REPOSITORY:TAG reference")?;
    if opts.chunk_size == 0 {
        return Err(OciError::BadReference {
            input: target.to_string(),
            problem: "the chunk size must be at least one byte".into(),
        });
    }
    let shown = dir.display().to_string();
    let image = open_layout(dir, None, None, &shown)?;
    if let Some(pinned) = digest {
        if pinned != image.manifest_digest {
            return Err(OciError::DigestMismatch {
                what: format!("{target}: the layout {shown} holds another image"),
                expected: pinned.to_string(),
                actual: image.manifest_digest,
            });
        }
    }
    let manifest = read_blob(
        dir,
        &image.manifest_digest,
        None,
        &format!("{shown}: manifest"),
    )?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(String::from))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());

    let mut client = Client::new(registry, repository, &opts.registry, true);
    let mut report = PushReport {
        pinned: format!("docker://{registry}/{repository}@{}", image.manifest_digest),
        manifest_digest: image.manifest_digest.clone(),
        blobs_uploaded: 0,
        blobs_present: 0,
        bytes_uploaded: 0,
    };
    let config_size = std::fs::metadata(blob_path(dir, &image.config_digest))
        .map_err(OciError::io(blob_path(dir, &image.config_digest)))?
        .len();
    let blobs = std::iter::once((image.config_digest.clone(), config_size))
        .chain(image.layers.iter().map(|l| (l.digest.clone(), l.size)));
    for (digest, size) in blobs {
        if has_blob(&mut client, &digest)? {
            report.blobs_present += 1;
            continue;
        }
        upload_blob(
            &mut client,
            &blob_path(dir, &digest),
            &digest,
            size,
            opts.chunk_size,
        )?;
        report.blobs_uploaded += 1;
        report.bytes_uploaded += size;
    }

    let reference = tag.unwrap_or(&image.manifest_digest);
    let url = format!("{}/manifests/{reference}", client.base);
    let response = client.send(
        "PUT",
        &url,
        &[("Content-Type", &media_type)],
        Body::Bytes(&manifest),
    )?;
    check_digest_header(&response, &image.manifest_digest, &url)?;
    tracing::info!(
        "pushed {} ({} blob(s) uploaded, {} already there)",
        report.pinned,
        report.blobs_uploaded,
        report.blobs_present
    );
    Ok(report)
}

pub(super) fn has_blob(client: &mut Client, digest: &str) -> Result<bool, OciError> {
    let url = format!("{}/blobs/{digest}", client.base);
    match client.try_send("HEAD", &url, &[], Body::Empty)? {
        Ok(_) => Ok(true),
        Err(r) if r.status == 404 => Ok(false),
        Err(r) => Err(OciError::Registry {
            url: format!("HEAD {url}"),
            problem: format!("HTTP {}: {}", r.status, r.body),
        }),
    }
}

fn upload_blob(
    client: &mut Client,
    path: &Path,
    digest: &str,
    size: u64,
    chunk_size: u64,
) -> Result<(), OciError> {
    let mut location = start_upload(client)?;
    let body = if size <= chunk_size {
        Body::File {
            path,
            offset: 0,
            len: size,
        }
    } else {
        let mut offset = 0;
        while offset < size {
            let len = chunk_size.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let response = client.send(
                "PATCH",
                &location,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Range", &range),
                ],
                Body::File { path, offset, len },
            )?;
            location = next_location(client, &response, &location)?;
            offset += len;
        }
        Body::Empty
    };
    finish_upload(client, &location, digest, body)
}

/// Open a blob upload (POST); the location its bytes go to.
pub(super) fn start_upload(client: &mut Client) -> Result<String, OciError> {
    let start = format!("{}/blobs/uploads/", client.base);
    let response = client.send("POST", &start, &[], Body::Empty)?;
    next_location(client, &response, &start)
}

/// Close the upload at `location` with its last bytes (`body`; empty after chunks): a PUT
/// naming the digest, which the registry must answer with.
pub(super) fn finish_upload(
    client: &mut Client,
    location: &str,
    digest: &str,
    body: Body<'_>,
) -> Result<(), OciError> {
    let separator = if location.contains('?') { '&' } else { '?' };
    let finish = format!("{location}{separator}digest={digest}");
    let response = client.send(
        "PUT",
        &finish,
        &[("Content-Type", "application/octet-stream")],
        body,
    )?;
    check_digest_header(&response, digest, &finish)
}

/// Where the upload continues: the response's `Location`, made absolute.
fn next_location(
    client: &Client,
    response: &ureq::Response,
    url: &str,
) -> Result<String, OciError> {
    response
        .header("Location")
        .map(|l| client.absolute(l))
        .ok_or_else(|| OciError::Registry {
            url: url.into(),
            problem: format!("HTTP {} without a Location header", response.status()),
        })
}

/// A registry that names what it stored must name what we sent.
pub(super) fn check_digest_header(
    response: &ureq::Response,
    expected: &str,
    url: &str,
) -> Result<(), OciError> {
    match response.header("Docker-Content-Digest") {
        Some(got) if got != expected => Err(OciError::DigestMismatch {
            what: format!("registry {url}"),
            expected: expected.into(),
            actual: got.into(),
        }),
        _ => Ok(()),
    }
}
