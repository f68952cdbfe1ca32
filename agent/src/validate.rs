//! `harmony-agent validate [--strict] CONFIG`: the offline linter. Parsing follows
//! Ignition 2.14 (and cloud-init) on acceptance, so first boot accepts what they accept and
//! says what it ignored as warnings in the report; this command shows those warnings
//! before a node boots, and with `--strict` fails on them, as `butane --strict` does.
//! Nothing is fetched: remote sources and references are checked for form only, as
//! `ignition-validate` checks them. A Butane config is checked through its translation.

use std::path::Path;

use anyhow::Context;
use ignition::cloud_config::MetaData;
use ignition::ConfigWarning;

use crate::config_format::{ConfigFormat, ConfigFormatError};

/// Exit codes, as the README lists them.
pub const VALID: i32 = 0;
/// The config is invalid, or (with `--strict`) valid with warnings.
pub const INVALID: i32 = 1;
/// The config could not be read (clap uses 2 for a bad command line too).
pub const UNREADABLE: i32 = 2;

/// What the linter found: the warnings of a valid config, or the error of an invalid one.
pub fn lint(bytes: &[u8]) -> Result<Vec<ConfigWarning>, ConfigFormatError> {
    match ConfigFormat::of(bytes) {
        ConfigFormat::CloudConfig => {
            ignition::cloud_config::node_config(bytes, &MetaData::default())
                .map(|c| c.warnings)
                .map_err(ConfigFormatError::CloudConfig)
        }
        ConfigFormat::Ignition => ignition::parse(bytes)
            .map(|c| c.warnings)
            .map_err(ConfigFormatError::Ignition),
        ConfigFormat::Butane => {
            let json = crate::config_format::butane_to_ignition(
                bytes,
                &ignition::butane::TranslateOptions::default(),
            )?;
            ignition::parse(&json)
                .map(|c| c.warnings)
                .map_err(ConfigFormatError::Ignition)
        }
    }
}

/// Print one line per finding (`CONFIG: warning: PATH: …` / `CONFIG: error: …`) and
/// return the exit code.
pub fn run(config: &Path, strict: bool) -> i32 {
    let bytes = match std::fs::read(config).with_context(|| format!("reading {}", config.display()))
    {
        Ok(b) => b,
        Err(e) => {
            eprintln!("harmony-agent: {e:#}");
            return UNREADABLE;
        }
    };
    let name = config.display();
    match lint(&bytes) {
        Ok(warnings) => {
            for w in &warnings {
                println!("{name}: warning: {w}");
            }
            if strict && !warnings.is_empty() {
                println!(
                    "{name}: {} warning(s), and --strict fails on warnings",
                    warnings.len()
                );
                INVALID
            } else {
                VALID
            }
        }
        Err(e) => {
            println!("{name}: error: {e}");
            INVALID
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn warnings_pass_unless_strict_errors_always_fail() {
        let dir = tempfile::tempdir().unwrap();
        let clean = write(
            dir.path(),
            "clean.ign",
            r#"{"ignition":{"version":"3.4.0"}}"#,
        );
        let typo = write(
            dir.path(),
            "typo.ign",
            r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/etc/x","overwite":true}]}}"#,
        );
        let bad = write(
            dir.path(),
            "bad.ign",
            r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"etc/x"}]}}"#,
        );
        assert_eq!(run(&clean, true), VALID);
        assert_eq!(run(&typo, false), VALID);
        assert_eq!(run(&typo, true), INVALID);
        assert_eq!(run(&bad, false), INVALID);
        assert_eq!(run(&dir.path().join("missing.ign"), false), UNREADABLE);
        let w = lint(&std::fs::read(&typo).unwrap()).unwrap();
        assert_eq!(
            w[0].to_string(),
            "storage.files[0].overwite: Unused key overwite"
        );
    }

    #[test]
    fn butane_is_validated_through_its_translation() {
        let dir = tempfile::tempdir().unwrap();
        let bu = write(
            dir.path(),
            "node.bu",
            "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/x\n      overwite: true\n",
        );
        assert_eq!(run(&bu, false), VALID);
        assert_eq!(run(&bu, true), INVALID);
        assert_eq!(crate::translate::run(&bu, None, false, false), VALID);
        assert_eq!(crate::translate::run(&bu, None, true, false), INVALID);
        let local = write(
            dir.path(),
            "local.bu",
            "variant: fcos\nversion: 1.5.0\nstorage:\n  files:\n    - path: /etc/x\n      contents:\n        local: x\n",
        );
        assert_eq!(crate::translate::run(&local, None, false, false), INVALID);
        write(dir.path(), "x", "from the files dir\n");
        assert_eq!(
            crate::translate::run(&local, Some(dir.path().into()), false, false),
            VALID
        );
    }

    #[test]
    fn cloud_config_warnings_count_too() {
        let dir = tempfile::tempdir().unwrap();
        let cc = write(dir.path(), "user-data", "#cloud-config\npackages: [vim]\n");
        assert_eq!(run(&cc, false), VALID);
        assert_eq!(run(&cc, true), INVALID);
    }
}
