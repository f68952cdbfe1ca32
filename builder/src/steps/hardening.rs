//! The recipe's `hardening:` section: the CIS profile applied to a copy of the tree
//! below, and the difference between the two as one layer.

use sha2::{Digest, Sha256};

use super::StepOutput;
use crate::harden::{apply_profile, HardenError, PROFILE_CIS};
use crate::recipe::Hardening;
use crate::tree::diff::diff;
use crate::tree::layer::Change;
use crate::tree::{Kind, Tree};

pub fn hardening_step(tree: &Tree, hardening: &Hardening) -> Result<StepOutput, HardenError> {
    let mut hardened = tree.clone();
    apply_profile(&mut hardened, &hardening.exclude)?;
    let changes = diff(tree, &hardened);
    // The layer's inputs are the tree below (chained in by the build) and the rules'
    // code; the changes they produce stand for both.
    let mut digest = Sha256::new();
    digest.update(format!("{PROFILE_CIS} exclude={:?}\n", hardening.exclude));
    for (path, change) in &changes.0 {
        match change {
            Change::Delete => digest.update(format!("delete {path}\n")),
            Change::Put(e) => {
                let m = &e.meta;
                digest.update(format!("put {path} {:o} {} {} ", m.mode, m.uid, m.gid));
                match &e.kind {
                    Kind::File(c) => digest.update(Sha256::digest(c.as_slice())),
                    other => digest.update(format!("{other:?}\n")),
                }
            }
        }
    }
    let excluded = if hardening.exclude.is_empty() {
        String::new()
    } else {
        format!(", excluding {}", hardening.exclude.join(", "))
    };
    Ok(StepOutput {
        name: "hardening",
        description: format!("harmony hardening: profile {PROFILE_CIS}{excluded}"),
        inputs_digest: hex::encode(digest.finalize()),
        changes,
    })
}
