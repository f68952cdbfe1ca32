//! Loading kernel modules with `finit_module`. A module that fails to load is
//! a warning, not a stop: a missing optional driver must not brick the boot.
//! The failures are kept so that a later fatal error can name them.

use std::ffi::CStr;
use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

/// One module that did not load, and why.
#[derive(Debug)]
pub struct ModuleFailure {
    pub path: PathBuf,
    pub error: String,
}

/// What happened to the module list.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub loaded: usize,
    pub already_loaded: usize,
    pub failed: Vec<ModuleFailure>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} loaded, {} already loaded, {} failed",
            self.loaded,
            self.already_loaded,
            self.failed.len()
        )
    }
}

impl LoadReport {
    /// A one-line list of the failures, for fatal error messages; `None` when
    /// every module loaded.
    pub fn failure_summary(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let items: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("{} ({})", f.path.display(), f.error))
            .collect();
        Some(items.join(", "))
    }
}

enum Outcome {
    Loaded,
    AlreadyLoaded,
}

/// Loads every module in order, calling `warn` for each failure.
pub fn load_all(modules: &[PathBuf], mut warn: impl FnMut(&ModuleFailure)) -> LoadReport {
    let mut report = LoadReport::default();
    for path in modules {
        match load_one(path) {
            Ok(Outcome::Loaded) => report.loaded += 1,
            Ok(Outcome::AlreadyLoaded) => report.already_loaded += 1,
            Err(error) => {
                let failure = ModuleFailure {
                    path: path.clone(),
                    error,
                };
                warn(&failure);
                report.failed.push(failure);
            }
        }
    }
    report
}

fn load_one(path: &Path) -> Result<Outcome, String> {
    let file = File::open(path).map_err(|e| format!("open: {e}"))?;
    let no_params: &CStr = c"";
    match finit_module(&file, no_params, ModuleInitFlags::empty()) {
        Ok(()) => Ok(Outcome::Loaded),
        // Built into the kernel or loaded earlier (e.g. as a dependency).
        Err(Errno::EEXIST) => Ok(Outcome::AlreadyLoaded),
        Err(errno) => Err(format!("finit_module: {errno}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_module_file_is_reported_not_fatal() {
        let missing = PathBuf::from("/nonexistent/harmony-init-test/none.ko");
        let mut warned = Vec::new();
        let report = load_all(std::slice::from_ref(&missing), |f| {
            warned.push(f.path.clone())
        });
        assert_eq!(report.loaded, 0);
        assert_eq!(warned, vec![missing.clone()]);
        let summary = report.failure_summary().unwrap();
        assert!(summary.contains("/nonexistent/harmony-init-test/none.ko"));
        assert!(summary.contains("open:"));
        assert_eq!(report.to_string(), "0 loaded, 0 already loaded, 1 failed");
    }

    #[test]
    fn no_failures_no_summary() {
        let report = load_all(&[], |_| {});
        assert!(report.failure_summary().is_none());
    }
}
