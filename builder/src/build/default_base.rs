//! The default recipe's base: made from Debian packages on first use, kept in the cache.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::base::debian::{make_debian_base, DebianBaseOptions};

/// The package list the default base is made from (also in image-recipes/).
pub const DEFAULT_PACKAGES: &str = include_str!("../../../image-recipes/debian-base.packages");
/// Where the default recipe's `base: oci-layout:bases/debian-default:latest` points, under the cache.
pub const DEFAULT_BASE_DIR: &str = "bases/debian-default";
pub const DEFAULT_BASE_TAG: &str = "latest";

/// One package name per line; `#` starts a comment.
pub fn parse_package_list(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn read_package_list(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let names = parse_package_list(&text);
    anyhow::ensure!(!names.is_empty(), "{}: lists no packages", path.display());
    Ok(names)
}

/// Make the default base under `cache` unless it is already there.
pub fn ensure_default_base(cache: &Path, source_date_epoch: i64) -> anyhow::Result<PathBuf> {
    let dir = cache.join(DEFAULT_BASE_DIR);
    if dir.join("index.json").is_file() {
        return Ok(dir);
    }
    tracing::info!(
        "making the default base from Debian packages into {} (first build only; \
         same as `harmony base debian --packages image-recipes/debian-base.packages --out {}`)",
        dir.display(),
        dir.display()
    );
    let opts = DebianBaseOptions {
        packages: parse_package_list(DEFAULT_PACKAGES),
        out: dir.clone(),
        tag: DEFAULT_BASE_TAG.to_string(),
        cache: cache.to_path_buf(),
        source_date_epoch,
    };
    make_debian_base(&opts).context("making the default base image")?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_list_skips_comments_and_blanks() {
        assert_eq!(
            parse_package_list("# c\nbusybox-static\n\n  linux-image-cloud-amd64 # k\n"),
            vec!["busybox-static", "linux-image-cloud-amd64"]
        );
        assert_eq!(
            parse_package_list(DEFAULT_PACKAGES),
            vec!["busybox-static", "linux-image-cloud-amd64"]
        );
    }
}
