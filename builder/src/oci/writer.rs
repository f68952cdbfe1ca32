//! Writing a new OCI image layout, atomically and reproducibly.
//!
//! Everything goes into `DIR.tmp-XXXX` beside the destination and is renamed over it at
//! the end, so a failed build never leaves a half-written layout. JSON is written with
//! sorted keys (oci-spec keeps annotations and labels in HashMaps) and every time stamp
//! is SOURCE_DATE_EPOCH, so the same layers give the same manifest digest.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::{
    Arch, ConfigBuilder, Descriptor, Digest, HistoryBuilder, ImageConfigurationBuilder,
    ImageIndexBuilder, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use serde::Serialize;

use super::digest::{blob_path, sha256_digest};
use super::error::OciError;
use super::image::LayerBlob;
use super::layout::REF_NAME;
use crate::tree::layer::EncodedLayer;

/// What describes the image beyond its layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDetails {
    /// Written as the `org.opencontainers.image.ref.name` of the index entry.
    pub tag: String,
    /// Config labels (`containers.bootc=1`, ...).
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

pub struct LayoutWriter {
    dest: PathBuf,
    tmp: tempfile::TempDir,
    source_date_epoch: i64,
    layers: Vec<(Descriptor, String, String)>,
    /// Entrypoint and Cmd for an application image (component fixtures); none for an OS image.
    command: Option<(Vec<String>, Vec<String>)>,
}

impl LayoutWriter {
    /// Start a layout that will replace `dest` when finished.
    pub fn create(dest: &Path, source_date_epoch: i64) -> Result<Self, OciError> {
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(OciError::io(&parent))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "layout".into());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{name}.tmp-"))
            .tempdir_in(&parent)
            .map_err(OciError::io(&parent))?;
        let blobs = tmp.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(OciError::io(&blobs))?;
        Ok(LayoutWriter {
            dest: dest.to_path_buf(),
            tmp,
            source_date_epoch,
            layers: Vec::new(),
            command: None,
        })
    }

    /// What a container of this image runs: Entrypoint then Cmd.
    pub fn set_command(&mut self, entrypoint: Vec<String>, cmd: Vec<String>) {
        self.command = Some((entrypoint, cmd));
    }

    /// Add a layer made by `encode_layer`.
    pub fn add_layer(&mut self, layer: &EncodedLayer, created_by: &str) -> Result<(), OciError> {
        let path = blob_path(self.tmp.path(), &layer.digest);
        std::fs::write(&path, &layer.gzip).map_err(OciError::io(&path))?;
        let desc = descriptor(MediaType::ImageLayerGzip, layer.size, &layer.digest)?;
        self.layers
            .push((desc, layer.diff_id.clone(), created_by.to_string()));
        Ok(())
    }

    /// Add a layer of an existing image (hard-linked when on the same filesystem).
    pub fn add_source_layer(
        &mut self,
        layer: &LayerBlob,
        created_by: &str,
    ) -> Result<(), OciError> {
        let path = blob_path(self.tmp.path(), &layer.digest);
        if !path.exists() && std::fs::hard_link(&layer.path, &path).is_err() {
            std::fs::copy(&layer.path, &path).map_err(OciError::io(&layer.path))?;
        }
        let desc = descriptor(
            MediaType::from(layer.media_type.as_str()),
            layer.size,
            &layer.digest,
        )?;
        self.layers
            .push((desc, layer.diff_id.clone(), created_by.to_string()));
        Ok(())
    }

    /// Write config, manifest and index, move the layout into place; returns the manifest digest.
    pub fn finish(self, details: &ImageDetails) -> Result<String, OciError> {
        let created = ignition::rfc3339::format_unix(self.source_date_epoch);
        let doc = |e: oci_spec::OciSpecError| OciError::Document {
            what: self.dest.display().to_string(),
            problem: e.to_string(),
        };
        let history = self
            .layers
            .iter()
            .map(|(_, _, by)| {
                HistoryBuilder::default()
                    .created(created.clone())
                    .created_by(by.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(doc)?;
        let rootfs = RootFsBuilder::default()
            .typ("layers")
            .diff_ids(
                self.layers
                    .iter()
                    .map(|(_, id, _)| id.clone())
                    .collect::<Vec<_>>(),
            )
            .build()
            .map_err(doc)?;
        let mut config = ImageConfigurationBuilder::default()
            .created(created.clone())
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .rootfs(rootfs)
            .history(history);
        if !details.labels.is_empty() || self.command.is_some() {
            let mut runtime = ConfigBuilder::default();
            if !details.labels.is_empty() {
                let labels: HashMap<String, String> = details.labels.clone().into_iter().collect();
                runtime = runtime.labels(labels);
            }
            if let Some((entrypoint, cmd)) = &self.command {
                runtime = runtime.entrypoint(entrypoint.clone()).cmd(cmd.clone());
            }
            config = config.config(runtime.build().map_err(doc)?);
        }
        let config = config.build().map_err(doc)?;
        let config_desc = self.write_json(&config, MediaType::ImageConfig)?;
        let mut manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_desc)
            .layers(
                self.layers
                    .iter()
                    .map(|(d, _, _)| d.clone())
                    .collect::<Vec<_>>(),
            );
        if !details.annotations.is_empty() {
            manifest = manifest.annotations(
                details
                    .annotations
                    .clone()
                    .into_iter()
                    .collect::<HashMap<_, _>>(),
            );
        }
        let manifest = manifest.build().map_err(doc)?;
        let mut manifest_desc = self.write_json(&manifest, MediaType::ImageManifest)?;
        let manifest_digest = manifest_desc.digest().to_string();
        manifest_desc.set_annotations(Some(HashMap::from([(
            REF_NAME.to_string(),
            details.tag.clone(),
        )])));
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![manifest_desc])
            .build()
            .map_err(doc)?;
        let index_path = self.tmp.path().join("index.json");
        std::fs::write(&index_path, canonical_json(&index, &index_path)?)
            .map_err(OciError::io(&index_path))?;
        let layout_path = self.tmp.path().join("oci-layout");
        std::fs::write(&layout_path, br#"{"imageLayoutVersion":"1.0.0"}"#)
            .map_err(OciError::io(&layout_path))?;
        replace_dir(self.tmp.keep(), &self.dest)?;
        Ok(manifest_digest)
    }

    fn write_json(
        &self,
        value: &impl Serialize,
        media_type: MediaType,
    ) -> Result<Descriptor, OciError> {
        let bytes = canonical_json(value, &self.dest)?;
        let digest = sha256_digest(&bytes);
        let path = blob_path(self.tmp.path(), &digest);
        std::fs::write(&path, &bytes).map_err(OciError::io(&path))?;
        descriptor(media_type, bytes.len() as u64, &digest)
    }
}

fn descriptor(media_type: MediaType, size: u64, digest: &str) -> Result<Descriptor, OciError> {
    let digest = Digest::from_str(digest).map_err(|e| OciError::Document {
        what: format!("digest {digest}"),
        problem: e.to_string(),
    })?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// Swap `new` in for `dest`: move the old one aside first, since rename cannot replace a
/// non-empty directory.
fn replace_dir(new: PathBuf, dest: &Path) -> Result<(), OciError> {
    if dest.exists() {
        let mut old = dest.as_os_str().to_owned();
        old.push(format!(".old-{}", std::process::id()));
        let old = PathBuf::from(old);
        std::fs::rename(dest, &old).map_err(OciError::io(dest))?;
        std::fs::rename(&new, dest).map_err(OciError::io(dest))?;
        std::fs::remove_dir_all(&old).map_err(OciError::io(&old))?;
    } else {
        std::fs::rename(&new, dest).map_err(OciError::io(dest))?;
    }
    Ok(())
}

/// JSON with object keys sorted at every level, whatever map type the value used.
pub fn canonical_json(value: &impl Serialize, what: &Path) -> Result<Vec<u8>, OciError> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    let err = |e: serde_json::Error| OciError::Document {
        what: what.display().to_string(),
        problem: e.to_string(),
    };
    serde_json::to_vec(&sort(serde_json::to_value(value).map_err(err)?)).map_err(err)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::oci::{open_image, ImageRef};
    use crate::tree::layer::{diff_trees, encode_layer};
    use crate::tree::{Entry, Kind, Meta, Tree};

    fn layer(text: &str) -> EncodedLayer {
        let mut t = Tree::new();
        t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
        t.insert(
            "etc/motd",
            Entry {
                kind: Kind::File(Arc::new(text.as_bytes().to_vec())),
                meta: Meta::new(0o644),
            },
        )
        .unwrap();
        encode_layer(&diff_trees(&Tree::new(), &t), 100).unwrap()
    }

    fn details() -> ImageDetails {
        ImageDetails {
            tag: "v1".into(),
            labels: BTreeMap::from([
                ("containers.bootc".into(), "1".into()),
                ("b".into(), "2".into()),
            ]),
            annotations: BTreeMap::from([
                ("z".into(), "1".into()),
                ("a".into(), "2".into()),
                ("m".into(), "3".into()),
            ]),
        }
    }

    #[test]
    fn writes_a_layout_that_reads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("img");
        let mut w = LayoutWriter::create(&dest, 1_700_000_000).unwrap();
        w.add_layer(&layer("one"), "base").unwrap();
        w.add_layer(&layer("two"), "step").unwrap();
        let first = w.finish(&details()).unwrap();
        let r: ImageRef = format!("oci-layout:{}:v1", dest.display()).parse().unwrap();
        let img = open_image(&r, &dir.path().join("cache")).unwrap();
        assert_eq!(img.manifest_digest, first);
        assert_eq!(img.layers.len(), 2);
        assert_eq!(img.layers[1].diff_id, layer("two").diff_id);
        assert_eq!(
            img.config.created().as_deref(),
            Some("2023-11-14T22:13:20Z")
        );
        let labels = img
            .config
            .config()
            .as_ref()
            .unwrap()
            .labels()
            .clone()
            .unwrap();
        assert_eq!(
            labels.get("containers.bootc").map(String::as_str),
            Some("1")
        );
        let history = img.config.history().clone();
        assert_eq!(history[1].created_by().as_deref(), Some("step"));

        // Same inputs, same digest; a new layout replaces the old one in place.
        let mut w = LayoutWriter::create(&dest, 1_700_000_000).unwrap();
        w.add_layer(&layer("one"), "base").unwrap();
        w.add_layer(&layer("two"), "step").unwrap();
        assert_eq!(w.finish(&details()).unwrap(), first);
        let mut w = LayoutWriter::create(&dest, 1_700_000_000).unwrap();
        w.add_source_layer(&img.layers[0], "base").unwrap();
        let second = w.finish(&details()).unwrap();
        assert_ne!(second, first);
        assert_eq!(
            open_image(&r, &dir.path().join("cache"))
                .unwrap()
                .layers
                .len(),
            1
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            vec![std::ffi::OsString::from("img")],
            "no temporary or old layout is left"
        );
    }
}
