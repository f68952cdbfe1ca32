//! Any bytes as the JSON a registry or an OCI layout hands the builder: an image index
//! (and its linux/amd64 pick), a manifest, an image config; and a layer's media type.
#![no_main]

use harmony::oci::image::Compression;
use harmony::oci::layout::{is_index, pick_linux_amd64};
use libfuzzer_sys::fuzz_target;
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = ImageIndex::from_reader(data) {
        let _ = pick_linux_amd64(&index, "fuzz");
        if let Some(media_type) = index.media_type() {
            let _ = is_index(&media_type.to_string());
        }
    }
    if let Ok(manifest) = ImageManifest::from_reader(data) {
        for layer in manifest.layers() {
            let _ = Compression::of_media_type(&layer.media_type().to_string());
        }
    }
    let _ = ImageConfiguration::from_reader(data);
});
