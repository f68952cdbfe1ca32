//! OCI unpack: an image layout's layers (digests verified, gunzipped, whiteouts applied)
//! written out as a root directory, by us and by `umoci unpack --rootless` on the same
//! layout, in the same run. Ours is what `harmony build` does to a base (the layers into
//! its in-memory tree), then that tree written to disk as umoci writes its rootfs; the
//! in-memory part alone is printed too. Timings live here, not in tests.
//!
//!     cargo bench -p harmony-builder --bench oci_unpack [-- LAYOUT[:TAG]]
//!
//! LAYOUT defaults to the default recipe's base in the Harmony cache (made if missing).

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harmony::oci::client::RegistryOptions;
use harmony::oci::open_image_with;
use harmony::oci::reference::ImageRef;
use harmony::steps::run_in_root::{materialise, IdMapping};
use harmony::tree::unpack::apply_layer;
use harmony::tree::Tree;

const RUNS: usize = 3;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The layers into a tree (what a build does); then, unless `in_memory`, the tree
/// written under `out`.
fn ours(layout: &Path, tag: &str, cache: &Path, out: Option<&Path>) -> Duration {
    let start = Instant::now();
    let image = open_image_with(
        &ImageRef::Layout {
            dir: layout.to_path_buf(),
            tag: Some(tag.to_string()),
            digest: None,
        },
        cache,
        &RegistryOptions::default(),
    )
    .expect("opening the layout");
    let mut tree = Tree::new();
    for blob in &image.layers {
        apply_layer(&mut tree, blob.open_tar().expect("layer")).expect("applying a layer");
    }
    if let Some(out) = out {
        materialise(&tree, out, IdMapping::CallerOnly).expect("writing the tree out");
    }
    start.elapsed()
}

fn umoci(layout: &Path, tag: &str, bundle: &Path) -> Duration {
    let start = Instant::now();
    let out = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle)
        .output()
        .expect("running umoci (Debian package umoci)");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "umoci unpack: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    let cache = std::env::var_os("HARMONY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(harmony::cache::default_dir);
    let (layout, tag) = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(arg) => match arg.rsplit_once(':') {
            Some((dir, tag)) => (PathBuf::from(dir), tag.to_string()),
            None => (PathBuf::from(arg), "latest".to_string()),
        },
        None => (
            harmony::build::default_base::ensure_default_base(&cache, 0)
                .expect("making the default base"),
            harmony::build::default_base::DEFAULT_BASE_TAG.to_string(),
        ),
    };
    let scratch = tempfile::tempdir().expect("tempdir");
    let (mut mine, mut in_memory, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS {
        in_memory.push(ours(&layout, &tag, &cache, None));
        let root = scratch.path().join(format!("ours-{run}"));
        mine.push(ours(&layout, &tag, &cache, Some(&root)));
        theirs.push(umoci(
            &layout,
            &tag,
            &scratch.path().join(format!("umoci-{run}")),
        ));
    }
    let (mine, in_memory, theirs) = (median(mine), median(in_memory), median(theirs));
    println!(
        "{}:{tag}: median of {RUNS}: harmony {mine:.2?} (layers into the tree alone \
         {in_memory:.2?}), umoci unpack --rootless {theirs:.2?}",
        layout.display()
    );
    harmony_test_support::bench::figure(
        &format!(
            "OCI unpack to a directory ({})",
            layout
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned())
        ),
        mine.as_secs_f64(),
        "umoci unpack --rootless",
        theirs.as_secs_f64(),
        "s",
    );
}
