//! `oci-archive:`: a tar of an image layout, unpacked once into the cache.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::digest::HashingReader;
use super::error::OciError;

/// Unpack `file` into `cache/archives/<sha256 of the archive>` (reused when present) and
/// return that directory, which is then read as a layout.
pub fn extract_archive(file: &Path, cache: &Path) -> Result<PathBuf, OciError> {
    let mut reader = HashingReader::new(File::open(file).map_err(OciError::io(file))?);
    std::io::copy(&mut reader, &mut std::io::sink()).map_err(OciError::io(file))?;
    let (digest, _) = reader.finish();
    let hex = digest.trim_start_matches("sha256:");
    let root = cache.join("archives");
    let dest = root.join(hex);
    if dest.join("index.json").is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&root).map_err(OciError::io(&root))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{hex}.tmp-"))
        .tempdir_in(&root)
        .map_err(OciError::io(&root))?;
    let mut archive = tar::Archive::new(File::open(file).map_err(OciError::io(file))?);
    archive.set_preserve_permissions(false);
    // `unpack` refuses entries that would land outside the destination.
    archive.unpack(tmp.path()).map_err(OciError::io(file))?;
    let unpacked = tmp.keep();
    if let Err(e) = std::fs::rename(&unpacked, &dest) {
        let _ = std::fs::remove_dir_all(&unpacked);
        // Another build may have unpacked the same archive meanwhile.
        if !dest.join("index.json").is_file() {
            return Err(OciError::Io {
                path: dest,
                source: e,
            });
        }
    }
    Ok(dest)
}
