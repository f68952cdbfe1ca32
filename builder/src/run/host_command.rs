//! `--exec CMD`: a command run on the host (through `sh -c`, as a shell user types it)
//! while the booted guest stays up; its exit status becomes `harmony run`'s.

use std::process::{Command, ExitStatus};

use super::RunError;

/// Run `cmd` with `sh -c`, inheriting our stdin, stdout and stderr; its exit code.
pub fn run_on_host(cmd: &str) -> Result<u8, RunError> {
    let status = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map_err(|source| RunError::Exec {
            command: cmd.to_string(),
            source,
        })?;
    Ok(exit_code(status))
}

/// The status a shell would report: the exit code, or 128 + the signal that killed it.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + (signal & 0x7f)) as u8,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_own_status_is_returned() {
        assert_eq!(run_on_host("true").unwrap(), 0);
        assert_eq!(run_on_host("exit 42").unwrap(), 42);
        // Through `sh -c`: pipes and shell syntax work.
        assert_eq!(
            run_on_host("echo probe | grep -q probe && exit 7").unwrap(),
            7
        );
    }

    #[test]
    fn a_signal_is_128_plus_its_number() {
        assert_eq!(run_on_host("kill -TERM $$").unwrap(), 128 + 15);
    }
}
