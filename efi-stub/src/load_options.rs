//! The stub's own LoadOptions as extra kernel arguments: what a boot entry
//! (`efibootmgr --unicode`) or the UEFI shell (`BOOTX64.EFI ARGS`) passes, as UCS-2.
//!
//! Pure: bytes in, ASCII out. Anything but printable ASCII text is not a command line:
//! EDK2's boot manager passes its auto-created entries' 16-byte GUID here, so binary
//! load options are normal and quietly ignored.

/// What the load options hold.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadOptions {
    /// Text: `len` ASCII bytes written to the output (0: nothing to add).
    Text(usize),
    /// Not UCS-2 printable text (a GUID, a device path, garbage): ignored.
    NotText,
    /// Text longer than the output buffer.
    TooLong,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Decode `options` (UCS-2, little-endian, NUL-terminated or not) into `out`.
/// `from_shell`: the UEFI shell started us, and the first word is our own path (argv[0]),
/// which is dropped. Whitespace at both ends is trimmed.
pub fn decode(options: &[u8], from_shell: bool, out: &mut [u8]) -> LoadOptions {
    if options.len() % 2 != 0 {
        return LoadOptions::NotText;
    }
    let mut len = 0;
    for unit in options.chunks_exact(2) {
        let c = u16::from_le_bytes([unit[0], unit[1]]);
        if c == 0 {
            break;
        }
        let byte = match c {
            0x09..=0x0d => b' ',
            0x20..=0x7e => c as u8,
            _ => return LoadOptions::NotText,
        };
        let Some(slot) = out.get_mut(len) else {
            return LoadOptions::TooLong;
        };
        *slot = byte;
        len += 1;
    }
    let mut start = 0;
    if from_shell {
        // argv[0], quoted when the path has spaces.
        start = skip_spaces(out, 0, len);
        let mut in_quote = false;
        while start < len && (in_quote || !is_space(out[start])) {
            if out[start] == b'"' {
                in_quote = !in_quote;
            }
            start += 1;
        }
    }
    let start = skip_spaces(out, start, len);
    let mut end = len;
    while end > start && is_space(out[end - 1]) {
        end -= 1;
    }
    out.copy_within(start..end, 0);
    LoadOptions::Text(end - start)
}

fn skip_spaces(text: &[u8], mut at: usize, len: usize) -> usize {
    while at < len && is_space(text[at]) {
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ucs2(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn text(options: &[u8], from_shell: bool) -> Result<String, LoadOptions> {
        let mut out = [0u8; 64];
        match decode(options, from_shell, &mut out) {
            LoadOptions::Text(n) => Ok(String::from_utf8(out[..n].to_vec()).unwrap()),
            other => Err(other),
        }
    }

    #[test]
    fn a_boot_entry_passes_its_text_with_or_without_a_nul() {
        assert_eq!(
            text(&ucs2("  quiet\tloglevel=7 \0"), false).unwrap(),
            "quiet loglevel=7"
        );
        assert_eq!(text(&ucs2("a=b"), false).unwrap(), "a=b");
        // Whatever follows the NUL is not part of the options.
        assert_eq!(text(&ucs2("a=b\0\u{1234}junk"), false).unwrap(), "a=b");
        assert_eq!(text(&ucs2(""), false).unwrap(), "");
        assert_eq!(text(&ucs2("   \0"), false).unwrap(), "");
    }

    #[test]
    fn the_shell_s_argv0_is_dropped() {
        assert_eq!(
            text(
                &ucs2(r"fs0:\EFI\BOOT\BOOTX64.EFI harmony.test-marker=1 quiet"),
                true
            )
            .unwrap(),
            "harmony.test-marker=1 quiet"
        );
        assert_eq!(
            text(&ucs2(r#""fs0:\my dir\x.efi"  a=1"#), true).unwrap(),
            "a=1"
        );
        assert_eq!(text(&ucs2(r"BOOTX64.EFI"), true).unwrap(), "");
    }

    #[test]
    fn edk2_s_auto_created_entry_guid_is_not_text() {
        // mBmAutoCreateBootOptionGuid, as EDK2's boot manager stores it in OptionalData.
        let guid = [
            0x4e, 0xac, 0x08, 0x81, 0x11, 0x9f, 0x59, 0x4d, 0x85, 0x0e, 0xe2, 0x1a, 0x52, 0x2c,
            0x59, 0xb2,
        ];
        assert_eq!(text(&guid, false), Err(LoadOptions::NotText));
        assert_eq!(text(&[b'a', 0, b'b'], false), Err(LoadOptions::NotText));
        assert_eq!(text(&ucs2("café"), false), Err(LoadOptions::NotText));
        assert_eq!(text(&ucs2("a\u{7}b"), false), Err(LoadOptions::NotText));
    }

    #[test]
    fn text_longer_than_the_buffer_is_refused_whole() {
        assert_eq!(
            text(&ucs2(&"x".repeat(65)), false),
            Err(LoadOptions::TooLong)
        );
        assert_eq!(text(&ucs2(&"x".repeat(64)), false).unwrap().len(), 64);
    }
}
