//! A test whose prerequisite (a host tool, root, a kernel feature) is missing must not go
//! green by returning early: in CI (`HARMONY_TEST_STRICT=1`, set by `.ci/run`) it fails,
//! naming what is missing; on a developer's machine it prints `SKIPPED (why)` and the test
//! returns. Every test in the workspace goes through [`skip`], so the rule lives in one place.
//!
//! ```no_run
//! if !harmony_test_support::tool("nft") {
//!     harmony_test_support::skip("tool nft not installed: Debian package nftables");
//!     return;
//! }
//! ```

pub mod bench;
pub mod command;
pub mod keepalived;

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The environment variable that turns every skip into a failure.
pub const STRICT_VAR: &str = "HARMONY_TEST_STRICT";

/// True when `HARMONY_TEST_STRICT` is set to anything but empty or `0`.
pub fn strict() -> bool {
    std::env::var_os(STRICT_VAR).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The test cannot run here, because of `why`. Under [`strict`] this panics (the test
/// fails); otherwise it prints `SKIPPED (why)` to stderr and the caller returns.
#[track_caller]
pub fn skip(why: impl Display) {
    if strict() {
        panic!(
            "{STRICT_VAR}=1 and this test cannot run: {why} \
             (scripts/setup-host.sh installs every tool the tests use; CI runs as root)"
        );
    }
    eprintln!("SKIPPED ({why})");
}

/// The path of `name` on `PATH`, or in the sbin directories a non-root `PATH` may lack.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// True when [`find_tool`] finds `name`.
pub fn tool(name: &str) -> bool {
    find_tool(name).is_some()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tool_every_machine_has() {
        assert!(tool("sh"));
        assert!(!tool("harmony-no-such-tool"));
    }

    // One test owns the variable, so no other test in this binary races on it.
    #[test]
    fn strict_turns_a_skip_into_a_failure() {
        std::env::remove_var(STRICT_VAR);
        assert!(!strict());
        skip("prints only");
        for off in ["", "0"] {
            std::env::set_var(STRICT_VAR, off);
            assert!(!strict(), "{off:?}");
        }
        std::env::set_var(STRICT_VAR, "1");
        let failed = std::panic::catch_unwind(|| skip("tool x not installed"));
        std::env::remove_var(STRICT_VAR);
        let message = failed.expect_err("a skip under strict must fail the test");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("tool x not installed"), "{text}");
    }
}
