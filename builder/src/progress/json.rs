//! `--progress=json`: every event as one JSON object on its own stderr line, harmony's
//! own log lines included (as `log` events), so every line a CI system reads parses.

use super::{write_stderr, Event, Kind, Sink};

/// The phase named by `log` events.
const LOG_PHASE: &str = "harmony";

pub struct Json;

impl Json {
    fn line(event: &Event<'_>) -> String {
        // An Event is strings and numbers: serialising it cannot fail.
        serde_json::to_string(event).unwrap_or_default()
    }
}

impl Sink for Json {
    fn event(&self, event: &Event<'_>) {
        write_stderr(&Self::line(event));
    }

    fn log(&self, line: &str) {
        let mut e = Event::new(Kind::Log, LOG_PHASE);
        e.text = Some(line.trim_end());
        self.event(&e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_becomes_one_json_line() {
        let mut e = Event::new(Kind::Log, LOG_PHASE);
        e.text = Some("WARN a \"quoted\"\nnote");
        let line = Json::line(&e);
        assert!(!line.contains('\n'), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back["type"], "log");
        assert_eq!(back["text"], "WARN a \"quoted\"\nnote");
    }
}
