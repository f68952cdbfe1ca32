//! The changes that turn one tree into another: what a step that edits a copy of the
//! tree below it puts in its layer.

use super::layer::{Change, LayerChanges};
use super::Tree;

/// Every entry that is new or different in `after` is put; every entry of `before` that
/// `after` lacks is deleted (only the topmost path of a removed subtree: a whiteout of a
/// directory hides what it held).
pub fn diff(before: &Tree, after: &Tree) -> LayerChanges {
    let mut changes = LayerChanges::default();
    for (path, entry) in after.iter() {
        if before.get_exact(path) != Some(entry) {
            changes
                .0
                .insert(path.to_string(), Change::Put(entry.clone()));
        }
    }
    let mut last_deleted: Option<String> = None;
    for (path, _) in before.iter() {
        if path.is_empty() || after.get_exact(path).is_some() {
            continue;
        }
        if let Some(dir) = &last_deleted {
            if path.starts_with(dir.as_str()) && path.as_bytes().get(dir.len()) == Some(&b'/') {
                continue;
            }
        }
        changes.0.insert(path.to_string(), Change::Delete);
        last_deleted = Some(path.to_string());
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::unpack::apply_layer;
    use crate::tree::{layer::encode_layer, Entry, Meta};

    /// Applying the encoded diff to `before` gives `after`: the layer says exactly the edit.
    #[test]
    fn the_diff_layer_replays_the_edit() {
        let mut before = Tree::new();
        before.mkdir_all("etc/old/deep", &Meta::new(0o755)).unwrap();
        before
            .insert("etc/old/deep/x", Entry::file(b"x", 0o644))
            .unwrap();
        before.insert("etc/keep", Entry::file(b"k", 0o644)).unwrap();
        before
            .insert("etc/shadow", Entry::file(b"s", 0o640))
            .unwrap();
        let mut after = before.clone();
        after.remove("etc/old").unwrap();
        after.get_mut("etc/shadow").unwrap().meta.mode = 0;
        after.insert("etc/new", Entry::file(b"n", 0o600)).unwrap();

        let changes = diff(&before, &after);
        let keys: Vec<&str> = changes.0.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["etc/new", "etc/old", "etc/shadow"]);
        assert_eq!(changes.0["etc/old"], Change::Delete);

        let layer = encode_layer(&changes, 0).unwrap();
        let mut replayed = before.clone();
        let gz = flate2::read::GzDecoder::new(&layer.gzip[..]);
        apply_layer(&mut replayed, gz).unwrap();
        assert_eq!(replayed, after);
    }
}
