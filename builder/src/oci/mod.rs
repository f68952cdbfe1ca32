//! OCI images: references, image layouts, archives, registries; every blob verified.

pub mod archive;
pub mod auth;
pub mod client;
pub mod digest;
pub mod error;
pub mod image;
pub mod layout;
pub mod push;
pub mod reference;
pub mod registry;
pub mod sigstore;
pub mod writer;

use std::path::Path;

pub use error::OciError;
pub use image::{LayerBlob, SourceImage};
pub use reference::{ImageRef, RegistryParts};
pub use writer::{ImageDetails, LayoutWriter};

/// Open (pulling or unpacking into `cache` as needed) and verify the image `r` names;
/// registries are reached with the default options (credentials from the default auth files).
pub fn open_image(r: &ImageRef, cache: &Path) -> Result<SourceImage, OciError> {
    open_image_with(r, cache, &client::RegistryOptions::default())
}

/// [`open_image`], reaching registries as `opts` says (auth file, plain HTTP).
pub fn open_image_with(
    r: &ImageRef,
    cache: &Path,
    opts: &client::RegistryOptions,
) -> Result<SourceImage, OciError> {
    let reference = r.to_string();
    match r {
        ImageRef::Layout { dir, tag, digest } => {
            layout::open_layout(dir, tag.as_deref(), digest.as_deref(), &reference)
        }
        ImageRef::Archive { file, tag } => {
            let dir = archive::extract_archive(file, cache)?;
            layout::open_layout(&dir, tag.as_deref(), None, &reference)
        }
        ImageRef::DebianPackages { .. } => Err(OciError::BadReference {
            input: reference,
            problem: "a debian-packages: base is made by `harmony build` (or `harmony base \
                      debian --mode install`), not opened as an image"
                .into(),
        }),
        ImageRef::Registry {
            registry,
            repository,
            tag,
            digest,
        } => registry::pull(
            registry,
            repository,
            tag.as_deref(),
            digest.as_deref(),
            cache,
            &reference,
            opts,
        ),
    }
}

#[cfg(test)]
mod tests;
