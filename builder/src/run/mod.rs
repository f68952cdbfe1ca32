//! `harmony run`: boot built artifacts in QEMU and watch the console.

pub mod accel;
pub mod console;
pub mod forward;
pub mod host_command;
pub mod interactive;
pub mod medium;
pub mod secure_boot;
pub mod vm;

use std::time::{Duration, Instant};

pub use forward::Forward;
pub use vm::{Vm, VmOptions};

use crate::manifest::ManifestError;
use crate::progress::{self, Unit};

/// The console markers harmony-agent and harmony-init print (the contract crate's).
pub use harmony_contract::console::{FIRSTBOOT_MARKER, INIT_ERROR_MARKER};

fn lines(tail: &[String]) -> String {
    tail.iter().map(|l| format!("\n  | {l}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("HARMONY_ACCEL={value}: expected `tcg` or `kvm`")]
    BadAccel { value: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    BadPath { path: String, reason: String },
    #[error("cannot start qemu-system-x86_64: {source}")]
    Spawn { source: std::io::Error },
    #[error("cannot write to the guest console: {source}")]
    Send { source: std::io::Error },
    #[error("waiting for QEMU: {source}")]
    Wait { source: std::io::Error },
    #[error(
        "no expected console line after {waited:?}; console tail:{}",
        lines(tail)
    )]
    Timeout { waited: Duration, tail: Vec<String> },
    #[error(
        "QEMU exited; its messages:{}\nconsole tail:{}",
        lines(qemu),
        lines(tail)
    )]
    Exited {
        qemu: Vec<String>,
        tail: Vec<String>,
    },
    #[error("harmony-init failed: {line}; console tail:{}", lines(tail))]
    InitFailed { line: String, tail: Vec<String> },
    #[error("first boot failed: {error}; console tail:{}", lines(tail))]
    FirstBootFailed { error: String, tail: Vec<String> },
    #[error("first-boot report is not JSON with a known status: {line}: {reason}")]
    BadReport { line: String, reason: String },
    #[error(
        "--interactive needs a terminal on stdin (the guest's serial console is handed to \
         it after first boot), and stdin is not one"
    )]
    NotATerminal,
    #[error("cannot set the terminal up for the guest's console: {source}")]
    Terminal { source: std::io::Error },
    #[error("--exec {command:?}: cannot run it with sh -c: {source}")]
    Exec {
        command: String,
        source: std::io::Error,
    },
}

/// What the agent reported on the console.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstBoot {
    /// The report (`firstboot.json`'s content).
    pub json: serde_json::Value,
    /// The console line it came from.
    pub line: String,
}

/// Boot, wait for the first-boot report, shut the VM down (flushing the state disk).
pub fn run(opts: &VmOptions, timeout: Duration) -> Result<FirstBoot, RunError> {
    run_then(opts, timeout, |_| Ok(())).map(|(first_boot, ())| first_boot)
}

/// Boot, wait for the first-boot report, call `then` with it while the VM is still up,
/// then shut the VM down: `harmony run --exec` probes the node from the host here.
pub fn run_then<T>(
    opts: &VmOptions,
    timeout: Duration,
    then: impl FnOnce(&FirstBoot) -> Result<T, RunError>,
) -> Result<(FirstBoot, T), RunError> {
    // One step: the report. Until then the console's lines are the phase's messages.
    let booting = progress::phase(progress::BOOT, None, Some(1), Unit::Steps);
    let vm = Vm::boot(opts)?;
    let result = wait_for_first_boot(&vm, timeout).and_then(|first_boot| {
        booting.inc(1);
        booting.finish();
        then(&first_boot).map(|t| (first_boot, t))
    });
    vm.shutdown()?;
    result
}

/// Wait for `HARMONY-FIRSTBOOT {json}` (success or already done) on a booted VM;
/// `HARMONY-INIT-ERROR`, a failed report, QEMU exiting or the timeout are errors.
pub fn wait_for_first_boot(vm: &Vm, timeout: Duration) -> Result<FirstBoot, RunError> {
    let deadline = Instant::now() + timeout;
    let line = vm.wait_for_line(
        |l| l.contains(FIRSTBOOT_MARKER) || l.contains(INIT_ERROR_MARKER),
        deadline.saturating_duration_since(Instant::now()),
    )?;
    if line.contains(INIT_ERROR_MARKER) {
        return Err(RunError::InitFailed {
            line,
            tail: vm.tail(),
        });
    }
    parse_report(&line, || vm.tail())
}

fn parse_report(line: &str, tail: impl FnOnce() -> Vec<String>) -> Result<FirstBoot, RunError> {
    let bad = |reason: String| RunError::BadReport {
        line: line.to_string(),
        reason,
    };
    let start = line
        .find(FIRSTBOOT_MARKER)
        .ok_or_else(|| bad(format!("no `{FIRSTBOOT_MARKER}`")))?;
    let json: serde_json::Value = serde_json::from_str(&line[start + FIRSTBOOT_MARKER.len()..])
        .map_err(|e| bad(e.to_string()))?;
    match json.get("status").and_then(|s| s.as_str()) {
        Some("success" | "already-done") => Ok(FirstBoot {
            json,
            line: line.to_string(),
        }),
        Some("failed") => {
            let error = match json.get("error") {
                Some(serde_json::Value::String(e)) => e.clone(),
                Some(other) => other.to_string(),
                None => "(no error given)".into(),
            };
            Err(RunError::FirstBootFailed {
                error,
                tail: tail(),
            })
        }
        other => Err(bad(format!("status {other:?}"))),
    }
}

#[cfg(test)]
mod qemu_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_already_done_are_ok() {
        let fb = parse_report(
            r#"HARMONY-FIRSTBOOT {"status":"success","written":[]}"#,
            Vec::new,
        )
        .unwrap();
        assert_eq!(fb.json["written"], serde_json::json!([]));
        assert!(parse_report(
            r#"[  3.2] HARMONY-FIRSTBOOT {"status":"already-done"}"#,
            Vec::new
        )
        .is_ok());
    }

    #[test]
    fn failed_carries_the_error_and_tail() {
        let err = parse_report(
            r#"HARMONY-FIRSTBOOT {"status":"failed","error":"bad version"}"#,
            || vec!["last".into()],
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("bad version") && text.contains("| last"),
            "{text}"
        );
    }

    #[test]
    fn garbage_is_a_bad_report() {
        assert!(matches!(
            parse_report("HARMONY-FIRSTBOOT {oops", Vec::new),
            Err(RunError::BadReport { .. })
        ));
        assert!(matches!(
            parse_report(r#"HARMONY-FIRSTBOOT {"status":"maybe"}"#, Vec::new),
            Err(RunError::BadReport { .. })
        ));
    }
}
