//! Our squashfs writer (zstd 15, blocks compressed in parallel) against mksquashfs on a real directory tree:
//! prints time and size of each. Timings live here, not in tests (they vary with load).
//!
//!     cargo bench -p harmony-builder --bench squashfs [-- DIR]
//!
//! DIR defaults to /usr/lib/python3.11 (~50 MB of mixed files); kernel modules
//! (`/lib/modules/VERSION`) make a good second subject.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use harmony::emit::squashfs::squashfs_image;
use harmony::tree::{Entry, Meta, Tree};

const EPOCH: i64 = 1_700_000_000;

/// Regular files and directories under `src` (links and special files are left out: the
/// point is the encoder's speed on data).
fn tree_of(src: &Path) -> Tree {
    let mut t = Tree::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("readable directory") {
            let path = e.expect("directory entry").path();
            let rel = path
                .strip_prefix(src)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                t.mkdir_all(&rel, &Meta::new(0o755)).unwrap();
                stack.push(path);
            } else if kind.is_file() {
                let Ok(data) = std::fs::read(&path) else {
                    continue;
                };
                t.insert(&rel, Entry::file(data, 0o644)).unwrap();
            }
        }
    }
    t
}

fn main() {
    let src = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/python3.11"));
    if !src.is_dir() {
        harmony_test_support::skip(format!("{} is not a directory", src.display()));
        return;
    }
    let t = tree_of(&src);

    let start = Instant::now();
    let image = squashfs_image(&t, EPOCH).expect("squashfs image");
    let ours = start.elapsed();
    println!(
        "{}: {} MB in; harmony {:.2?} -> {} bytes",
        src.display(),
        t.file_bytes() / 1_000_000,
        ours,
        image.len()
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("m.sqfs");
    let start = Instant::now();
    let status = Command::new("mksquashfs")
        .arg(&src)
        .arg(&out)
        .args(["-comp", "zstd", "-quiet", "-no-progress"])
        .status();
    let theirs = start.elapsed();
    match status {
        Ok(s) if s.success() => {
            let size = std::fs::metadata(&out).map_or(0, |m| m.len());
            println!("mksquashfs {theirs:.2?} -> {size} bytes");
        }
        Ok(s) => println!("mksquashfs failed: {s}"),
        Err(_) => harmony_test_support::skip(
            "tool mksquashfs not installed: Debian package squashfs-tools",
        ),
    }
}
