//! Reading cloud-config values the way cloud-init (PyYAML, YAML 1.1) reads them, with
//! the key path in every error. serde_yaml_ng speaks YAML 1.2, so the 1.1 spellings
//! cloud-configs rely on are accepted here: `yes`/`no`/`on`/`off` booleans, and `0644`
//! (a string under 1.2) read as octal where a mode is expected.

use serde_yaml_ng::Value;

use super::error::{CloudConfigError, CloudProblem};

pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub fn wrong(path: &str, expected: &'static str, v: &Value) -> CloudConfigError {
    CloudConfigError::new(
        path,
        CloudProblem::WrongType {
            expected,
            found: kind(v),
        },
    )
}

/// A YAML 1.1 boolean.
pub fn bool_of(v: &Value, path: &str) -> Result<bool, CloudConfigError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "on" | "true" | "y" => Ok(true),
            "no" | "off" | "false" | "n" => Ok(false),
            _ => Err(wrong(path, "a boolean", v)),
        },
        _ => Err(wrong(path, "a boolean", v)),
    }
}

/// A string; numbers are taken as their text, as Python's str() would.
pub fn string_of(v: &Value, path: &str) -> Result<String, CloudConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(if *b { "True" } else { "False" }.to_string()),
        _ => Err(wrong(path, "a string", v)),
    }
}

/// Bytes: a string's UTF-8. libyaml resolves `!!binary` to its long tag, which
/// serde_yaml_ng drops, so a `!!binary` scalar arrives as its base64 text; the gzip
/// encodings undo that (see write_files).
pub fn bytes_of(v: &Value, path: &str) -> Result<Vec<u8>, CloudConfigError> {
    match v {
        Value::Null => Ok(Vec::new()),
        other => Ok(string_of(other, path)?.into_bytes()),
    }
}

/// A list of strings; a single string is a list of one, as cloud-init allows for most
/// list keys.
pub fn strings_of(v: &Value, path: &str) -> Result<Vec<String>, CloudConfigError> {
    match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| string_of(item, &format!("{path}[{i}]")))
            .collect(),
        Value::Null => Ok(Vec::new()),
        other => Ok(vec![string_of(other, path)?]),
    }
}

/// A list or a comma-separated string (cloud-init's `groups: a, b`).
pub fn names_of(v: &Value, path: &str) -> Result<Vec<String>, CloudConfigError> {
    match v {
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        other => strings_of(other, path),
    }
}

/// An unsigned id; a string of digits is accepted too.
pub fn id_of(v: &Value, path: &str) -> Result<u32, CloudConfigError> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.trim().bytes().all(|b| b.is_ascii_digit()) => s.trim().to_string(),
        _ => return Err(wrong(path, "a number", v)),
    };
    text.parse::<u32>()
        .map_err(|_| CloudConfigError::new(path, CloudProblem::IdOutOfRange(text)))
}

/// A file mode as cloud-init's `decode_perms`: an integer as is (PyYAML reads an
/// unquoted `0644` as octal already), a string as octal.
pub fn mode_of(v: &Value, path: &str) -> Result<u32, CloudConfigError> {
    let bad = |s: String| CloudConfigError::new(path, CloudProblem::Permissions(s));
    let mode = match v {
        Value::Number(n) => n.as_u64().ok_or_else(|| bad(n.to_string()))?,
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix("0o").unwrap_or(t);
            u64::from_str_radix(digits, 8).map_err(|_| bad(s.clone()))?
        }
        _ => return Err(wrong(path, "an octal mode", v)),
    };
    if mode > 0o7777 {
        return Err(bad(format!("{mode:o}")));
    }
    Ok(mode as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_yaml_ng::from_str(s).unwrap()
    }

    #[test]
    fn yaml_1_1_spellings() {
        assert!(bool_of(&y("yes"), "k").unwrap());
        assert!(!bool_of(&y("Off"), "k").unwrap());
        assert_eq!(
            bool_of(&y("maybe"), "a.b").unwrap_err().to_string(),
            "a.b: expected a boolean, found a string"
        );
        assert_eq!(mode_of(&y("0644"), "m").unwrap(), 0o644);
        assert_eq!(mode_of(&y("'0600'"), "m").unwrap(), 0o600);
        assert_eq!(mode_of(&y("0o755"), "m").unwrap(), 0o755);
        assert_eq!(mode_of(&y("420"), "m").unwrap(), 0o644);
        assert_eq!(
            mode_of(&y("'rw-r--r--'"), "w[0].permissions")
                .unwrap_err()
                .to_string(),
            "w[0].permissions: invalid permissions \"rw-r--r--\": expected an octal mode such as '0644'"
        );
        assert_eq!(
            bytes_of(&y("!!binary aGk="), "c").unwrap(),
            b"aGk=".to_vec()
        );
        assert_eq!(names_of(&y("'adm, wheel'"), "g").unwrap(), ["adm", "wheel"]);
        assert_eq!(id_of(&y("'1001'"), "u").unwrap(), 1001);
        assert!(id_of(&y("-1"), "u").is_err());
    }
}
