//! Pulling from a registry (distribution spec v2) into the cache's blob store, verified.
//!
//! How the registry is reached (scheme, tokens) is [`super::client`]'s business.

use std::io::{self, Read};
use std::path::Path;

use oci_spec::image::{ImageIndex, ImageManifest};

use super::client::{Body, Client, RegistryOptions};
use super::digest::{blob_path, check_sha256, sha256_digest, HashingReader};
use super::error::OciError;
use super::image::{load_image, SourceImage};
use super::layout::{is_index, pick_linux_amd64};
use crate::progress::{self, CountingReader, Unit};

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
    opts: &RegistryOptions,
) -> Result<SourceImage, OciError> {
    let mut client = Client::new(registry, repository, opts, false);
    let wanted = digest.or(tag).ok_or_else(|| OciError::BadReference {
        input: reference.into(),
        problem: "a registry reference needs a tag or a digest".into(),
    })?;
    let (mut bytes, mut media_type) = get_manifest(&mut client, wanted)?;
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
        (bytes, media_type) = get_manifest(&mut client, &chosen)?;
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
        fetch_blob(
            &mut client,
            desc.digest().as_ref(),
            desc.size(),
            cache,
            reference,
        )?;
    }
    load_image(cache, reference, &manifest_digest, Some(bytes.len() as u64))
}

/// GET a manifest; returns its bytes and media type.
fn get_manifest(client: &mut Client, reference: &str) -> Result<(Vec<u8>, String), OciError> {
    let url = format!("{}/manifests/{reference}", client.base);
    let response = client.send("GET", &url, &[("Accept", MANIFEST_ACCEPT)], Body::Empty)?;
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
    client: &mut Client,
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
    let url = format!("{}/blobs/{digest}", client.base);
    let response = client.send("GET", &url, &[], Body::Empty)?;
    let dir = dest.parent().unwrap_or(cache);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(OciError::io(dir))?;
    let short = digest
        .trim_start_matches("sha256:")
        .get(..12)
        .unwrap_or(digest);
    let pulling = progress::phase("pull", Some(short.to_string()), Some(size), Unit::Bytes);
    let counted = CountingReader::new(response.into_reader().take(size + 1), pulling.clone());
    let mut reader = HashingReader::new(counted);
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
    pulling.finish();
    Ok(())
}
