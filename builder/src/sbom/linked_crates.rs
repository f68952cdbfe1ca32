//! The Rust crates linked into harmony-agent and harmony-init, as build.rs recorded them
//! from `cargo metadata` and Cargo.lock when this builder was compiled. The binaries a
//! build bakes in come from the same workspace (scripts/build.sh); a binary given with
//! `--agent-bin`/`--init-bin` from another tree is still listed with these crates.

use serde::Deserialize;

const LINKED_CRATES: &str = include_str!(concat!(env!("OUT_DIR"), "/linked_crates.json"));

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub struct LinkedCrate {
    pub name: String,
    pub version: String,
    /// From crates.io (a `pkg:cargo` purl), not a workspace path.
    pub registry: bool,
    /// SHA-256 of the `.crate` file, from Cargo.lock (registry crates only).
    pub sha256: Option<String>,
}

/// The crates linked into `binary` (the binary's own crate included), sorted.
pub fn linked_crates(binary: &str) -> Result<Vec<LinkedCrate>, serde_json::Error> {
    let mut all: std::collections::BTreeMap<String, Vec<LinkedCrate>> =
        serde_json::from_str(LINKED_CRATES)?;
    Ok(all.remove(binary).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_links_serde_from_crates_io_with_its_lock_checksum_and_no_windows_crate() {
        let crates = linked_crates("harmony-agent").unwrap();
        let serde = crates.iter().find(|c| c.name == "serde").unwrap();
        assert!(serde.registry);
        assert_eq!(serde.sha256.as_deref().map(str::len), Some(64));
        let ignition = crates
            .iter()
            .find(|c| c.name == "harmony-ignition")
            .unwrap();
        assert!(!ignition.registry && ignition.sha256.is_none());
        // Target-filtered and normal dependencies only.
        assert!(
            !crates.iter().any(|c| c.name.starts_with("windows")),
            "{crates:?}"
        );
        assert!(!crates.iter().any(|c| c.name == "harmony-test-support"));
        let init = linked_crates("harmony-init").unwrap();
        assert!(init.iter().any(|c| c.name == "harmony-init"));
        assert!(init.len() < crates.len());
    }
}
