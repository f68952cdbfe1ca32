//! Run one planned command on the live system: the script is written to a private file
//! and run directly when it starts with `#!` (else by /bin/sh), with stdin /dev/null, a
//! fixed environment (PATH, HOME, and the command's own variables), cwd `/`, in its own
//! process group so that a timeout kills everything it started. stdout and stderr share
//! one pipe, are echoed to the console line by line, and their tail goes into the report.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::plan::commands::PlannedCommand;
use crate::report::{CommandOutcome, CommandReport, OUTPUT_TAIL_BYTES};

/// The PATH cloud-init's commands see on Debian, minus the games.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where scripts are written (tmpfs at boot: they may hold secrets).
    pub script_dir: PathBuf,
    pub timeout: Duration,
    /// Echo output to stderr (the console) as `harmony-agent: NAME: line`.
    pub echo: bool,
}

/// A command that could not be run here at all.
pub fn skipped(cmd: &PlannedCommand, why: &str) -> CommandReport {
    CommandReport {
        error: Some(why.to_string()),
        ..report(cmd, CommandOutcome::Skipped)
    }
}

/// Run `cmd` to its end or its timeout; never fails: what went wrong is in the report.
pub fn run(cmd: &PlannedCommand, index: usize, opts: &RunOptions) -> CommandReport {
    match start(cmd, index, opts) {
        Ok((child, output)) => finish(cmd, child, output, opts.timeout),
        Err(e) => CommandReport {
            error: Some(format!("could not be started: {e}")),
            ..report(cmd, CommandOutcome::NotStarted)
        },
    }
}

fn report(cmd: &PlannedCommand, outcome: CommandOutcome) -> CommandReport {
    CommandReport {
        name: cmd.name.clone(),
        stage: cmd.stage_name().to_string(),
        outcome,
        exit_code: None,
        signal: None,
        error: None,
        output_bytes: 0,
        output_tail: String::new(),
    }
}

/// The last bytes of the output, and how many there were.
#[derive(Default)]
struct Tail {
    bytes: Vec<u8>,
    total: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > 2 * OUTPUT_TAIL_BYTES {
            self.bytes.drain(..self.bytes.len() - OUTPUT_TAIL_BYTES);
        }
    }

    fn text(&self) -> String {
        let from = self.bytes.len().saturating_sub(OUTPUT_TAIL_BYTES);
        String::from_utf8_lossy(&self.bytes[from..]).into_owned()
    }
}

struct Output {
    tail: Arc<Mutex<Tail>>,
    eof: mpsc::Receiver<()>,
}

fn start(
    cmd: &PlannedCommand,
    index: usize,
    opts: &RunOptions,
) -> std::io::Result<(Child, Output)> {
    let script = write_script(cmd, index, &opts.script_dir)?;
    // Close-on-exec: no other child (a concurrent spawn) may inherit and hold the pipe.
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let mut command = if cmd.script.starts_with(b"#!") {
        Command::new(&script)
    } else {
        let mut c = Command::new("/bin/sh");
        c.arg(&script);
        c
    };
    command
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .envs(cmd.env.iter().map(|(k, v)| (k, v)))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .process_group(0);
    let child = spawn(&mut command)?;
    // The Command holds the pipe's write ends: drop it so the reader sees EOF when the
    // command (and whatever it left running with the pipe) is done.
    drop(command);

    let tail = Arc::new(Mutex::new(Tail::default()));
    let (done, eof) = mpsc::channel();
    let shared = Arc::clone(&tail);
    let prefix = opts.echo.then(|| format!("harmony-agent: {}: ", cmd.name));
    std::thread::spawn(move || {
        let mut pipe = std::fs::File::from(reader);
        let mut line = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut buf) {
            shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(&buf[..n]);
            if let Some(prefix) = &prefix {
                echo_lines(prefix, &mut line, &buf[..n], false);
            }
        }
        if let Some(prefix) = &prefix {
            echo_lines(prefix, &mut line, b"", true);
        }
        let _receiver_may_be_gone = done.send(());
    });
    Ok((child, Output { tail, eof }))
}

/// Scripts go to `DIR/NN-NAME`, 0700, written before the command starts.
fn write_script(cmd: &PlannedCommand, index: usize, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let safe: String = cmd
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{index:02}-{safe}"));
    let _stale = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(&path)?;
    f.write_all(&cmd.script)?;
    f.sync_all()?;
    Ok(path)
}

/// Another thread forking while the script was open for writing makes exec fail with
/// ETXTBSY until that child has exec'd: a moment, so try again.
fn spawn(command: &mut Command) -> std::io::Result<Child> {
    let mut tries = 0;
    loop {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

fn echo_lines(prefix: &str, pending: &mut Vec<u8>, chunk: &[u8], flush: bool) {
    pending.extend_from_slice(chunk);
    let mut err = std::io::stderr().lock();
    while let Some(i) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=i).collect();
        let _console_gone = err.write_all(&[prefix.as_bytes(), &line].concat());
    }
    if flush && !pending.is_empty() {
        let _console_gone = err.write_all(&[prefix.as_bytes(), pending, b"\n"].concat());
        pending.clear();
    }
}

fn finish(
    cmd: &PlannedCommand,
    mut child: Child,
    output: Output,
    timeout: Duration,
) -> CommandReport {
    let deadline = Instant::now() + timeout;
    let mut r = report(cmd, CommandOutcome::Exited);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                // The group is the command's own (process_group(0)): its pid is the pgid.
                let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
                let _already_gone = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
                let _reaped = child.wait();
                r.outcome = CommandOutcome::TimedOut;
                r.error = Some(format!(
                    "timed out after {} s and was killed",
                    timeout.as_secs_f64()
                ));
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                r.outcome = CommandOutcome::NotStarted;
                r.error = Some(format!("waiting for it failed: {e}"));
                break None;
            }
        }
    };
    if let Some(status) = status {
        r.exit_code = status.code();
        if let Some(sig) = status.signal() {
            r.outcome = CommandOutcome::Signalled;
            r.signal = Some(sig);
        }
    }
    // Something it left in the background may hold the pipe open: do not wait for it.
    let _still_open = output.eof.recv_timeout(Duration::from_secs(2));
    let tail = output.tail.lock().unwrap_or_else(|p| p.into_inner());
    r.output_bytes = tail.total;
    r.output_tail = tail.text();
    r
}

#[cfg(test)]
mod tests;
