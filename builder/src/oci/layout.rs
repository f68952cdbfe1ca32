//! Reading an OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/`.

use std::path::Path;

use oci_spec::image::{Arch, Descriptor, ImageIndex, Os};

use super::error::OciError;
use super::image::{load_image, read_blob, SourceImage};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Media types of an index that points at per-platform manifests.
pub fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// The linux/amd64 entry of a multi-platform index.
pub fn pick_linux_amd64<'a>(index: &'a ImageIndex, what: &str) -> Result<&'a Descriptor, OciError> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == Arch::Amd64 && *p.os() == Os::Linux)
        })
        .ok_or_else(|| OciError::NotFound {
            reference: what.to_string(),
            problem: "no linux/amd64 image in the index".into(),
        })
}

/// Open the image in layout `dir` chosen by tag, digest, or as the only manifest.
pub fn open_layout(
    dir: &Path,
    tag: Option<&str>,
    digest: Option<&str>,
    reference: &str,
) -> Result<SourceImage, OciError> {
    let layout_file = dir.join("oci-layout");
    let text = std::fs::read_to_string(&layout_file).map_err(OciError::io(&layout_file))?;
    let version: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| OciError::Document {
            what: layout_file.display().to_string(),
            problem: e.to_string(),
        })?;
    if version.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
        return Err(OciError::Document {
            what: layout_file.display().to_string(),
            problem: "imageLayoutVersion is not \"1.0.0\"".into(),
        });
    }
    let index_file = dir.join("index.json");
    let index = ImageIndex::from_file(&index_file)
        .map_err(OciError::document(index_file.display().to_string()))?;
    let manifests = index.manifests();
    let chosen = match (tag, digest) {
        (Some(tag), _) => manifests
            .iter()
            .find(|d| ref_name(d) == Some(tag))
            .ok_or_else(|| OciError::NotFound {
                reference: reference.into(),
                problem: format!("no manifest tagged {tag:?} (tags: {})", tags(manifests)),
            })?,
        (None, Some(digest)) => {
            match manifests.iter().find(|d| d.digest().to_string() == digest) {
                Some(d) => d,
                // A digest not listed in index.json may still be a blob of the layout.
                None => return load_image(dir, reference, digest, None),
            }
        }
        (None, None) => match manifests.as_slice() {
            [only] => only,
            _ => {
                return Err(OciError::NotFound {
                    reference: reference.into(),
                    problem: format!(
                        "{} manifests in index.json, give a tag (tags: {})",
                        manifests.len(),
                        tags(manifests)
                    ),
                })
            }
        },
    };
    let mut desc = chosen.clone();
    if is_index(desc.media_type().as_ref()) {
        let what = format!("{reference}: index {}", desc.digest());
        let bytes = read_blob(dir, desc.digest().as_ref(), Some(desc.size()), &what)?;
        let nested = ImageIndex::from_reader(&bytes[..]).map_err(OciError::document(&what))?;
        desc = pick_linux_amd64(&nested, &what)?.clone();
    }
    load_image(dir, reference, desc.digest().as_ref(), Some(desc.size()))
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

fn tags(manifests: &[Descriptor]) -> String {
    let mut names: Vec<&str> = manifests.iter().filter_map(ref_name).collect();
    names.sort();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
