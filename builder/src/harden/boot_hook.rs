//! Boot-time actions (load sysctls, remount /tmp, load the firewall) hooked into the
//! image's init. systemd and OpenRC do the first two from /etc by themselves; busybox
//! init only runs what /etc/inittab names, so those images get `::sysinit:` lines.

use crate::tree::{Kind, Meta, Tree, TreeError};

/// Add `::sysinit:COMMAND` after the last sysinit line, once.
pub fn ensure_sysinit(tree: &mut Tree, command: &str) -> Result<(), TreeError> {
    let line = format!("::sysinit:{command}");
    let key = tree.resolve_all("etc/inittab")?;
    let (current, meta) = match tree.get(&key) {
        Some(e) => match &e.kind {
            Kind::File(c) => (String::from_utf8_lossy(c).into_owned(), e.meta.clone()),
            _ => (String::new(), Meta::new(0o644)),
        },
        None => (String::new(), Meta::new(0o644)),
    };
    if has_sysinit(&current, command) {
        return Ok(());
    }
    let lines: Vec<&str> = current.lines().collect();
    let after = lines
        .iter()
        .rposition(|l| l.contains(":sysinit:"))
        .map_or(0, |i| i + 1);
    let mut out: Vec<&str> = lines[..after].to_vec();
    out.push(&line);
    out.extend_from_slice(&lines[after..]);
    let text = out.join("\n") + "\n";
    super::put_file(tree, "etc/inittab", &text, meta.mode)
}

pub fn has_sysinit(inittab: &str, command: &str) -> bool {
    inittab
        .lines()
        .any(|l| l.trim() == format!("::sysinit:{command}"))
}

/// Whether busybox init will run `command` at boot.
pub fn inittab_runs(tree: &Tree, command: &str) -> bool {
    tree.read_text("etc/inittab")
        .is_some_and(|t| has_sysinit(t, command))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    #[test]
    fn sysinit_lines_go_after_the_last_one_once() {
        let mut t = Tree::new();
        put_file(
            &mut t,
            "etc/inittab",
            "::sysinit:/etc/init.d/rcS\n::respawn:-/bin/sh\n",
            0o644,
        )
        .unwrap();
        ensure_sysinit(&mut t, "/bin/true").unwrap();
        ensure_sysinit(&mut t, "/bin/true").unwrap();
        assert_eq!(
            t.read_text("etc/inittab").unwrap(),
            "::sysinit:/etc/init.d/rcS\n::sysinit:/bin/true\n::respawn:-/bin/sh\n"
        );
        assert!(inittab_runs(&t, "/bin/true"));
    }
}
