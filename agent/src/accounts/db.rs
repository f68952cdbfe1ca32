//! The target root's account files (/etc/passwd, /etc/group, /etc/shadow, /etc/gshadow)
//! as colon-separated records, edited in memory and rendered back byte for byte where
//! nothing changed: comments, blank lines and lines we do not understand (NIS `+`
//! entries) are kept verbatim and in place.

use crate::target_root::TargetRoot;

use super::AccountError;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Record(Vec<String>),
    Verbatim(String),
}

/// One account file. `present` is false when the root has none; a table that was absent
/// and stays empty is not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub path: &'static str,
    pub present: bool,
    lines: Vec<Line>,
}

impl Table {
    pub fn load(root: &TargetRoot, path: &'static str) -> Result<Table, AccountError> {
        let bytes = root.read(path).map_err(|err| AccountError::Read {
            file: path.to_string(),
            err,
        })?;
        let present = bytes.is_some();
        let text = String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned();
        let lines = text
            .lines()
            .map(|l| {
                if l.trim().is_empty() || l.starts_with('#') || l.starts_with(['+', '-']) {
                    Line::Verbatim(l.to_string())
                } else {
                    Line::Record(l.split(':').map(str::to_string).collect())
                }
            })
            .collect();
        Ok(Table {
            path,
            present,
            lines,
        })
    }

    pub fn records(&self) -> impl Iterator<Item = &Vec<String>> {
        self.lines.iter().filter_map(|l| match l {
            Line::Record(r) => Some(r),
            Line::Verbatim(_) => None,
        })
    }

    pub fn records_mut(&mut self) -> impl Iterator<Item = &mut Vec<String>> {
        self.lines.iter_mut().filter_map(|l| match l {
            Line::Record(r) => Some(r),
            Line::Verbatim(_) => None,
        })
    }

    /// The first record with this name (field 0), as the C library's lookups find it.
    pub fn get(&self, name: &str) -> Option<&Vec<String>> {
        self.records().find(|r| r[0] == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Vec<String>> {
        self.records_mut().find(|r| r[0] == name)
    }

    /// Field `i` of a record, padding short records as the shadow tools do.
    pub fn set(&mut self, name: &str, i: usize, value: &str) {
        if let Some(r) = self.get_mut(name) {
            if r.len() <= i {
                r.resize(i + 1, String::new());
            }
            r[i] = value.to_string();
        }
    }

    pub fn push(&mut self, fields: Vec<String>) {
        self.lines.push(Line::Record(fields));
    }

    pub fn remove(&mut self, name: &str) {
        self.lines
            .retain(|l| !matches!(l, Line::Record(r) if r[0] == name));
    }

    /// Numeric field `i` of every record that has one (ids in passwd and group).
    pub fn ids(&self, i: usize) -> impl Iterator<Item = u32> + '_ {
        self.records().filter_map(move |r| r.get(i)?.parse().ok())
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::Record(r) => out.push_str(&r.join(":")),
                Line::Verbatim(s) => out.push_str(s),
            }
            out.push('\n');
        }
        out.into_bytes()
    }
}

/// A comma-separated member list (group field 3, gshadow fields 2 and 3).
pub fn members(field: Option<&String>) -> Vec<String> {
    field
        .map(|f| {
            f.split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// All four files of one root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDb {
    pub passwd: Table,
    pub group: Table,
    pub shadow: Table,
    pub gshadow: Table,
}

impl AccountDb {
    pub fn load(root: &TargetRoot) -> Result<AccountDb, AccountError> {
        Ok(AccountDb {
            passwd: Table::load(root, "/etc/passwd")?,
            group: Table::load(root, "/etc/group")?,
            shadow: Table::load(root, "/etc/shadow")?,
            gshadow: Table::load(root, "/etc/gshadow")?,
        })
    }

    pub fn tables(&self) -> [&Table; 4] {
        [&self.passwd, &self.group, &self.shadow, &self.gshadow]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_keeps_what_it_does_not_understand() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        let text =
            "# managed\nroot:x:0:0:root:/root:/bin/sh\n+@nis\n\nbin:x:1:1::/:/sbin/nologin\n";
        std::fs::write(dir.path().join("etc/passwd"), text).unwrap();
        let root = TargetRoot::new(dir.path());
        let mut t = Table::load(&root, "/etc/passwd").unwrap();
        assert!(t.present);
        assert_eq!(t.render(), text.as_bytes());
        assert_eq!(t.ids(2).collect::<Vec<_>>(), [0, 1]);
        t.set("bin", 6, "/bin/sh");
        t.remove("root");
        t.push(vec!["core".into(), "x".into(), "1000".into()]);
        assert_eq!(
            String::from_utf8(t.render()).unwrap(),
            "# managed\n+@nis\n\nbin:x:1:1::/:/bin/sh\ncore:x:1000\n"
        );
        let absent = Table::load(&root, "/etc/gshadow").unwrap();
        assert!(!absent.present);
        assert_eq!(absent.render(), b"");
        assert_eq!(members(Some(&"a,,b".to_string())), ["a", "b"]);
    }
}
