//! The xattr tables: each distinct set of attributes stored once (key/value pairs), an
//! id table pointing at the sets, and the inode's xattr field indexing the id table.
//! Squashfs knows the `user.`, `trusted.` and `security.` namespaces (file capabilities
//! and SELinux labels are `security.`).

use std::collections::BTreeMap;

use super::metadata::MetadataWriter;

pub type XattrSet = BTreeMap<String, Vec<u8>>;

/// The namespaces squashfs can store, by their on-disk type.
const PREFIXES: [(&str, u16); 3] = [("user.", 0), ("trusted.", 1), ("security.", 2)];

/// The on-disk type and the name without its prefix; None for other namespaces
/// (`system.`: POSIX ACLs), which squashfs cannot hold.
pub fn split_name(name: &str) -> Option<(u16, &str)> {
    PREFIXES
        .iter()
        .find_map(|(prefix, kind)| name.strip_prefix(prefix).map(|rest| (*kind, rest)))
        .filter(|(_, rest)| !rest.is_empty())
}

#[derive(Default)]
pub struct XattrTable {
    ids: BTreeMap<XattrSet, u32>,
    /// In id order: (reference into the key/value table, count, size in bytes).
    entries: Vec<(u64, u32, u32)>,
    kv: MetadataWriter,
}

impl XattrTable {
    /// The id of `set` (only names `split_name` accepts), storing it on first sight.
    pub fn id(&mut self, set: &XattrSet) -> u32 {
        if let Some(id) = self.ids.get(set) {
            return *id;
        }
        let reference = self.kv.reference();
        let (mut size, mut count) = (0usize, 0u32);
        for (name, value) in set {
            let Some((kind, short)) = split_name(name) else {
                continue;
            };
            let mut entry = Vec::with_capacity(8 + short.len() + value.len());
            entry.extend_from_slice(&kind.to_le_bytes());
            entry.extend_from_slice(&(short.len() as u16).to_le_bytes());
            entry.extend_from_slice(short.as_bytes());
            entry.extend_from_slice(&(value.len() as u32).to_le_bytes());
            entry.extend_from_slice(value);
            size += entry.len();
            count += 1;
            self.kv.write(&entry);
        }
        let id = self.entries.len() as u32;
        self.entries.push((reference, count, size as u32));
        self.ids.insert(set.clone(), id);
        id
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The tables as they follow each other at `start` in the image, and the offset of
    /// the xattr id table header (the superblock's `xattr_id_table_start`).
    pub fn finish(self, start: u64) -> (Vec<u8>, u64) {
        let (kv, _) = self.kv.finish();
        let mut ids = MetadataWriter::default();
        for (reference, count, size) in &self.entries {
            let mut e = [0u8; 16];
            e[..8].copy_from_slice(&reference.to_le_bytes());
            e[8..12].copy_from_slice(&count.to_le_bytes());
            e[12..].copy_from_slice(&size.to_le_bytes());
            ids.write(&e);
        }
        let (id_blocks, id_starts) = ids.finish();
        let mut out = kv;
        let ids_at = start + out.len() as u64;
        out.extend_from_slice(&id_blocks);
        let header_at = start + out.len() as u64;
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        for s in id_starts {
            out.extend_from_slice(&(ids_at + s).to_le_bytes());
        }
        (out, header_at)
    }
}
