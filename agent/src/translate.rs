//! `harmony-agent translate [--files-dir DIR] [--strict] [--pretty] FILE`: a Butane config
//! ([`ignition::butane`]) to the Ignition JSON Butane would write, on stdout; warnings and
//! errors on stderr; exit codes as `validate` ([`crate::validate`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::validate::{INVALID, UNREADABLE, VALID};

/// `harmony-agent translate`: the Ignition JSON on stdout, warnings and errors on stderr.
pub fn run(file: &Path, files_dir: Option<PathBuf>, strict: bool, pretty: bool) -> i32 {
    let bytes = match std::fs::read(file).with_context(|| format!("reading {}", file.display())) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("harmony-agent: {e:#}");
            return UNREADABLE;
        }
    };
    let name = file.display();
    let opts = ignition::butane::TranslateOptions { files_dir };
    let doc = match ignition::butane::translate(&bytes, &opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            return INVALID;
        }
    };
    // The result is read as a node would read it: its errors and warnings count.
    let json = doc.to_string();
    let warnings = match ignition::parse(json.as_bytes()) {
        Ok(c) => c.warnings,
        Err(e) => {
            eprintln!("{name}: error: translated config: {e}");
            return INVALID;
        }
    };
    for w in &warnings {
        eprintln!("{name}: warning: {w}");
    }
    if strict && !warnings.is_empty() {
        eprintln!(
            "{name}: {} warning(s), and --strict fails on warnings",
            warnings.len()
        );
        return INVALID;
    }
    let text = if pretty {
        serde_json::to_string_pretty(&doc).unwrap_or(json)
    } else {
        json
    };
    println!("{text}");
    VALID
}
