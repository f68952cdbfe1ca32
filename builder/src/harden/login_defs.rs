//! /etc/login.defs (shadow-utils: useradd, passwd, login): `KEY value` lines, the last
//! one for a key winning. Shared by the rules that set keys in it (umask,
//! password-hashing).

use super::put_file;
use crate::tree::{Tree, TreeError};

pub const PATH: &str = "etc/login.defs";

/// The value of `key` on a `KEY value` line.
fn value_on<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut w = line.split_whitespace();
    (w.next()? == key).then_some(())?;
    w.next()
}

/// The effective value of `key`: the last line setting it.
pub fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().filter_map(|l| value_on(l, key)).next_back()
}

/// Set `settings` in login.defs, replacing every line that sets a key, appending the
/// missing ones. Does nothing where the image has no login.defs (nothing reads it).
pub fn set(tree: &mut Tree, settings: &[(&str, &str)]) -> Result<(), TreeError> {
    let Some(text) = tree.read_text(PATH).map(str::to_string) else {
        return Ok(());
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for (key, v) in settings {
        let wanted = format!("{key}\t\t{v}");
        let mut found = false;
        for l in lines.iter_mut() {
            if value_on(l, key).is_some() {
                *l = wanted.clone();
                found = true;
            }
        }
        if !found {
            lines.push(wanted);
        }
    }
    let mode = tree.get_resolved(PATH).map_or(0o644, |e| e.meta.mode);
    put_file(tree, PATH, &(lines.join("\n") + "\n"), mode)
}
