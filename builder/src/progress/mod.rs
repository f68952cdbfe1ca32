//! What a user sees while a build or a boot runs (`--progress=auto|plain|json`): a bar per
//! long phase on a terminal (indicatif), plain lines otherwise, or one JSON object per
//! event on stderr for CI systems (bootc's progress_jsonl shape; [`event`]).
//!
//! The library reports through [`phase`], [`step_done`] and [`console_line`]; nothing is
//! drawn until the CLI has called [`install`] (a library caller, such as a test, gets the
//! old behaviour: step times as tracing lines, console lines on stderr).

mod bars;
mod counting_reader;
pub mod event;
mod json;
mod log_writer;
mod plain;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use counting_reader::CountingReader;
pub use event::{Event, Kind, Unit};
pub use log_writer::LogWriter;

/// `--progress`: how progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// Bars when stderr is a terminal, plain lines when it is not.
    #[default]
    Auto,
    /// Plain lines, no escape codes, whatever stderr is.
    Plain,
    /// One JSON object per line on stderr.
    Json,
}

/// What [`install`] chose for [`Mode::Auto`] and the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rendering {
    Bars,
    Plain,
    Json,
}

impl Mode {
    pub fn rendering(self, stderr_is_terminal: bool) -> Rendering {
        match self {
            Mode::Auto if stderr_is_terminal => Rendering::Bars,
            Mode::Auto | Mode::Plain => Rendering::Plain,
            Mode::Json => Rendering::Json,
        }
    }
}

/// Where events go: one renderer per process.
trait Sink: Send + Sync {
    fn event(&self, event: &Event<'_>);
    /// A formatted log line of harmony's own (ends with a newline).
    fn log(&self, line: &str);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Choose the renderer for this process (the CLI does, once, before anything runs).
/// Returns what was chosen; a second call changes nothing and returns the first choice.
pub fn install(mode: Mode) -> Rendering {
    static CHOSEN: OnceLock<Rendering> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let rendering = mode.rendering(std::io::stderr().is_terminal());
        let sink: Box<dyn Sink> = match rendering {
            Rendering::Bars => Box::new(bars::Bars::new()),
            Rendering::Plain => Box::new(plain::Plain::default()),
            Rendering::Json => Box::new(json::Json),
        };
        // CHOSEN's initialiser runs once: SINK is empty here.
        let _ = SINK.set(sink);
        rendering
    })
}

fn emit(event: &Event<'_>) {
    if let Some(sink) = SINK.get() {
        sink.event(event);
    }
}

/// One line on stderr, written whole (renderers share stderr with log lines).
fn write_stderr(line: &str) {
    let mut err = std::io::stderr().lock();
    // A closed stderr loses the line; there is nowhere else to say so.
    let _ = err.write_all(line.as_bytes());
    if !line.ends_with('\n') {
        let _ = err.write_all(b"\n");
    }
}

/// Progress events of one phase are sent at most this often (bootc: five a second).
const REPORT_EVERY: Duration = Duration::from_millis(200);

struct State {
    phase: &'static str,
    id: Option<String>,
    unit: Unit,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    last_report: Mutex<Instant>,
    finished: AtomicBool,
}

impl State {
    fn event(&self, kind: Kind) -> Event<'_> {
        let done = self.done.load(Ordering::Relaxed);
        let mut e = Event::new(kind, self.phase);
        e.id = self.id.as_deref();
        e.done = Some(done);
        e.total = match kind {
            // A phase that did not know its size has done all of it at its end.
            Kind::End => Some(self.total.unwrap_or(done)),
            _ => self.total,
        };
        e.unit = Some(self.unit);
        if matches!(kind, Kind::End | Kind::Abandoned) {
            e.seconds = Some(self.started.elapsed().as_secs_f64());
        }
        e
    }
}

impl Drop for State {
    fn drop(&mut self) {
        if !self.finished.load(Ordering::Relaxed) {
            emit(&self.event(Kind::Abandoned));
        }
    }
}

/// A long phase in progress; clones share it (one per worker thread). The last clone
/// dropped without [`Phase::finish`] reports the phase as abandoned.
#[derive(Clone)]
pub struct Phase(Arc<State>);

/// Start a long phase: `total` units to do (`None`: not known until it ends).
pub fn phase(name: &'static str, id: Option<String>, total: Option<u64>, unit: Unit) -> Phase {
    let now = Instant::now();
    let state = State {
        phase: name,
        id,
        unit,
        total,
        done: AtomicU64::new(0),
        started: now,
        last_report: Mutex::new(now),
        finished: AtomicBool::new(false),
    };
    emit(&state.event(Kind::Start));
    Phase(Arc::new(state))
}

impl Phase {
    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
        if SINK.get().is_none() {
            return;
        }
        // Another thread reporting right now covers this update too.
        let Ok(mut last) = self.0.last_report.try_lock() else {
            return;
        };
        let now = Instant::now();
        if now.duration_since(*last) >= REPORT_EVERY {
            *last = now;
            drop(last);
            emit(&self.0.event(Kind::Progress));
        }
    }

    /// Units done so far.
    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    /// The phase is complete.
    pub fn finish(self) {
        self.0.finished.store(true, Ordering::Relaxed);
        emit(&self.0.event(Kind::End));
    }
}

/// A build step finished after `elapsed` (`harmony build`'s phase times).
pub fn step_done(name: &str, elapsed: Duration) {
    if SINK.get().is_none() {
        tracing::info!("{name}: {:.2}s", elapsed.as_secs_f64());
        return;
    }
    let mut e = Event::new(Kind::Step, name);
    e.done = Some(1);
    e.total = Some(1);
    e.unit = Some(Unit::Steps);
    e.seconds = Some(elapsed.as_secs_f64());
    emit(&e);
}

/// The phase a guest's console lines belong to.
pub const BOOT: &str = "boot";

/// A line of the guest's console while `harmony run` shows it.
pub fn console_line(line: &str) {
    if SINK.get().is_none() {
        write_stderr(line);
        return;
    }
    let mut e = Event::new(Kind::Message, BOOT);
    e.text = Some(line);
    emit(&e);
}

/// `done/total unit` as a person reads it (bytes in KiB/MiB/GiB).
fn amount(done: u64, total: Option<u64>, unit: Unit) -> String {
    match (unit, total) {
        (Unit::Bytes, Some(t)) => format!(
            "{}/{}",
            indicatif::HumanBytes(done),
            indicatif::HumanBytes(t)
        ),
        (Unit::Bytes, None) => indicatif::HumanBytes(done).to_string(),
        (_, Some(t)) => format!("{done}/{t} {}", unit.name()),
        (_, None) => format!("{done} {}", unit.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_draws_bars_only_on_a_terminal() {
        assert_eq!(Mode::Auto.rendering(true), Rendering::Bars);
        assert_eq!(Mode::Auto.rendering(false), Rendering::Plain);
        assert_eq!(Mode::Plain.rendering(true), Rendering::Plain);
        assert_eq!(Mode::Json.rendering(true), Rendering::Json);
    }

    #[test]
    fn an_end_without_a_known_total_has_done_it_all() {
        let state = State {
            phase: "boot",
            id: None,
            unit: Unit::Steps,
            total: None,
            done: AtomicU64::new(3),
            started: Instant::now(),
            last_report: Mutex::new(Instant::now()),
            finished: AtomicBool::new(true),
        };
        let e = state.event(Kind::End);
        assert_eq!((e.done, e.total), (Some(3), Some(3)));
        assert!(e.seconds.is_some());
        assert_eq!(state.event(Kind::Progress).total, None);
    }

    #[test]
    fn amounts_read_as_a_person_would() {
        assert_eq!(amount(3, Some(10), Unit::Blocks), "3/10 blocks");
        assert_eq!(amount(2048, Some(4096), Unit::Bytes), "2.00 KiB/4.00 KiB");
        assert_eq!(amount(1, None, Unit::Steps), "1 steps");
    }
}
