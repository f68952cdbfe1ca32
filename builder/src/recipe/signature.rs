//! `verify: {key: FILE}` on the base or a component: checked when the recipe is read (the
//! key must be a P-256 public key, the image a registry image, where signatures live).

use std::path::PathBuf;

use super::model::VerifyDoc;
use super::validate::Checker;
use crate::oci::reference::ImageRef;
use crate::oci::sigstore::load_verifying_key;

impl Checker<'_> {
    /// The key's path (resolved against the recipe's directory), or None after recording
    /// why it cannot be used.
    pub(super) fn signature_key(
        &mut self,
        field: &str,
        verify: Option<&VerifyDoc>,
        image: Option<&ImageRef>,
    ) -> Option<PathBuf> {
        let verify = verify?;
        if let Some(image) = image {
            if !matches!(image, ImageRef::Registry { .. }) {
                self.fail(
                    field,
                    format!(
                        "{image}: signatures are read from a registry; verify needs a \
                         docker:// image"
                    ),
                );
                return None;
            }
        }
        let path = self.dir.join(&verify.key);
        match load_verifying_key(&path) {
            Ok(_) => Some(path),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }
}
