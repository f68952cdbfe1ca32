//! The Harmony cache: downloaded packages, base images, and step layers by input digest.

use std::path::PathBuf;

/// `$HARMONY_CACHE` is handled by the CLI; this is the fallback:
/// `$XDG_CACHE_HOME/harmony`, else `~/.cache/harmony`, else `./.harmony-cache`.
pub fn default_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("harmony");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home).join(".cache").join("harmony");
    }
    PathBuf::from(".harmony-cache")
}
