//! Where each field of a YAML document stands: `files[2].mode` → line 14, raw text `0644`.
//!
//! serde tells us *what* is wrong; this map lets every error also say *where*, including
//! errors found after deserialisation (a relative path, a mode written in decimal).

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line of the key (or of the item, in a sequence).
    pub line: usize,
    /// The scalar value exactly as written, when the value is a scalar.
    pub raw: Option<String>,
    /// Whether that scalar was quoted (then it is a string, whatever it looks like).
    pub quoted: bool,
    /// Whether the scalar starts right after a `,`: an item of a flow sequence written with
    /// no space after the comma that ended the item before it (`[a=b,c]`).
    pub after_comma: bool,
}

#[derive(Debug, Default)]
pub struct FieldLocations {
    fields: HashMap<String, Location>,
}

impl FieldLocations {
    /// Index a YAML document. Syntax errors are left to serde, which reports them with a line.
    pub fn index(text: &str) -> Self {
        let mut walker = Walker {
            lines: text.lines().collect(),
            stack: Vec::new(),
            fields: HashMap::new(),
        };
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut walker, false);
        FieldLocations {
            fields: walker.fields,
        }
    }

    pub fn get(&self, path: &str) -> Option<&Location> {
        self.fields.get(path)
    }

    /// The line of `path`, or of its nearest located ancestor.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.fields.get(p) {
                return Some(l.line);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// A deserialisation error placed in its document: `FILE:LINE: field: problem` minus the file,
/// which the caller's own error type adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedError {
    pub line: Option<usize>,
    /// Dotted path of the field (`files[2].mode`); empty for the document itself.
    pub field: String,
    pub problem: String,
}

/// Deserialise YAML `text` strictly, so a failure names its line and full field path.
/// serde_yaml gives a line only for some errors; `locations` supplies it for the rest.
pub fn deserialize_located<T: DeserializeOwned>(
    text: &str,
    locations: &FieldLocations,
) -> Result<T, LocatedError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        let line = inner
            .location()
            .map(|l| l.line())
            .or_else(|| locations.line_of(&field));
        let problem = strip_path(&strip_location(&inner.to_string()), &field);
        LocatedError {
            line,
            field: if field == "." { String::new() } else { field },
            problem,
        }
    })
}

/// serde_yaml appends " at line L column C"; we print the line ourselves.
pub fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde_yaml also prefixes the path it knows (`files[0]: unknown field …`); we print
/// the full field path ourselves.
fn strip_path(message: &str, field: &str) -> String {
    match message.split_once(": ") {
        Some((prefix, rest)) if !prefix.contains(' ') && field.starts_with(prefix) => {
            rest.to_string()
        }
        _ => message.to_string(),
    }
}

enum Frame {
    Mapping { path: String, key: Option<String> },
    Sequence { path: String, index: usize },
}

struct Walker<'t> {
    lines: Vec<&'t str>,
    stack: Vec<Frame>,
    fields: HashMap<String, Location>,
}

impl Walker<'_> {
    /// Whether the character before `mark` (on its line) is a comma.
    fn after_comma(&self, mark: Marker) -> bool {
        let Some(line) = mark.line().checked_sub(1).and_then(|l| self.lines.get(l)) else {
            return false;
        };
        mark.col().checked_sub(1).and_then(|c| line.chars().nth(c)) == Some(',')
    }

    /// The path of the value about to be read, and whether it is a mapping key.
    fn slot(&mut self) -> (Option<String>, bool) {
        match self.stack.last_mut() {
            None => (Some(String::new()), false),
            Some(Frame::Mapping { key: None, .. }) => (None, true),
            Some(Frame::Mapping { path, key: Some(k) }) => {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                (Some(p), false)
            }
            Some(Frame::Sequence { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                (Some(p), false)
            }
        }
    }

    fn value_done(&mut self) {
        if let Some(Frame::Mapping { key, .. }) = self.stack.last_mut() {
            *key = None;
        }
    }
}

impl MarkedEventReceiver for Walker<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => match self.slot() {
                (_, true) => {
                    if let Some(Frame::Mapping { path, key }) = self.stack.last_mut() {
                        let p = if path.is_empty() {
                            text.clone()
                        } else {
                            format!("{path}.{text}")
                        };
                        self.fields.insert(
                            p,
                            Location {
                                line,
                                raw: None,
                                quoted: false,
                                after_comma: false,
                            },
                        );
                        *key = Some(text);
                    }
                }
                (Some(path), false) => {
                    let quoted = !matches!(style, TScalarStyle::Plain);
                    let after_comma = self.after_comma(mark);
                    let loc = self.fields.entry(path).or_insert(Location {
                        line,
                        raw: None,
                        quoted,
                        after_comma,
                    });
                    loc.raw = Some(text);
                    loc.quoted = quoted;
                    loc.after_comma = after_comma;
                    self.value_done();
                }
                (None, false) => {}
            },
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let (path, _) = self.slot();
                let path = path.unwrap_or_default();
                self.fields.entry(path.clone()).or_insert(Location {
                    line,
                    raw: None,
                    quoted: false,
                    after_comma: false,
                });
                let frame = if matches!(ev, Event::MappingStart(..)) {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, index: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            Event::Alias(_) => {
                let _ = self.slot();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_fields_with_raw_scalars() {
        let text =
            "name: x\nfiles:\n  - path: /a\n    mode: 0644\n  - path: b\n    mode: \"0600\"\n";
        let loc = FieldLocations::index(text);
        assert_eq!(loc.get("name").unwrap().line, 1);
        let mode = loc.get("files[0].mode").unwrap();
        assert_eq!(
            (mode.line, mode.raw.as_deref(), mode.quoted),
            (4, Some("0644"), false)
        );
        assert_eq!(loc.get("files[1].path").unwrap().line, 5);
        assert!(loc.get("files[1].mode").unwrap().quoted);
        assert_eq!(loc.line_of("files[1].contents.source"), Some(5));
    }

    #[test]
    fn knows_which_flow_items_follow_a_comma_without_a_space() {
        let text = "é: [a=b,c, d]
k:
  - e,f
";
        let loc = FieldLocations::index(text);
        let after: Vec<bool> = ["é[0]", "é[1]", "é[2]", "k[0]"]
            .iter()
            .map(|p| loc.get(p).unwrap().after_comma)
            .collect();
        assert_eq!(after, [false, true, false, false]);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)] // only deserialised, to provoke errors
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        size: u32,
    }

    #[test]
    fn errors_name_line_and_full_field_path_once() {
        let text = "items:\n  - size: 1\n  - size: 2\n    colour: red\n";
        let err = deserialize_located::<Doc>(text, &FieldLocations::index(text)).unwrap_err();
        assert_eq!(err.line, Some(4));
        assert_eq!(err.field, "items[1].colour");
        assert_eq!(err.problem, "unknown field `colour`, expected `size`");

        let text = "items:\n  - size: big\n";
        let err = deserialize_located::<Doc>(text, &FieldLocations::index(text)).unwrap_err();
        assert_eq!((err.line, err.field.as_str()), (Some(2), "items[0].size"));
        assert!(
            err.problem.starts_with("invalid type: string \"big\""),
            "{err:?}"
        );
        assert!(!err.problem.contains(" at line "), "{err:?}");
    }
}
