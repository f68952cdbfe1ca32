//! Edits of busybox init's /etc/inittab by build steps: the base's text in, a changed
//! text out, put into the step's layer with the base file's metadata.

use std::sync::Arc;

use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta, Tree};

#[derive(Debug, thiserror::Error)]
#[error("/etc/inittab in the base is not UTF-8 text")]
pub struct InittabNotText;

/// Puts `update(current text)` into `changes` and returns it (for the step's digest).
pub fn edit(
    tree: &Tree,
    changes: &mut LayerChanges,
    update: impl FnOnce(&str) -> String,
) -> Result<String, InittabNotText> {
    let entry = tree.get(&tree.resolve_all("etc/inittab").unwrap_or_default());
    let current = match entry.map(|e| &e.kind) {
        Some(Kind::File(c)) => std::str::from_utf8(c).map_err(|_| InittabNotText)?,
        _ => "",
    };
    let updated = update(current);
    let meta = entry
        .map(|e| e.meta.clone())
        .unwrap_or_else(|| Meta::new(0o644));
    changes.put(
        "/etc/inittab",
        Entry {
            kind: Kind::File(Arc::new(updated.clone().into_bytes())),
            meta,
        },
    );
    Ok(updated)
}
