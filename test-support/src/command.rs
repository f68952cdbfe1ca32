//! Running a program a test relies on and requiring that it succeeded.

use std::process::{Command, Output};

/// Run `cmd` to its end and require exit status 0; a failure shows what it wrote to
/// stderr.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
