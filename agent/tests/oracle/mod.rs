//! Shared by the differential test and the apply benchmark: a realistic scratch root,
//! the real Ignition 2.14 run offline on it, and trees read back for comparison.

pub mod real_ignition;
pub mod scratch_root;
pub mod tree;

use std::path::Path;
use std::process::Command;

/// The agent binary cargo built for this test or bench.
pub const AGENT: &str = env!("CARGO_BIN_EXE_harmony-agent");

/// `harmony-agent apply --root ROOT CONFIG`: Ok, or Err with its stderr.
pub fn agent_apply(root: &Path, config: &Path) -> Result<(), String> {
    let out = Command::new(AGENT)
        .arg("apply")
        .arg("--root")
        .arg(root)
        .arg(config)
        .output()
        .unwrap_or_else(|e| panic!("running {AGENT}: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Both oracles write as root (chown, useradd --root); say so rather than fail obscurely.
pub fn require_root(what: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{what} needs root: real Ignition chowns files and runs useradd --root"
    );
}
