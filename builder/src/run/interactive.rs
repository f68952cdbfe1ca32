//! `harmony run OUT --interactive`: boot, wait for the first-boot report with the console
//! on the terminal, then keep the VM up and hand the terminal to its serial console until
//! QEMU exits (Ctrl-A X, QEMU's own mux), the way `linuxkit run` does.

use std::io::IsTerminal;
use std::process::ExitStatus;
use std::time::Duration;

use nix::sys::termios::{self, SetArg, Termios};

use super::{wait_for_first_boot, FirstBoot, RunError, Vm, VmOptions};

/// Said on stderr when the console is handed over.
pub const HANDOVER_NOTE: &str =
    "harmony: first boot done; the console is yours (Ctrl-A X quits, Ctrl-A H lists QEMU's keys)";

/// Boot `opts` interactively; returns the first-boot report and QEMU's exit status.
/// Refused before anything starts when stdin is not a terminal.
pub fn run_interactive(
    opts: &VmOptions,
    timeout: Duration,
) -> Result<(FirstBoot, ExitStatus), RunError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(RunError::NotATerminal);
    }
    let opts = VmOptions {
        interactive: true,
        ..opts.clone()
    };
    let vm = Vm::boot(&opts)?;
    let first_boot = wait_for_first_boot(&vm, timeout)?;
    // Key presses go to the guest as typed (Ctrl-C included) until QEMU exits.
    let _restore = RawTerminal::enter(&stdin)?;
    eprint!("\r\n{HANDOVER_NOTE}\r\n");
    let status = vm.interact(stdin)?;
    Ok((first_boot, status))
}

/// The terminal in raw mode; its settings are put back when this is dropped.
struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    fn enter(stdin: &std::io::Stdin) -> Result<RawTerminal, RunError> {
        let fail = |e: nix::Error| RunError::Terminal {
            source: std::io::Error::from(e),
        };
        let saved = termios::tcgetattr(stdin).map_err(fail)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin, SetArg::TCSANOW, &raw).map_err(fail)?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // Nothing to do if the terminal is gone: there is no one to give it back to.
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}
