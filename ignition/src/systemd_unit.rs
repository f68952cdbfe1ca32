//! Just enough of the systemd unit file syntax: check that contents parse, and read the
//! `[Install]` section that enabling a unit needs.

use crate::error::Problem;

/// A parsed unit file: `(section, key, value)` in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    pub entries: Vec<(String, String, String)>,
}

/// What `systemctl enable` reads from `[Install]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstallInfo {
    pub wanted_by: Vec<String>,
    pub required_by: Vec<String>,
    pub alias: Vec<String>,
    pub also: Vec<String>,
    pub default_instance: Option<String>,
}

impl InstallInfo {
    /// True when enabling would create at least one link.
    pub fn has_links(&self) -> bool {
        !(self.wanted_by.is_empty() && self.required_by.is_empty() && self.alias.is_empty())
    }
}

/// Parse unit file text. Blank lines and `#`/`;` comments are skipped, a trailing `\`
/// continues a value on the next line, every other line is `[Section]` or `Key=Value`
/// inside a section.
pub fn parse(text: &str) -> Result<UnitFile, Problem> {
    let mut unit = UnitFile::default();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let err = |reason: String| Problem::UnitSyntax {
            line: i + 1,
            reason,
        };
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| err(format!("section header {line:?} lacks ']'")))?;
            if name.is_empty() {
                return Err(err("empty section name".into()));
            }
            section = Some(name.to_string());
            continue;
        }
        let Some(sec) = &section else {
            return Err(err(format!("{line:?} comes before any [Section]")));
        };
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| err(format!("{line:?} is not Key=Value")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(err(format!("{line:?} has an empty key")));
        }
        let mut value = value.trim().to_string();
        while let Some(stripped) = value.strip_suffix('\\') {
            value = stripped.to_string();
            match lines.next() {
                Some((_, next)) => {
                    value.push(' ');
                    value.push_str(next.trim());
                }
                None => break,
            }
        }
        unit.entries.push((sec.clone(), key.to_string(), value));
    }
    Ok(unit)
}

impl UnitFile {
    /// The list a key accumulates to: values are space-separated, and an empty assignment
    /// clears what came before, as systemd does.
    pub fn list(&self, section: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (s, k, v) in &self.entries {
            if s == section && k == key {
                if v.is_empty() {
                    out.clear();
                } else {
                    out.extend(v.split_whitespace().map(str::to_string));
                }
            }
        }
        out
    }

    pub fn install_info(&self) -> InstallInfo {
        InstallInfo {
            wanted_by: self.list("Install", "WantedBy"),
            required_by: self.list("Install", "RequiredBy"),
            alias: self.list("Install", "Alias"),
            also: self.list("Install", "Also"),
            default_instance: self.list("Install", "DefaultInstance").pop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_install_section() {
        let u = parse(
            "# c\n[Unit]\nDescription=x \\\n  y\n[Service]\nExecStart=/bin/true\n\n\
             [Install]\nWantedBy=multi-user.target\nWantedBy=a.target b.target\nAlias=z.service\n",
        )
        .unwrap();
        assert_eq!(u.list("Unit", "Description"), ["x", "y"]);
        let i = u.install_info();
        assert_eq!(i.wanted_by, ["multi-user.target", "a.target", "b.target"]);
        assert_eq!(i.alias, ["z.service"]);
        assert!(i.has_links());
    }

    #[test]
    fn empty_assignment_resets() {
        let u = parse("[Install]\nWantedBy=a.target\nWantedBy=\nWantedBy=b.target\n").unwrap();
        assert_eq!(u.install_info().wanted_by, ["b.target"]);
        assert!(!parse("[Service]\nType=oneshot\n")
            .unwrap()
            .install_info()
            .has_links());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let e = parse("ExecStart=/bin/true\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid unit file, line 1: \"ExecStart=/bin/true\" comes before any [Section]"
        );
        let e = parse("[Service]\n\njunk\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid unit file, line 3: \"junk\" is not Key=Value"
        );
        assert!(parse("[Service\n").is_err());
    }
}
