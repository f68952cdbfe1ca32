//! An image read from a blob store, every blob checked against its digest and size, and
//! every layer's uncompressed stream against the config's diff_id.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::digest::{blob_path, check_sha256, sha256_digest, HashingReader};
use super::error::OciError;

/// A verified image: what `open_image` returns.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// The reference it was opened from, as given.
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    pub config: ImageConfiguration,
    /// Bottom layer first.
    pub layers: Vec<LayerBlob>,
}

/// One layer blob on disk, already verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:` of the blob as stored (compressed).
    pub digest: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    pub media_type: String,
    pub size: u64,
    pub path: PathBuf,
}

/// How a layer blob is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") || media_type.ends_with(".tar.zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") || media_type.ends_with("layer.v1.tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// Wrap a compressed stream in its decompressor.
    pub fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }
}

impl LayerBlob {
    /// The layer's tar stream, decompressed.
    pub fn open_tar(&self) -> Result<Box<dyn Read>, OciError> {
        let compression = Compression::of_media_type(&self.media_type).ok_or_else(|| {
            OciError::UnsupportedMediaType {
                what: format!("layer {}", self.digest),
                media_type: self.media_type.clone(),
            }
        })?;
        let file = File::open(&self.path).map_err(OciError::io(&self.path))?;
        compression
            .decoder(BufReader::with_capacity(1 << 20, file))
            .map_err(OciError::io(&self.path))
    }
}

/// Read a whole blob (a manifest, index or config) and check its digest and size.
pub fn read_blob(
    root: &Path,
    digest: &str,
    size: Option<u64>,
    what: &str,
) -> Result<Vec<u8>, OciError> {
    check_sha256(digest).map_err(|problem| OciError::Document {
        what: what.to_string(),
        problem,
    })?;
    let path = blob_path(root, digest);
    let bytes = std::fs::read(&path).map_err(OciError::io(&path))?;
    if let Some(expected) = size {
        if bytes.len() as u64 != expected {
            return Err(OciError::SizeMismatch {
                what: what.into(),
                expected,
                actual: bytes.len() as u64,
            });
        }
    }
    let actual = sha256_digest(&bytes);
    if actual != digest {
        return Err(OciError::DigestMismatch {
            what: what.into(),
            expected: digest.into(),
            actual,
        });
    }
    Ok(bytes)
}

/// Load and verify the image whose manifest is `manifest_digest` in the blob store `root`.
pub fn load_image(
    root: &Path,
    reference: &str,
    manifest_digest: &str,
    manifest_size: Option<u64>,
) -> Result<SourceImage, OciError> {
    let what = format!("{reference}: manifest {manifest_digest}");
    let bytes = read_blob(root, manifest_digest, manifest_size, &what)?;
    let manifest = ImageManifest::from_reader(&bytes[..]).map_err(OciError::document(&what))?;
    let config_desc = manifest.config();
    let config_digest = config_desc.digest().to_string();
    let what = format!("{reference}: config {config_digest}");
    let bytes = read_blob(root, &config_digest, Some(config_desc.size()), &what)?;
    let config = ImageConfiguration::from_reader(&bytes[..]).map_err(OciError::document(&what))?;
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != manifest.layers().len() {
        return Err(OciError::Document {
            what,
            problem: format!(
                "{} diff_ids for {} layers in the manifest",
                diff_ids.len(),
                manifest.layers().len()
            ),
        });
    }
    let mut layers = Vec::with_capacity(diff_ids.len());
    for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
        let layer = LayerBlob {
            digest: desc.digest().to_string(),
            diff_id: diff_id.clone(),
            media_type: desc.media_type().to_string(),
            size: desc.size(),
            path: blob_path(root, desc.digest().as_ref()),
        };
        verify_layer(&layer, &format!("{reference}: layer {}", layer.digest))?;
        layers.push(layer);
    }
    Ok(SourceImage {
        reference: reference.to_string(),
        manifest_digest: manifest_digest.to_string(),
        config_digest,
        config,
        layers,
    })
}

/// One pass over the file: hash the compressed bytes and, after decompression, the tar.
fn verify_layer(layer: &LayerBlob, what: &str) -> Result<(), OciError> {
    check_sha256(&layer.diff_id).map_err(|problem| OciError::Document {
        what: what.into(),
        problem,
    })?;
    let compression = Compression::of_media_type(&layer.media_type).ok_or_else(|| {
        OciError::UnsupportedMediaType {
            what: what.into(),
            media_type: layer.media_type.clone(),
        }
    })?;
    let file = File::open(&layer.path).map_err(OciError::io(&layer.path))?;
    let actual_size = file.metadata().map_err(OciError::io(&layer.path))?.len();
    if actual_size != layer.size {
        return Err(OciError::SizeMismatch {
            what: what.into(),
            expected: layer.size,
            actual: actual_size,
        });
    }
    let mut compressed = HashingReader::new(BufReader::with_capacity(1 << 20, file));
    let (diff_id, _) = {
        let decoder = compression
            .decoder(&mut compressed)
            .map_err(OciError::io(&layer.path))?;
        let mut tar = HashingReader::new(decoder);
        io::copy(&mut tar, &mut io::sink()).map_err(|e| OciError::Document {
            what: what.into(),
            problem: format!("decompressing {}: {e}", layer.media_type),
        })?;
        tar.finish()
    };
    // Trailing bytes after the compressed stream still count towards the blob digest.
    io::copy(&mut compressed, &mut io::sink()).map_err(OciError::io(&layer.path))?;
    let (digest, _) = compressed.finish();
    if digest != layer.digest {
        return Err(OciError::DigestMismatch {
            what: what.into(),
            expected: layer.digest.clone(),
            actual: digest,
        });
    }
    if diff_id != layer.diff_id {
        return Err(OciError::DigestMismatch {
            what: format!("{what} (uncompressed diff_id)"),
            expected: layer.diff_id.clone(),
            actual: diff_id,
        });
    }
    Ok(())
}
