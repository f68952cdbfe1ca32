//! The component's root, unpacked once on /var: `/var/lib/harmony/component-rootfs/NAME`
//! with `NAME.digest` beside it naming the manifest it was unpacked from. A start whose
//! image has that digest reuses the tree (the container sees it read-only, so nothing
//! in it changed); another digest, or no marker (a first start, or one cut short while
//! unpacking), unpacks afresh into `NAME.new` and renames it into place before the
//! marker is written.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::image::ComponentImage;

pub const ROOTFS_DIR: &str = "var/lib/harmony/component-rootfs";

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpacked {
    /// The marker named this manifest: nothing was written.
    Reused,
    /// Unpacked afresh, this many layers.
    Layers(usize),
}

pub struct RootfsPaths {
    pub rootfs: PathBuf,
    marker: PathBuf,
    staging: PathBuf,
}

impl RootfsPaths {
    pub fn new(root: &Path, name: &str) -> Self {
        let dir = root.join(ROOTFS_DIR);
        RootfsPaths {
            rootfs: dir.join(name),
            marker: dir.join(format!("{name}.digest")),
            staging: dir.join(format!("{name}.new")),
        }
    }
}

/// The rootfs for `image`, unpacked only when the marker names another manifest.
pub fn ensure(image: &ComponentImage, paths: &RootfsPaths) -> anyhow::Result<Unpacked> {
    let marked = std::fs::read_to_string(&paths.marker).ok();
    if marked.as_deref() == Some(image.manifest_digest.as_str()) && paths.rootfs.is_dir() {
        return Ok(Unpacked::Reused);
    }
    // The marker goes first: a start cut short from here on unpacks again.
    remove(&paths.marker)?;
    remove(&paths.staging)?;
    std::fs::create_dir_all(&paths.staging)
        .with_context(|| format!("creating {}", paths.staging.display()))?;
    for layer in &image.layers {
        let reader = image.open_layer(layer)?;
        super::unpack::apply_layer(reader, &paths.staging)
            .with_context(|| format!("layer {}", layer.digest))?;
    }
    remove(&paths.rootfs)?;
    std::fs::rename(&paths.staging, &paths.rootfs).with_context(|| {
        format!(
            "renaming {} to {}",
            paths.staging.display(),
            paths.rootfs.display()
        )
    })?;
    let temp = paths.marker.with_extension("digest.tmp");
    std::fs::write(&temp, &image.manifest_digest)
        .with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &paths.marker)
        .with_context(|| format!("renaming {} to {}", temp.display(), paths.marker.display()))?;
    Ok(Unpacked::Layers(image.layers.len()))
}

/// A file or a whole tree (never following a symlink in it); absent is fine.
fn remove(path: &Path) -> anyhow::Result<()> {
    let result = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    };
    result.with_context(|| format!("removing {}", path.display()))
}
