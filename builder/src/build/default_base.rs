//! The default recipe's base: made from Debian packages on first use, kept in the cache.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::base::debian::{make_debian_base, BaseMode, DebianBaseOptions};

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

/// What the default base is made from, besides the .debs: the package list, the
/// skeleton this builder adds, the epoch. A base made from another recipe is remade.
fn base_recipe_digest(source_date_epoch: i64) -> anyhow::Result<String> {
    use sha2::{Digest, Sha256};
    let mut skeleton = crate::tree::Tree::new();
    crate::base::skeleton::add_usrmerge_links(&mut skeleton, source_date_epoch)?;
    crate::base::skeleton::add_skeleton(
        &mut skeleton,
        crate::base::debian::DEBIAN_VERSION,
        source_date_epoch,
    )?;
    let mut h = Sha256::new();
    h.update(DEFAULT_PACKAGES.as_bytes());
    h.update(source_date_epoch.to_le_bytes());
    for (path, entry) in skeleton.iter() {
        h.update(format!("{path}\0{entry:?}\n").as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

/// Make the default base under `cache` unless the one there was made from the same recipe.
pub fn ensure_default_base(cache: &Path, source_date_epoch: i64) -> anyhow::Result<PathBuf> {
    let dir = cache.join(DEFAULT_BASE_DIR);
    let stamp = dir.with_extension("stamp");
    let wanted = base_recipe_digest(source_date_epoch)?;
    let made_from = std::fs::read_to_string(&stamp).unwrap_or_default();
    if dir.join("index.json").is_file() && made_from.trim() == wanted {
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
        mode: BaseMode::Unpack,
        out: dir.clone(),
        tag: DEFAULT_BASE_TAG.to_string(),
        cache: cache.to_path_buf(),
        source_date_epoch,
    };
    make_debian_base(&opts).context("making the default base image")?;
    std::fs::write(&stamp, format!("{wanted}\n"))
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(dir)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::OnceLock;

    use super::*;
    use crate::oci::{open_image, ImageRef};
    use crate::tree::unpack::apply_layer;
    use crate::tree::Tree;

    /// The default base's root tree, for tests that need the real Debian cloud kernel and
    /// its modules. Made once per machine in the Harmony cache (`HARMONY_CACHE`, as
    /// `harmony build` makes it; the vm-tests share it), read once per test binary.
    pub(crate) fn default_base_tree() -> &'static Tree {
        static TREE: OnceLock<Tree> = OnceLock::new();
        TREE.get_or_init(|| {
            let cache = std::env::var_os("HARMONY_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(crate::cache::default_dir);
            let base = ensure_default_base(&cache, 0)
                .unwrap_or_else(|e| panic!("making the default base: {e:#}"));
            let image: ImageRef = format!("oci-layout:{}:{DEFAULT_BASE_TAG}", base.display())
                .parse()
                .unwrap();
            let image = open_image(&image, &cache).unwrap();
            let mut tree = Tree::new();
            for layer in &image.layers {
                apply_layer(&mut tree, layer.open_tar().unwrap()).unwrap();
            }
            tree
        })
    }

    #[test]
    fn package_list_skips_comments_and_blanks() {
        assert_eq!(
            parse_package_list("# c\nbusybox-static\n\n  linux-image-cloud-amd64 # k\n"),
            vec!["busybox-static", "linux-image-cloud-amd64"]
        );
        let default = parse_package_list(DEFAULT_PACKAGES);
        assert_eq!(default[..2], ["busybox-static", "linux-image-cloud-amd64"]);
        assert!(
            default.contains(&"e2fsprogs: sbin/mke2fs sbin/e2fsck".to_string()),
            "{default:?}"
        );
    }
}
