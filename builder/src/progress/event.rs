//! One progress event: what `--progress=json` prints as a line (the shape of bootc's
//! progress_jsonl: a `type`, the phase it belongs to, how far it is and in what unit),
//! and what the terminal and plain renderers draw from.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A long phase began (`done` 0).
    Start,
    /// A long phase moved on (at most five a second per phase).
    Progress,
    /// A long phase finished: `done` equals `total`.
    End,
    /// A long phase stopped early (an error): `done` is where it stopped.
    Abandoned,
    /// A build step finished, with its wall time in `seconds` (`done` = `total` = 1).
    Step,
    /// A line of text that belongs to a phase: the guest's console during `boot`.
    Message,
    /// A log line of harmony's own (warnings, notes).
    Log,
}

/// What `done` and `total` count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Bytes,
    Blocks,
    Steps,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Blocks => "blocks",
            Unit::Steps => "steps",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub phase: &'a str,
    /// Tells apart phases of one name that run side by side (a pull's blob digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub done: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
    /// Seconds since the phase started (`end`, `abandoned`, `step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event of `phase` with nothing else set.
    pub fn new(kind: Kind, phase: &'a str) -> Self {
        Event {
            kind,
            phase,
            id: None,
            done: None,
            total: None,
            unit: None,
            seconds: None,
            text: None,
        }
    }

    /// The phase and its id, as one label (`pull sha256:0123abcd`).
    pub fn label(&self) -> String {
        match self.id {
            Some(id) => format!("{} {id}", self.phase),
            None => self.phase.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_event_is_one_json_object_with_type_phase_done_total_unit() {
        let mut e = Event::new(Kind::Progress, "squashfs");
        e.done = Some(3);
        e.total = Some(10);
        e.unit = Some(Unit::Blocks);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"progress","phase":"squashfs","done":3,"total":10,"unit":"blocks"}"#
        );
        let mut m = Event::new(Kind::Message, "boot");
        m.text = Some("login:");
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"message","phase":"boot","text":"login:"}"#
        );
    }
}
