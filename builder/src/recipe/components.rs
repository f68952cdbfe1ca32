//! `components:`: each entry names a catalog component, a digest-pinned image and values.

use super::model::ComponentDoc;
use super::validate::Checker;
use super::ComponentItem;
use crate::components::catalog::{self, find};
use crate::oci::reference::ImageRef;

pub(super) fn check(c: &mut Checker, docs: &[ComponentDoc]) -> Vec<ComponentItem> {
    let mut items = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let at = format!("components[{i}]");
        let Some(entry) = find(&d.name) else {
            c.fail(
                &format!("{at}.name"),
                format!(
                    "unknown component `{}` (catalog: {})",
                    d.name,
                    catalog::names().join(", ")
                ),
            );
            continue;
        };
        if seen.contains(&d.name.as_str()) {
            c.fail(
                &format!("{at}.name"),
                format!("`{}` is listed twice", d.name),
            );
            continue;
        }
        seen.push(&d.name);
        let image = match &d.image {
            None => {
                c.fail(
                    &format!("{at}.image"),
                    format!(
                        "required: pin the image by digest, e.g. docker://{}@sha256:… \
                         (no digest of it can be verified here, so there is no default)",
                        entry.upstream
                    ),
                );
                None
            }
            Some(text) => c
                .image_ref(&format!("{at}.image"), text)
                .and_then(|r| pinned(c, &format!("{at}.image"), r)),
        };
        let rendered = match (entry.render)(&d.values) {
            Ok(r) => Some(r),
            Err(e) => {
                let field = if e.field.is_empty() {
                    format!("{at}.values")
                } else {
                    format!("{at}.values.{}", e.field)
                };
                c.fail(&field, e.problem);
                None
            }
        };
        let verify = c.signature_key(
            &format!("{at}.verify.key"),
            d.verify.as_ref(),
            image.as_ref(),
        );
        if let (Some(image), Some(rendered)) = (image, rendered) {
            items.push(ComponentItem {
                name: d.name.clone(),
                image,
                verify,
                config_mount: entry.config_mount.to_string(),
                command: entry.command.iter().map(|a| a.to_string()).collect(),
                env: entry
                    .env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                user: entry.user.to_string(),
                capabilities: entry.capabilities.iter().map(|c| c.to_string()).collect(),
                data_mount: entry.data_mount.to_string(),
                rendered,
            });
        }
    }
    items
}

/// A tag can move under us: only a digest says which bytes are baked in.
fn pinned(c: &mut Checker, field: &str, r: ImageRef) -> Option<ImageRef> {
    let ok = match &r {
        ImageRef::Registry { digest, .. } | ImageRef::Layout { digest, .. } => digest.is_some(),
        ImageRef::Archive { .. } | ImageRef::DebianPackages { .. } => false,
    };
    if ok {
        Some(r)
    } else {
        c.fail(
            field,
            format!("`{r}` is not pinned: give REF@sha256:… (docker:// or oci-layout:)"),
        );
        None
    }
}
