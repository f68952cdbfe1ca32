//! Console output for PID 1: progress lines, warnings, and making sure
//! stdout/stderr reach `/dev/console` at all.

use std::fmt::Display;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;

use harmony_contract::console::INIT_ERROR_MARKER;
use nix::fcntl::{fcntl, FcntlArg};
use nix::unistd::dup2;

const PREFIX: &str = "harmony-init: ";

/// A progress line on the console.
pub fn say(message: impl Display) {
    line(format_args!("{PREFIX}{message}"));
}

/// A non-fatal problem on the console.
pub fn warn(message: impl Display) {
    line(format_args!("{PREFIX}warning: {message}"));
}

/// The one line a fatal error prints; tests and humans grep for it.
pub fn fatal(message: impl Display) {
    line(format_args!("{INIT_ERROR_MARKER}: {message}"));
}

fn line(text: std::fmt::Arguments<'_>) {
    // Never panic on a console write (std's println! would): PID 1 must not die.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// The kernel opens `/dev/console` as fds 0-2 for init only if the initramfs
/// has that node. When it did not, reopen the console from devtmpfs (call
/// this once `/dev` is mounted) so the progress lines and the exec'd init's
/// output are seen.
pub fn attach_stdio_to_console() {
    if fcntl(1, FcntlArg::F_GETFD).is_ok() {
        return;
    }
    let Ok(console) = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    else {
        return;
    };
    for fd in 0..=2 {
        // Nothing to report to if this fails: there is no console.
        let _ = dup2(console.as_raw_fd(), fd);
    }
}
