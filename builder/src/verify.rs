//! `harmony verify IMAGE`: the hardening profile's checks, offline, against a built
//! image's root tree (a `harmony build` output directory, or any OCI image layout).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::harden::{check_all, Outcome, RuleReport};
use crate::oci::layout::open_layout;
use crate::tree::unpack::apply_layer;
use crate::tree::Tree;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{0}: neither a harmony build output (no oci/oci-layout) nor an OCI image layout (no oci-layout)")]
    NotAnImage(PathBuf),
    #[error("{path}: {source}")]
    Oci {
        path: PathBuf,
        #[source]
        source: crate::oci::OciError,
    },
    #[error("{path}: layer {digest}: {source}")]
    Layer {
        path: PathBuf,
        digest: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The layout an IMAGE argument names: `DIR/oci` for a build output, else `DIR` itself.
pub fn layout_dir(image: &Path) -> Result<PathBuf, VerifyError> {
    if image.join("oci").join("oci-layout").is_file() {
        Ok(image.join("oci"))
    } else if image.join("oci-layout").is_file() {
        Ok(image.to_path_buf())
    } else {
        Err(VerifyError::NotAnImage(image.to_path_buf()))
    }
}

/// The image's root tree: every layer applied, each blob verified as it is read.
pub fn image_tree(image: &Path) -> Result<Tree, VerifyError> {
    let dir = layout_dir(image)?;
    let oci = |source| VerifyError::Oci {
        path: dir.clone(),
        source,
    };
    let img = open_layout(&dir, None, None, &dir.display().to_string()).map_err(oci)?;
    let mut tree = Tree::new();
    for blob in &img.layers {
        let layer_err = |e: Box<dyn std::error::Error + Send + Sync>| VerifyError::Layer {
            path: dir.clone(),
            digest: blob.digest.clone(),
            source: e,
        };
        let tar = blob.open_tar().map_err(|e| layer_err(Box::new(e)))?;
        apply_layer(&mut tree, tar).map_err(|e| layer_err(Box::new(e)))?;
    }
    Ok(tree)
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub image: String,
    pub passed: usize,
    pub failed: usize,
    pub not_applicable: usize,
    pub excluded: usize,
    pub rules: Vec<RuleReport>,
}

impl VerifyReport {
    pub fn of(image: &Path, rules: Vec<RuleReport>) -> VerifyReport {
        let count = |f: &dyn Fn(&RuleReport) -> bool| rules.iter().filter(|r| f(r)).count();
        VerifyReport {
            image: image.display().to_string(),
            passed: count(&|r| !r.excluded && r.outcome == Outcome::Pass),
            failed: count(&|r| r.failed()),
            not_applicable: count(&|r| {
                !r.excluded && matches!(r.outcome, Outcome::NotApplicable(_))
            }),
            excluded: count(&|r| r.excluded),
            rules,
        }
    }

    pub fn ok(&self) -> bool {
        self.failed == 0
    }

    pub fn failed_ids(&self) -> Vec<&str> {
        self.rules
            .iter()
            .filter(|r| r.failed())
            .map(|r| r.id)
            .collect()
    }

    /// One line per rule (`PASS`, `FAIL`, `N/A`, `EXCLUDED`), problems indented below.
    pub fn text(&self) -> String {
        let mut s = format!("harmony verify {} (profile cis)\n", self.image);
        for r in &self.rules {
            let (tag, details): (&str, Vec<String>) = match (&r.outcome, r.excluded) {
                (Outcome::Pass, false) => ("PASS", vec![]),
                (Outcome::Fail(p), false) => ("FAIL", p.clone()),
                (Outcome::NotApplicable(why), false) => ("N/A", vec![why.clone()]),
                (Outcome::Pass, true) => (
                    "EXCLUDED",
                    vec!["excluded by the recipe (passes anyway)".into()],
                ),
                (Outcome::Fail(p), true) => (
                    "EXCLUDED",
                    p.iter()
                        .map(|x| format!("excluded by the recipe: {x}"))
                        .collect(),
                ),
                (Outcome::NotApplicable(why), true) => ("EXCLUDED", vec![why.clone()]),
            };
            s += &format!("{tag:<8} {:<28} {}\n", r.id, r.title);
            for d in details {
                s += &format!("         - {d}\n");
            }
        }
        s += &format!(
            "{} passed, {} failed, {} not applicable, {} excluded\n",
            self.passed, self.failed, self.not_applicable, self.excluded
        );
        s
    }
}

/// Check `image` against the profile.
pub fn verify(image: &Path) -> Result<VerifyReport, VerifyError> {
    let tree = image_tree(image)?;
    Ok(VerifyReport::of(image, check_all(&tree)))
}
