//! The kernel command line the stub hands over: the UKI's built-in `.cmdline`, then the
//! extra arguments (load options, SMBIOS), appended and never replacing it.
//!
//! Why append-only: the built-in line carries `harmony.verity.roothash=` and the root
//! partition; replacing it (as systemd-stub does with load options when Secure Boot is
//! off) would boot a root that nothing verifies. Appending is not enough by itself:
//! harmony-init, like the kernel, lets a later `name=` win, so an extra argument that
//! names a parameter deciding what boots, what is mounted or what runs first is dropped.
//!
//! Why the whole line is parsed again at every append: a double quote opened in one
//! source and closed in the next would otherwise hide an argument from a filter that
//! splits each source alone (`x="` then `" harmony.init=/bin/sh`). The kernel and
//! harmony-init see only the final line, so the filter reads that, as they do.

/// x86's COMMAND_LINE_SIZE is 2048 bytes with the terminating NUL; the kernel cuts a
/// longer line, so an extra that does not fit is refused whole instead.
pub const MAX_CMDLINE: usize = 2047;

/// Parameters an extra argument may not set, by exact name: the kernel's way around
/// the initramfs (`root`, `init`, `rdinit`), and the first arguments of the init that
/// starts a shell without a login (busybox init: `single`, `-s`, `1`; systemd reads
/// `single`, `s`, `S`, `1`, `rescue`, `emergency`, `-b` from the command line).
const PROTECTED: &[&[u8]] = &[
    b"root",
    b"init",
    b"rdinit",
    b"single",
    b"s",
    b"S",
    b"1",
    b"-s",
    b"-b",
    b"rescue",
    b"emergency",
];
/// Prefixes no extra argument's name may start with: every harmony-init parameter
/// (root, verity, /var, state, init), the kernel's `noinitrd` (its setup matches by
/// prefix), and systemd's own switches (`systemd.run=`, `systemd.debug_shell`,
/// `systemd.unit=`, and the same under `rd.`), each of which runs a shell or a command.
const PROTECTED_PREFIXES: &[&[u8]] = &[b"harmony.", b"noinitrd", b"systemd.", b"rd."];
/// Everything after it goes to init as its arguments, not parsed as parameters.
const END_OF_PARAMS: &[u8] = b"--";

#[derive(Debug, PartialEq, Eq)]
pub enum ExtraError {
    NotAscii,
    TooLong,
    /// The built-in line ends inside a double quote: every extra would become part of
    /// its last argument.
    OpenQuote,
}

impl ExtraError {
    pub fn what(&self) -> &'static str {
        match self {
            ExtraError::NotAscii => "not printable ASCII",
            ExtraError::TooLong => "the command line would pass 2047 bytes",
            ExtraError::OpenQuote => "the built-in command line ends inside a double quote",
        }
    }
}

pub struct Cmdline {
    buf: [u8; MAX_CMDLINE],
    len: usize,
    /// The built-in line's length: what follows it is the extras.
    builtin_len: usize,
    /// The built-in line ends inside a double quote.
    builtin_open: bool,
}

/// The kernel's `isspace()` on ASCII.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// One argument of a command line as the kernel's `next_arg()` (lib/cmdline.c) splits
/// it, `text` starting at the argument (not at whitespace).
#[derive(Debug, PartialEq, Eq)]
pub struct Arg<'a> {
    /// The argument as written, quotes included.
    pub text: &'a [u8],
    /// Its name as the kernel compares it: before the first `=`, without the quotes
    /// that open (and, without a `=`, close) the argument.
    pub name: &'a [u8],
    /// It has a `=` (a value, perhaps empty).
    pub has_value: bool,
    /// It ends inside a double quote (it ran to the end of the text).
    pub open_quote: bool,
}

/// Splits one argument off the front of `text`: up to unquoted whitespace; a double
/// quote toggles quoting. As in the kernel, a quote opening the argument is skipped
/// before the `=` is looked for, and a `=` right at the start is not the name's end
/// (its `equals == 0` means "none").
pub fn next_arg(text: &[u8]) -> Arg<'_> {
    let quoted = text.first() == Some(&b'"');
    let start = usize::from(quoted);
    let mut in_quote = quoted;
    let mut equals = None;
    let mut end = start;
    while end < text.len() {
        let c = text[end];
        if is_space(c) && !in_quote {
            break;
        }
        if equals.is_none() && c == b'=' && end > start {
            equals = Some(end);
        }
        if c == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let name_end = match equals {
        Some(eq) => eq,
        None if quoted && end > start && text[end - 1] == b'"' => end - 1,
        None => end,
    };
    Arg {
        text: &text[..end],
        name: &text[start..name_end],
        has_value: equals.is_some(),
        open_quote: in_quote,
    }
}

/// Every argument of `text`, as the kernel splits it, with its offset.
pub fn args(text: &[u8]) -> impl Iterator<Item = (usize, Arg<'_>)> {
    let mut pos = 0;
    core::iter::from_fn(move || {
        while pos < text.len() && is_space(text[pos]) {
            pos += 1;
        }
        if pos >= text.len() {
            return None;
        }
        let arg = next_arg(&text[pos..]);
        let at = pos;
        pos += arg.text.len();
        Some((at, arg))
    })
}

/// An extra argument with this name is dropped.
pub fn protected(name: &[u8]) -> bool {
    PROTECTED.contains(&name) || PROTECTED_PREFIXES.iter().any(|p| name.starts_with(p))
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
        let builtin_open = args(&buf[..len]).last().is_some_and(|(_, a)| a.open_quote);
        Ok(Cmdline {
            buf,
            len,
            builtin_len: len,
            builtin_open,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Append `extra` after a space, then split everything after the built-in line
    /// again, as the kernel will, and keep only the arguments no protected name starts:
    /// each dropped one (as it reads in the final line, perhaps spanning an earlier
    /// source) goes to `dropped`. An argument `--` drops itself and everything after
    /// it. Err: `extra` is not printable ASCII, the result would not fit, or the
    /// built-in line ends inside a quote; then nothing of it is appended.
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
        if self.builtin_open {
            return Err(ExtraError::OpenQuote);
        }
        // The extras so far and the new ones, as one text: quotes may span them.
        let mut joined = [0u8; 2 * MAX_CMDLINE + 1];
        let earlier = &self.buf[self.builtin_len..self.len];
        let joined_len = earlier.len() + 1 + extra.len();
        if joined_len > joined.len() {
            return Err(ExtraError::TooLong);
        }
        joined[..earlier.len()].copy_from_slice(earlier);
        joined[earlier.len()] = b' ';
        joined[earlier.len() + 1..joined_len].copy_from_slice(extra);

        let mut out = [0u8; MAX_CMDLINE];
        out[..self.builtin_len].copy_from_slice(&self.buf[..self.builtin_len]);
        let mut len = self.builtin_len;
        let mut rest = args(&joined[..joined_len]);
        for (_, arg) in rest.by_ref() {
            if arg.name == END_OF_PARAMS && !arg.has_value {
                dropped(arg.text);
                break;
            }
            if protected(arg.name) {
                dropped(arg.text);
                continue;
            }
            let sep = usize::from(len > 0);
            if len + sep + arg.text.len() > MAX_CMDLINE {
                return Err(ExtraError::TooLong);
            }
            if sep == 1 {
                out[len] = b' ';
            }
            out[len + sep..len + sep + arg.text.len()].copy_from_slice(arg.text);
            len += sep + arg.text.len();
        }
        for (_, arg) in rest {
            dropped(arg.text);
        }
        self.buf = out;
        self.len = len;
        Ok(())
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
        let (line, dropped, result) = append("  test.marker=42\tloglevel=7 ");
        result.unwrap();
        assert!(dropped.is_empty());
        assert_eq!(
            line,
            "console=ttyS0,115200 quiet harmony.root=PARTLABEL=harmony-root \
             harmony.verity.roothash=00ff harmony.var=PARTLABEL=harmony-var \
             test.marker=42 loglevel=7"
        );
        let (only_spaces, _, result) = append(" \t ");
        result.unwrap();
        assert_eq!(only_spaces.as_bytes(), &BUILTIN[..BUILTIN.len() - 2]);
    }

    #[test]
    fn arguments_that_would_move_or_unverify_the_root_are_dropped() {
        let (line, dropped, result) = append(
            "a=1 harmony.verity.roothash=ffff harmony.root=/x \"rdinit=/bin/sh\" noinitrd root=/dev/vda2 init=/bin/sh \
             harmony.verity.salt=- b=2 rootwait harmony.rootx=1 noinitrdx",
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
                "harmony.verity.salt=-",
                "harmony.rootx=1",
                "noinitrdx",
            ]
        );
        assert!(
            line.ends_with("harmony.var=PARTLABEL=harmony-var a=1 b=2 rootwait"),
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

    /// The kernel's `parse_args()` + `next_arg()` (lib/cmdline.c, kernel/params.c)
    /// ported line by line, independent of the parser above: the parameter names the
    /// kernel (and harmony-init, which splits the same way) sees, up to `--`.
    fn kernel_params(line: &[u8]) -> Vec<Vec<u8>> {
        let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
        let mut args = line.to_vec();
        let mut params = Vec::new();
        let mut p = 0;
        while p < args.len() && space(args[p]) {
            p += 1;
        }
        while p < args.len() {
            let (mut equals, mut in_quote, mut quoted) = (0usize, false, false);
            if args[p] == b'"' {
                p += 1;
                in_quote = true;
                quoted = true;
            }
            let mut i = 0;
            while p + i < args.len() {
                if space(args[p + i]) && !in_quote {
                    break;
                }
                if equals == 0 && args[p + i] == b'=' {
                    equals = i;
                }
                if args[p + i] == b'"' {
                    in_quote = !in_quote;
                }
                i += 1;
            }
            let mut param_end = if equals == 0 { i } else { equals };
            if equals == 0 && quoted && i > 0 && args[p + i - 1] == b'"' {
                param_end = i - 1;
                args[p + i - 1] = 0;
            }
            let param = args[p..p + param_end].to_vec();
            if equals == 0 && param == b"--" {
                break;
            }
            params.push(param);
            p += i;
            while p < args.len() && space(args[p]) {
                p += 1;
            }
        }
        params
    }

    /// The parameters the final line gives after the built-in part, as the kernel reads it.
    fn extra_params(line: &Cmdline) -> Vec<Vec<u8>> {
        let all = kernel_params(line.as_bytes());
        let builtin = kernel_params(&line.as_bytes()[..line.builtin_len]);
        all[builtin.len()..].to_vec()
    }

    fn two_sources(first: &str, second: &str) -> (Cmdline, Vec<String>) {
        let mut line = Cmdline::new(BUILTIN).unwrap();
        let mut dropped = Vec::new();
        for extra in [first, second] {
            let _ = line.append(extra.as_bytes(), |a| {
                dropped.push(String::from_utf8(a.to_vec()).unwrap())
            });
        }
        (line, dropped)
    }

    #[test]
    fn a_quote_opened_in_one_source_and_closed_in_the_next_smuggles_nothing() {
        for (first, second) in [
            (r#"x=""#, r#"" harmony.init=/bin/sh"#),
            (r#"x="a"#, r#"b" init=/bin/sh"#),
            (r#"""#, r#"" harmony.state=evil"#),
            (r#"a="1 2"#, r#"3" "harmony.var=PARTLABEL=usb" b"#),
            (r#"y=" "#, r#"" rdinit=/bin/sh root=/dev/sdb1 noinitrd"#),
            (r#"x=""#, r#"" -- harmony.init=/bin/sh single"#),
        ] {
            let (line, dropped) = two_sources(first, second);
            let params = extra_params(&line);
            assert!(
                params.iter().all(|p| !protected(p)),
                "{first:?} + {second:?} gave {:?} (dropped {dropped:?})",
                String::from_utf8_lossy(line.as_bytes())
            );
            assert!(!dropped.is_empty(), "{first:?} + {second:?}");
        }
        // The spanning argument itself is kept when its name is harmless.
        let (line, dropped) = two_sources(r#"x=""#, r#"" harmony.init=/bin/sh"#);
        assert_eq!(dropped, ["harmony.init=/bin/sh"]);
        assert!(line.as_bytes().ends_with(br#" x=" ""#));
    }

    #[test]
    fn every_harmony_parameter_and_the_ways_to_a_shell_are_dropped() {
        let (line, dropped, result) = append(
            "harmony.init=/bin/sh harmony.state=usb harmony.var=PARTLABEL=usb \
             \"harmony.init=/bin/sh\" systemd.debug_shell systemd.run=/bin/sh rd.break \
             single S -s emergency keep=1 -- init=/bin/sh later",
        );
        result.unwrap();
        assert_eq!(
            dropped,
            [
                "harmony.init=/bin/sh",
                "harmony.state=usb",
                "harmony.var=PARTLABEL=usb",
                "\"harmony.init=/bin/sh\"",
                "systemd.debug_shell",
                "systemd.run=/bin/sh",
                "rd.break",
                "single",
                "S",
                "-s",
                "emergency",
                "--",
                "init=/bin/sh",
                "later",
            ]
        );
        assert!(
            line.ends_with("harmony.var=PARTLABEL=harmony-var keep=1"),
            "{line}"
        );
        // A quoted `--` ends the parameters too, as in the kernel.
        let (line, dropped, _) = append(r#"a=1 "--" harmony.init=/bin/sh"#);
        assert_eq!(dropped, [r#""--""#, "harmony.init=/bin/sh"]);
        assert!(line.ends_with(" a=1"), "{line}");
    }

    #[test]
    fn a_built_in_line_ending_inside_a_quote_takes_no_extras() {
        let mut line = Cmdline::new(b"console=ttyS0 x=\"open").unwrap();
        assert_eq!(
            line.append(b"\" init=/bin/sh", |_| {}),
            Err(ExtraError::OpenQuote)
        );
        assert_eq!(line.as_bytes(), b"console=ttyS0 x=\"open");
    }

    #[test]
    fn the_split_is_the_kernel_s() {
        for text in [
            &b"a b=c \"d=e f\" g=\"h i\" =j \"=k=l\" m\"n o\"p \"--\" q"[..],
            b"\"",
            b"x=\"",
            b" \t\x0b\x0c a\x0bb",
        ] {
            let ours: Vec<Vec<u8>> = args(text).map(|(_, a)| a.name.to_vec()).collect();
            let mut kernel = kernel_params(text);
            // Ours goes on past `--`; compare up to it.
            let upto = ours.iter().position(|n| n == b"--").unwrap_or(ours.len());
            kernel.truncate(upto);
            assert_eq!(
                ours[..upto].to_vec(),
                kernel,
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// Pieces cut from every smuggling attempt above, in every order, over two sources:
    /// the kernel never sees a protected parameter after the built-in line.
    #[test]
    fn no_split_of_hostile_pieces_over_two_sources_gets_a_protected_parameter_through() {
        let pieces = [
            "\"",
            "x=\"",
            " ",
            "harmony.init=/bin/sh",
            "init=/bin/sh",
            "\" ",
            "a",
            "=",
            "--",
            "root=/dev/sdb",
            "\"harmony.state=s\"",
            "systemd.run=sh",
            "noinitrd",
        ];
        let mut checked = 0;
        for a in &pieces {
            for b in &pieces {
                for c in &pieces {
                    for d in &pieces {
                        let first = format!("{a}{b}");
                        let second = format!("{c}{d}");
                        let (line, _) = two_sources(&first, &second);
                        let params = extra_params(&line);
                        assert!(
                            params.iter().all(|p| !protected(p)),
                            "{first:?} + {second:?} gave {:?}",
                            String::from_utf8_lossy(line.as_bytes())
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, pieces.len().pow(4));
    }
}
