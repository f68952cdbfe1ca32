//! Plain lines for a log file or a CI console: no escape codes, no redrawing; a long
//! phase says where it is at most every few seconds.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{amount, write_stderr, Event, Kind, Sink};

/// A long phase prints its progress at most this often.
const LINE_EVERY: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct Plain {
    /// When each running phase (by label) last printed a line.
    printed: Mutex<HashMap<String, Instant>>,
}

impl Plain {
    /// The line an event prints, if any.
    fn line(&self, e: &Event<'_>) -> Option<String> {
        let label = e.label();
        let done = e.done.unwrap_or(0);
        let unit = e.unit.unwrap_or(super::Unit::Steps);
        let seconds = e.seconds.unwrap_or(0.0);
        let mut printed = self.printed.lock().unwrap_or_else(|p| p.into_inner());
        match e.kind {
            Kind::Start => {
                printed.insert(label.clone(), Instant::now());
                Some(format!("{label}: {}", amount(done, e.total, unit)))
            }
            Kind::Progress => {
                let last = printed.entry(label.clone()).or_insert_with(Instant::now);
                if last.elapsed() < LINE_EVERY {
                    return None;
                }
                *last = Instant::now();
                Some(format!("{label}: {}", amount(done, e.total, unit)))
            }
            Kind::End => {
                printed.remove(&label);
                Some(format!(
                    "{label}: {} in {seconds:.2}s",
                    amount(done, e.total, unit)
                ))
            }
            Kind::Abandoned => {
                printed.remove(&label);
                Some(format!(
                    "{label}: stopped at {} after {seconds:.2}s",
                    amount(done, e.total, unit)
                ))
            }
            Kind::Step => Some(format!("{label}: {seconds:.2}s")),
            Kind::Message | Kind::Log => e.text.map(str::to_string),
        }
    }
}

impl Sink for Plain {
    fn event(&self, event: &Event<'_>) {
        if let Some(line) = self.line(event) {
            write_stderr(&line);
        }
    }

    fn log(&self, line: &str) {
        write_stderr(line);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Unit;
    use super::*;

    fn event(kind: Kind, done: u64) -> Event<'static> {
        let mut e = Event::new(kind, "squashfs");
        e.done = Some(done);
        e.total = Some(8);
        e.unit = Some(Unit::Blocks);
        e.seconds = Some(1.5);
        e
    }

    #[test]
    fn a_phase_prints_its_start_and_end_and_progress_only_now_and_then() {
        let p = Plain::default();
        assert_eq!(
            p.line(&event(Kind::Start, 0)).as_deref(),
            Some("squashfs: 0/8 blocks")
        );
        // Right after the start: too soon for another line.
        assert_eq!(p.line(&event(Kind::Progress, 4)), None);
        assert_eq!(
            p.line(&event(Kind::End, 8)).as_deref(),
            Some("squashfs: 8/8 blocks in 1.50s")
        );
        let mut step = Event::new(Kind::Step, "recipe");
        step.seconds = Some(0.25);
        assert_eq!(p.line(&step).as_deref(), Some("recipe: 0.25s"));
    }
}
