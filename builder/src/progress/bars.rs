//! Bars on a terminal (indicatif): one per long phase while it runs, a spinner with the
//! console's last line for a boot; a finished phase leaves one line behind.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{amount, write_stderr, Event, Kind, Sink, Unit};

pub struct Bars {
    multi: MultiProgress,
    /// Running phases by label.
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn style(unit: Unit, total: Option<u64>) -> ProgressStyle {
        let template = match (unit, total) {
            (Unit::Bytes, Some(_)) => {
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}"
            }
            (Unit::Blocks, Some(_)) => "{prefix:>12} [{bar:30}] {pos}/{len} blocks {per_sec} {eta}",
            _ => "{spinner} {prefix:>10} {elapsed} {wide_msg}",
        };
        // The templates above are fixed and valid; a bad one would only lose the styling.
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    }

    /// Print a line above the bars.
    fn println(&self, line: &str) {
        self.multi.suspend(|| write_stderr(line));
    }
}

impl Sink for Bars {
    fn event(&self, e: &Event<'_>) {
        let label = e.label();
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match e.kind {
            Kind::Start => {
                let unit = e.unit.unwrap_or(Unit::Steps);
                let bar = match (unit, e.total) {
                    (Unit::Bytes | Unit::Blocks, Some(total)) => ProgressBar::new(total),
                    _ => {
                        let spinner = ProgressBar::new_spinner();
                        spinner.enable_steady_tick(Duration::from_millis(120));
                        spinner
                    }
                };
                let bar = self.multi.add(bar);
                bar.set_style(Self::style(unit, e.total));
                bar.set_prefix(label.clone());
                bars.insert(label, bar);
            }
            Kind::Progress => {
                if let (Some(bar), Some(done)) = (bars.get(&label), e.done) {
                    bar.set_position(done);
                }
            }
            Kind::End | Kind::Abandoned => {
                if let Some(bar) = bars.remove(&label) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                let unit = e.unit.unwrap_or(Unit::Steps);
                let what = amount(e.done.unwrap_or(0), e.total, unit);
                let seconds = e.seconds.unwrap_or(0.0);
                drop(bars);
                self.println(&if e.kind == Kind::End {
                    format!("{label}: {what} in {seconds:.2}s")
                } else {
                    format!("{label}: stopped at {what} after {seconds:.2}s")
                });
            }
            Kind::Step => {
                drop(bars);
                self.println(&format!("{label}: {:.2}s", e.seconds.unwrap_or(0.0)));
            }
            Kind::Message => {
                let text = e.text.unwrap_or_default();
                match bars.get(&label) {
                    Some(bar) => bar.set_message(text.to_string()),
                    None => {
                        drop(bars);
                        self.println(text);
                    }
                }
            }
            Kind::Log => {
                drop(bars);
                self.println(e.text.unwrap_or_default());
            }
        }
    }

    fn log(&self, line: &str) {
        self.println(line);
    }
}
