//! The kernel command line the stub hands over: the UKI's built-in `.cmdline`, then the
//! extra arguments (load options, SMBIOS), appended and never replacing it.
//!
//! Why append-only: the built-in line carries `harmony.verity.roothash=` and the root
//! partition; replacing it (as systemd-stub does with load options when Secure Boot is
//! off) would boot a root that nothing verifies. Appending is not enough by itself:
//! harmony-init, like the kernel, lets a later `name=` win, so an extra argument that
//! names a parameter deciding which root is mounted or what verifies it is dropped.

/// x86's COMMAND_LINE_SIZE is 2048 bytes with the terminating NUL; the kernel cuts a
/// longer line, so an extra that does not fit is refused whole instead.
pub const MAX_CMDLINE: usize = 2047;

/// Parameters an extra argument may not set: the root harmony-init mounts and verifies
/// (`harmony.root`, `harmony.verity.*`), the program that does it (`rdinit`), and the
/// kernel's own way around the initramfs (`noinitrd`, `root`, `init`).
const PROTECTED: &[&[u8]] = &[b"harmony.root", b"rdinit", b"noinitrd", b"root", b"init"];
const PROTECTED_PREFIX: &[u8] = b"harmony.verity.";

#[derive(Debug, PartialEq, Eq)]
pub enum ExtraError {
    NotAscii,
    TooLong,
}

impl ExtraError {
    pub fn what(&self) -> &'static str {
        match self {
            ExtraError::NotAscii => "not printable ASCII",
            ExtraError::TooLong => "the command line would pass 2047 bytes",
        }
    }
}

pub struct Cmdline {
    buf: [u8; MAX_CMDLINE],
    len: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// One argument as the kernel's `next_arg()` (lib/cmdline.c) splits it: up to unquoted
/// whitespace; a double quote toggles quoting. Returns (argument, its name).
fn next_arg(text: &[u8]) -> (&[u8], &[u8]) {
    let mut in_quote = false;
    let mut equals = None;
    let mut end = 0;
    while end < text.len() {
        let c = text[end];
        if is_space(c) && !in_quote {
            break;
        }
        if equals.is_none() && c == b'=' {
            equals = Some(end);
        }
        if c == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let arg = &text[..end];
    let name = &arg[..equals.unwrap_or(end)];
    // The kernel drops a quote that opens the argument before it compares names.
    (arg, name.strip_prefix(b"\"").unwrap_or(name))
}

fn protected(name: &[u8]) -> bool {
    PROTECTED.contains(&name) || name.starts_with(PROTECTED_PREFIX)
}

impl Cmdline {
    /// The built-in line: trailing whitespace and NULs dropped, anything not ASCII shown
    /// as `?` (the builder writes ASCII only). Err: longer than the kernel takes.
    pub fn new(builtin: &[u8]) -> Result<Self, &'static str> {
        let mut len = builtin.len();
        while len > 0 && (builtin[len - 1] == 0 || is_space(builtin[len - 1])) {
            len -= 1;
        }
        if len > MAX_CMDLINE {
            return Err("the built-in command line is longer than the kernel takes (2047 bytes)");
        }
        let mut buf = [0u8; MAX_CMDLINE];
        for (slot, &b) in buf.iter_mut().zip(&builtin[..len]) {
            *slot = if b.is_ascii() && b != 0 { b } else { b'?' };
        }
        Ok(Cmdline { buf, len })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Append the arguments of `extra` after a space, each protected one passed to
    /// `dropped` instead. Err: `extra` is not printable ASCII, or would not fit; then
    /// nothing of it is appended.
    pub fn append(
        &mut self,
        extra: &[u8],
        mut dropped: impl FnMut(&[u8]),
    ) -> Result<(), ExtraError> {
        if extra
            .iter()
            .any(|&c| !(c.is_ascii_graphic() || is_space(c)))
        {
            return Err(ExtraError::NotAscii);
        }
        let before = self.len;
        let mut rest = extra;
        loop {
            let start = rest
                .iter()
                .position(|&c| !is_space(c))
                .unwrap_or(rest.len());
            rest = &rest[start..];
            if rest.is_empty() {
                return Ok(());
            }
            let (arg, name) = next_arg(rest);
            rest = &rest[arg.len()..];
            if protected(name) {
                dropped(arg);
                continue;
            }
            let sep = usize::from(self.len > 0);
            if self.len + sep + arg.len() > MAX_CMDLINE {
                self.len = before;
                return Err(ExtraError::TooLong);
            }
            if sep == 1 {
                self.buf[self.len] = b' ';
            }
            self.buf[self.len + sep..self.len + sep + arg.len()].copy_from_slice(arg);
            self.len += sep + arg.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUILTIN: &[u8] = b"console=ttyS0,115200 quiet harmony.root=PARTLABEL=harmony-root \
        harmony.verity.roothash=00ff harmony.var=PARTLABEL=harmony-var\n\0";

    fn append(extra: &str) -> (String, Vec<String>, Result<(), ExtraError>) {
        let mut line = Cmdline::new(BUILTIN).unwrap();
        let mut dropped = Vec::new();
        let result = line.append(extra.as_bytes(), |a| {
            dropped.push(String::from_utf8(a.to_vec()).unwrap())
        });
        (
            String::from_utf8(line.as_bytes().to_vec()).unwrap(),
            dropped,
            result,
        )
    }

    #[test]
    fn extras_come_after_the_built_in_line_which_stays_whole() {
        let (line, dropped, result) = append("  harmony.test-marker=42\tloglevel=7 ");
        result.unwrap();
        assert!(dropped.is_empty());
        assert_eq!(
            line,
            "console=ttyS0,115200 quiet harmony.root=PARTLABEL=harmony-root \
             harmony.verity.roothash=00ff harmony.var=PARTLABEL=harmony-var \
             harmony.test-marker=42 loglevel=7"
        );
        let (only_spaces, _, result) = append(" \t ");
        result.unwrap();
        assert_eq!(only_spaces.as_bytes(), &BUILTIN[..BUILTIN.len() - 2]);
    }

    #[test]
    fn arguments_that_would_move_or_unverify_the_root_are_dropped() {
        let (line, dropped, result) = append(
            "a=1 harmony.verity.roothash=ffff harmony.root=/x \"rdinit=/bin/sh\" noinitrd root=/dev/vda2 init=/bin/sh \
             harmony.verity.salt=- b=2 rootwait harmony.rootx=1",
        );
        result.unwrap();
        assert_eq!(
            dropped,
            [
                "harmony.verity.roothash=ffff",
                "harmony.root=/x",
                "\"rdinit=/bin/sh\"",
                "noinitrd",
                "root=/dev/vda2",
                "init=/bin/sh",
                "harmony.verity.salt=-"
            ]
        );
        assert!(
            line.ends_with("harmony.var=PARTLABEL=harmony-var a=1 b=2 rootwait harmony.rootx=1"),
            "{line}"
        );
        assert_eq!(line.matches("harmony.verity.roothash=").count(), 1);
    }

    #[test]
    fn quoted_values_stay_one_argument() {
        let (line, dropped, result) =
            append(r#"dyndbg="file x.c +p" harmony.verity.roothash="a b""#);
        result.unwrap();
        assert_eq!(dropped, [r#"harmony.verity.roothash="a b""#]);
        assert!(line.ends_with(r#" dyndbg="file x.c +p""#), "{line}");
        // An unclosed quote swallows the rest, as in the kernel: one argument.
        let (line, dropped, result) = append(r#"x="open harmony.verity.roothash=ff"#);
        result.unwrap();
        assert!(dropped.is_empty());
        assert!(
            line.ends_with(r#" x="open harmony.verity.roothash=ff"#),
            "{line}"
        );
    }

    #[test]
    fn non_ascii_or_too_long_extras_are_refused_whole() {
        let (line, _, result) = append("a=1 b=\u{e9}");
        assert_eq!(result, Err(ExtraError::NotAscii));
        assert_eq!(line.as_bytes(), &BUILTIN[..BUILTIN.len() - 2]);
        let (_, _, result) = append("a=\x07");
        assert_eq!(result, Err(ExtraError::NotAscii));
        let long = format!("a=1 b={}", "x".repeat(MAX_CMDLINE));
        let (line, _, result) = append(&long);
        assert_eq!(result, Err(ExtraError::TooLong));
        assert_eq!(
            line.as_bytes(),
            &BUILTIN[..BUILTIN.len() - 2],
            "nothing half-appended"
        );
    }

    #[test]
    fn the_line_fills_to_exactly_the_kernel_s_limit() {
        let mut line = Cmdline::new(b"a").unwrap();
        let fill = "x".repeat(MAX_CMDLINE - 2);
        line.append(fill.as_bytes(), |_| {}).unwrap();
        assert_eq!(line.as_bytes().len(), MAX_CMDLINE);
        assert_eq!(line.append(b"y", |_| {}), Err(ExtraError::TooLong));
        assert!(Cmdline::new(&[b'x'; MAX_CMDLINE + 1]).is_err());
        let mut empty = Cmdline::new(b"").unwrap();
        empty.append(b"a", |_| {}).unwrap();
        assert_eq!(empty.as_bytes(), b"a");
    }
}
