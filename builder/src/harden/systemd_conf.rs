//! systemd's own configuration files (journald.conf, coredump.conf): `[Section]` and
//! `Key=Value` lines, read as systemd reads them — the first main file found in /etc,
//! /run, /usr/local/lib, /usr/lib, then every `NAME.d/*.conf` drop-in across those
//! directories in file-name order (a same-named one in /etc hiding the others), the
//! last assignment winning. The rules write into the main file under /etc, because
//! that is the one file OpenSCAP's checks read.

use super::{files_in, put_file};
use crate::tree::{Tree, TreeError};

const DIRS: &[&str] = &["etc", "run", "usr/local/lib", "usr/lib"];

/// `(value, file that set it last)` for `key` in `section` of `name` (e.g.
/// `systemd/journald.conf`), or None when nothing sets it.
pub fn effective(tree: &Tree, name: &str, section: &str, key: &str) -> Option<(String, String)> {
    let mut files: Vec<(String, &str)> = Vec::new();
    if let Some((path, text)) = DIRS.iter().find_map(|d| {
        let p = format!("{d}/{name}");
        tree.read_text(&p).map(|t| (p, t))
    }) {
        files.push((path, text));
    }
    let mut drop_ins = std::collections::BTreeMap::new();
    // Lowest precedence first, so /etc's same-named drop-in replaces the others.
    for d in DIRS.iter().rev() {
        for (path, text) in files_in(tree, &format!("{d}/{name}.d"), ".conf") {
            let file = path.rsplit('/').next().unwrap_or_default().to_string();
            drop_ins.insert(file, (path, text));
        }
    }
    files.extend(drop_ins.into_values());
    let mut found = None;
    for (path, text) in files {
        if let Some(v) = last_in(text, section, key) {
            found = Some((v, path));
        }
    }
    found
}

/// The last `key=` in `section` of one file.
fn last_in(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    let mut found = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = s.to_string();
        } else if current == section {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == key {
                    found = Some(v.trim().to_string());
                }
            }
        }
    }
    found
}

/// Set `settings` in `section` of /etc/NAME: an existing assignment is replaced where it
/// stands, a missing one added at the end of the section (made if absent); every other
/// line is kept.
pub fn set(
    tree: &mut Tree,
    name: &str,
    section: &str,
    settings: &[(&str, &str)],
) -> Result<(), TreeError> {
    let path = format!("etc/{name}");
    let current = tree.read_text(&path).unwrap_or("").to_string();
    let mut lines: Vec<String> = current.lines().map(str::to_string).collect();
    for (key, value) in settings {
        let wanted = format!("{key}={value}");
        let mut in_section = false;
        let mut section_end = None;
        let mut replaced = false;
        for (i, line) in lines.iter_mut().enumerate() {
            let t = line.trim();
            if let Some(s) = t.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_section = s == section;
                continue;
            }
            if !in_section {
                continue;
            }
            section_end = Some(i + 1);
            if !t.starts_with('#') && t.split_once('=').is_some_and(|(k, _)| k.trim() == *key) {
                *line = wanted.clone();
                replaced = true;
            }
        }
        if replaced {
            continue;
        }
        let header = lines
            .iter()
            .position(|l| l.trim() == format!("[{section}]"));
        match (header, section_end) {
            (Some(_), Some(end)) => lines.insert(end, wanted),
            (Some(h), None) => lines.insert(h + 1, wanted),
            (None, _) => {
                lines.push(format!("[{section}]"));
                lines.push(wanted);
            }
        }
    }
    let mode = tree.get_resolved(&path).map_or(0o644, |e| e.meta.mode);
    put_file(tree, &path, &(lines.join("\n") + "\n"), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_in_place_and_adds_the_missing() {
        let mut t = Tree::new();
        put_file(
            &mut t,
            "etc/systemd/journald.conf",
            "# doc\n[Journal]\n#Storage=auto\nCompress=no\n",
            0o644,
        )
        .unwrap();
        set(
            &mut t,
            "systemd/journald.conf",
            "Journal",
            &[("Storage", "persistent"), ("Compress", "yes")],
        )
        .unwrap();
        assert_eq!(
            t.read_text("etc/systemd/journald.conf").unwrap(),
            "# doc\n[Journal]\n#Storage=auto\nCompress=yes\nStorage=persistent\n"
        );
        set(
            &mut t,
            "systemd/coredump.conf",
            "Coredump",
            &[("Storage", "none")],
        )
        .unwrap();
        assert_eq!(
            t.read_text("etc/systemd/coredump.conf").unwrap(),
            "[Coredump]\nStorage=none\n"
        );
    }

    #[test]
    fn a_drop_in_overrides_the_main_file_and_etc_hides_usr_lib() {
        let storage = |t: &Tree| {
            effective(t, "systemd/journald.conf", "Journal", "Storage")
                .unwrap()
                .0
        };
        let put = |t: &mut Tree, path: &str, text: &str| put_file(t, path, text, 0o644).unwrap();
        let mut t = Tree::new();
        put(
            &mut t,
            "etc/systemd/journald.conf",
            "[Journal]\nStorage=persistent\n",
        );
        assert_eq!(
            effective(&t, "systemd/journald.conf", "Journal", "Storage"),
            Some(("persistent".into(), "etc/systemd/journald.conf".into()))
        );
        put(
            &mut t,
            "usr/lib/systemd/journald.conf.d/10-vendor.conf",
            "[Journal]\nStorage=volatile\n",
        );
        assert_eq!(storage(&t), "volatile");
        put(&mut t, "etc/systemd/journald.conf.d/10-vendor.conf", "");
        assert_eq!(storage(&t), "persistent");
        // Another section's key does not count.
        put(
            &mut t,
            "etc/systemd/journald.conf.d/20-x.conf",
            "[Other]\nStorage=none\n",
        );
        assert_eq!(storage(&t), "persistent");
    }
}
