//! Bringing a config of an older spec up to the latest before it is merged, as upstream
//! translates 3.0 → 3.1 → … → latest. In Harmony's model every version parses into the
//! same structs, so only what changed meaning needs translating:
//!
//! - `mode`: before 3.4.0 setuid/setgid/sticky are ignored (coreos/ignition#1301), so
//!   they are cleared; Ignition 2.14's merged config shows `"mode": 2541` from a 3.3.0
//!   config as 493;
//! - `ignition.version` becomes the latest, the version the merged config is checked at.
//!
//! Fields that appeared later (httpHeaders, shouldExist, …) cannot occur in an older
//! config: validation refused them before translation.

use serde_json::Value;

use crate::version::SpecVersion;

pub const LATEST: SpecVersion = SpecVersion::V3_4;

pub fn to_latest(mut doc: Value, from: SpecVersion) -> Value {
    if from < SpecVersion::V3_4 {
        for list in ["files", "directories"] {
            let nodes = doc
                .pointer_mut(&format!("/storage/{list}"))
                .and_then(Value::as_array_mut);
            for node in nodes.into_iter().flatten() {
                if let Some(m) = node.get_mut("mode") {
                    if let Some(n) = m.as_i64() {
                        // Validation has checked the range; a negative mode cannot get here.
                        *m = Value::from(n & 0o777);
                    }
                }
            }
        }
    }
    if let Some(v) = doc.pointer_mut("/ignition/version") {
        *v = Value::from(LATEST.as_str());
    }
    doc
}
