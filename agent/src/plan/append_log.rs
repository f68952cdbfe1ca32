//! Which `append`s an earlier apply made, so applying the same config again does not
//! append twice. Ignition never faces this (it runs once per node); `harmony-agent apply`
//! must be repeatable.
//!
//! The record is kept in the root at [`PATH`]: per file, the sha256 of what was appended
//! and of the whole file right after. A file that still hashes to what the last append
//! left, asked for the same append again, is already done. A file changed since (by hand,
//! or by another config) gets the append again, which is what the config asks for.

use std::collections::BTreeMap;

use ignition::Contents;
use serde::{Deserialize, Serialize};

use crate::target_root::TargetRoot;

pub const PATH: &str = "/var/lib/harmony/appends.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    path: String,
    append_sha256: String,
    result_sha256: String,
}

#[derive(Debug, Default)]
pub struct AppendLog {
    entries: BTreeMap<String, Entry>,
    changed: bool,
}

impl AppendLog {
    /// An unreadable or garbled record counts as empty: the worst case is appending
    /// again, never losing data.
    pub fn load(root: &TargetRoot) -> AppendLog {
        let entries: Vec<Entry> = root
            .read(PATH)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        AppendLog {
            entries: entries.into_iter().map(|e| (e.path.clone(), e)).collect(),
            changed: false,
        }
    }

    /// Has exactly this append already been made to a file that now holds `current`?
    pub fn already_appended(
        &self,
        path: &str,
        append: &[Contents],
        current: &Contents,
    ) -> std::io::Result<bool> {
        let Some(e) = self.entries.get(path) else {
            return Ok(false);
        };
        Ok(e.result_sha256 == current.sha256_hex()
            && e.append_sha256 == Contents::concat(append)?.sha256_hex())
    }

    pub fn record(
        &mut self,
        path: &str,
        append: &[Contents],
        result: &Contents,
    ) -> std::io::Result<()> {
        let e = Entry {
            path: path.to_string(),
            append_sha256: Contents::concat(append)?.sha256_hex(),
            result_sha256: result.sha256_hex(),
        };
        if self.entries.get(path) != Some(&e) {
            self.entries.insert(path.to_string(), e);
            self.changed = true;
        }
        Ok(())
    }

    /// The new record's bytes, when this plan changed it.
    pub fn to_write(&self) -> Option<Contents> {
        self.changed.then(|| {
            let list: Vec<&Entry> = self.entries.values().collect();
            let mut json = serde_json::to_vec_pretty(&list).unwrap_or_default();
            json.push(b'\n');
            json.into()
        })
    }
}
