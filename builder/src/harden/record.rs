//! What the build applied, recorded in the image: `harmony verify` reads it to tell a
//! rule the recipe excluded (reported, not failed) from one that is simply missing.

use serde::{Deserialize, Serialize};

use super::put_file;
use crate::tree::{Tree, TreeError};

pub const RECORD_PATH: &str = "usr/lib/harmony/hardening.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub profile: String,
    pub applied: Vec<String>,
    pub excluded: Vec<String>,
}

pub fn write(
    tree: &mut Tree,
    profile: &str,
    applied: &[&str],
    excluded: &[String],
) -> Result<(), TreeError> {
    let record = Record {
        profile: profile.to_string(),
        applied: applied.iter().map(|s| s.to_string()).collect(),
        excluded: excluded.to_vec(),
    };
    let text = serde_json::to_string_pretty(&record).expect("a record serialises") + "\n";
    put_file(tree, RECORD_PATH, &text, 0o644)
}

pub fn read(tree: &Tree) -> Option<Record> {
    serde_json::from_str(tree.read_text(RECORD_PATH)?).ok()
}
