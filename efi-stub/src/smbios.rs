//! SMBIOS OEM strings (structure type 11), where a VMM hands the stub extra kernel
//! arguments as `io.systemd.stub.kernel-cmdline-extra=ARGS` (QEMU:
//! `-smbios type=11,value=io.systemd.stub.kernel-cmdline-extra=ARGS`).
//!
//! Pure functions over bytes: the firmware's table is data we did not write, so every
//! length and offset is checked against the slice; a malformed entry point or table is an
//! `Err` naming the problem, never a read past its end.

/// The OEM string prefix systemd-stub reads; we read the same one.
pub const CMDLINE_EXTRA_PREFIX: &[u8] = b"io.systemd.stub.kernel-cmdline-extra=";

/// The structure table is read only up to this many bytes: a table that claims more is
/// cut here (its walk then fails on the first structure that runs past the cut). Real
/// tables are a few KiB; SMBIOS 2 cannot even say more than 64 KiB.
pub const MAX_TABLE_BYTES: usize = 1 << 20;

/// The longest entry point we read (SMBIOS 3.x's is 0x18 bytes, 2.x's 0x1f).
pub const MAX_ENTRY_POINT_BYTES: usize = 0x40;

const SMBIOS3_ANCHOR: &[u8] = b"_SM3_";
const SMBIOS2_ANCHOR: &[u8] = b"_SM_";
const SMBIOS2_INTERMEDIATE_ANCHOR: &[u8] = b"_DMI_";
const SMBIOS3_MIN_LEN: usize = 0x18;
/// SMBIOS 2.1 firmware wrote 0x1e here by mistake (the spec's own erratum); both work.
const SMBIOS2_MIN_LEN: usize = 0x1e;
const OEM_STRINGS: u8 = 11;
const END_OF_TABLE: u8 = 127;

/// Which entry point a table came from (for the console).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPoint {
    Smbios3,
    Smbios2,
}

/// Where the structure table lies in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLocation {
    pub address: u64,
    pub len: usize,
}

/// The entry point's own length, from its first bytes (to know how much to read).
pub fn entry_point_len(kind: EntryPoint, head: &[u8]) -> Result<usize, &'static str> {
    let (anchor, len_at, min) = match kind {
        EntryPoint::Smbios3 => (SMBIOS3_ANCHOR, 6, SMBIOS3_MIN_LEN),
        EntryPoint::Smbios2 => (SMBIOS2_ANCHOR, 5, SMBIOS2_MIN_LEN),
    };
    if head.len() <= len_at || !head.starts_with(anchor) {
        return Err("entry point: no anchor string");
    }
    let len = head[len_at] as usize;
    if !(min..=MAX_ENTRY_POINT_BYTES).contains(&len) {
        return Err("entry point: length out of range");
    }
    Ok(len)
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |value, b| (value << 8) | u64::from(*b))
}

/// The table's address and length from a whole entry point (`entry_point_len` bytes).
pub fn parse_entry_point(kind: EntryPoint, ep: &[u8]) -> Result<TableLocation, &'static str> {
    let len = entry_point_len(kind, ep)?;
    if ep.len() < len {
        return Err("entry point: shorter than its length field");
    }
    let ep = &ep[..len];
    if !checksum_ok(ep) {
        return Err("entry point: bad checksum");
    }
    let (address, table_len) = match kind {
        EntryPoint::Smbios3 => (le(&ep[0x10..0x18]), le(&ep[0x0c..0x10])),
        EntryPoint::Smbios2 => {
            if &ep[0x10..0x15] != SMBIOS2_INTERMEDIATE_ANCHOR
                || !checksum_ok(&ep[0x10..0x1f.min(len)])
            {
                return Err("entry point: bad intermediate (_DMI_) anchor or checksum");
            }
            (le(&ep[0x18..0x1c]), le(&ep[0x16..0x18]))
        }
    };
    if address == 0 || table_len == 0 {
        return Err("entry point: no structure table");
    }
    Ok(TableLocation {
        address,
        len: (table_len as usize).min(MAX_TABLE_BYTES),
    })
}

/// The index just past the string set that starts at `start`: strings, each ended by a
/// NUL, and one more NUL after the last (two NULs when there are none).
fn string_set_end(table: &[u8], start: usize) -> Result<usize, &'static str> {
    const UNTERMINATED: &str = "table: a structure's strings do not end in two NULs";
    let rest = table.get(start..).ok_or(UNTERMINATED)?;
    if rest.starts_with(&[0, 0]) {
        return Ok(start + 2);
    }
    let mut pos = 0;
    loop {
        // A string: at least one byte, then its NUL.
        if rest.get(pos).is_none_or(|b| *b == 0) {
            return Err(UNTERMINATED);
        }
        let nul = rest[pos..]
            .iter()
            .position(|b| *b == 0)
            .ok_or(UNTERMINATED)?;
        pos += nul + 1;
        match rest.get(pos) {
            Some(0) => return Ok(start + pos + 1),
            Some(_) => continue,
            None => return Err(UNTERMINATED),
        }
    }
}

/// The value of the first OEM string (type 11) that starts with `prefix`, in table order,
/// as systemd-stub picks it. Walks every structure up to the end-of-table structure (or
/// the slice's end), so a malformed table is an error even after a match.
pub fn find_oem_string<'a>(
    table: &'a [u8],
    prefix: &[u8],
) -> Result<Option<&'a [u8]>, &'static str> {
    let mut found = None;
    let mut pos = 0;
    while pos < table.len() {
        let header = table
            .get(pos..pos + 4)
            .ok_or("table: a structure header runs past the table's end")?;
        let (kind, len) = (header[0], header[1] as usize);
        if len < 4 {
            return Err("table: a structure is shorter than its own header");
        }
        if pos + len > table.len() {
            return Err("table: a structure runs past the table's end");
        }
        let strings = pos + len;
        let end = string_set_end(table, strings)?;
        if kind == OEM_STRINGS && found.is_none() {
            if len < 5 {
                return Err("table: an OEM strings structure has no count");
            }
            let count = table[pos + 4] as usize;
            // end - 1: the set's final NUL; every string before it ends in its own NUL.
            found = table[strings..end - 1]
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .take(count)
                .find_map(|s| s.strip_prefix(prefix));
        }
        if kind == END_OF_TABLE {
            break;
        }
        pos = end;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One structure: type, formatted area (after the 4-byte header), strings.
    fn structure(kind: u8, formatted: &[u8], strings: &[&[u8]]) -> Vec<u8> {
        let mut s = vec![kind, (4 + formatted.len()) as u8, 0x00, 0x01];
        s.extend_from_slice(formatted);
        for string in strings {
            s.extend_from_slice(string);
            s.push(0);
        }
        if strings.is_empty() {
            s.push(0);
        }
        s.push(0);
        s
    }

    fn oem(strings: &[&[u8]]) -> Vec<u8> {
        structure(OEM_STRINGS, &[strings.len() as u8], strings)
    }

    fn end() -> Vec<u8> {
        structure(END_OF_TABLE, &[], &[])
    }

    /// A table as QEMU lays it out: BIOS (type 0, strings), system (type 1), OEM strings.
    fn qemu_like(oem_strings: &[&[u8]]) -> Vec<u8> {
        [
            structure(
                0,
                &[1, 2, 0, 0xe8, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                &[b"EFI Development Kit II / OVMF", b"0.0.0"],
            ),
            structure(1, &[0; 23], &[]),
            oem(oem_strings),
            end(),
        ]
        .concat()
    }

    #[test]
    fn the_extra_command_line_is_found_among_other_oem_strings() {
        let table = qemu_like(&[
            b"io.systemd.credential:x=y",
            b"io.systemd.stub.kernel-cmdline-extra=quiet a=b",
        ]);
        assert_eq!(
            find_oem_string(&table, CMDLINE_EXTRA_PREFIX).unwrap(),
            Some(&b"quiet a=b"[..])
        );
    }

    #[test]
    fn the_first_match_wins_and_no_match_is_none() {
        let table = [
            oem(&[b"io.systemd.stub.kernel-cmdline-extra=one"]),
            oem(&[b"io.systemd.stub.kernel-cmdline-extra=two"]),
            end(),
        ]
        .concat();
        assert_eq!(
            find_oem_string(&table, CMDLINE_EXTRA_PREFIX).unwrap(),
            Some(&b"one"[..])
        );
        let table = qemu_like(&[b"io.systemd.stub.kernel-cmdline-extraX"]);
        assert_eq!(find_oem_string(&table, CMDLINE_EXTRA_PREFIX).unwrap(), None);
        // A table with no OEM strings at all, and one without an end-of-table structure.
        assert_eq!(find_oem_string(&end(), CMDLINE_EXTRA_PREFIX).unwrap(), None);
        let table = oem(&[b"io.systemd.stub.kernel-cmdline-extra=x"]);
        assert_eq!(
            find_oem_string(&table, CMDLINE_EXTRA_PREFIX).unwrap(),
            Some(&b"x"[..])
        );
    }

    #[test]
    fn strings_past_the_count_are_not_oem_strings() {
        let mut table = oem(&[b"a", b"io.systemd.stub.kernel-cmdline-extra=late"]);
        table[4] = 1;
        assert_eq!(find_oem_string(&table, CMDLINE_EXTRA_PREFIX).unwrap(), None);
    }

    #[test]
    fn nothing_after_the_end_of_table_structure_is_read() {
        let table = [end(), vec![0xff; 3]].concat();
        assert_eq!(find_oem_string(&table, CMDLINE_EXTRA_PREFIX).unwrap(), None);
    }

    #[test]
    fn every_cut_of_a_table_is_an_error_or_a_clean_answer_never_a_panic() {
        let table = qemu_like(&[b"io.systemd.stub.kernel-cmdline-extra=console=ttyS0"]);
        for cut in 0..table.len() {
            let _ = find_oem_string(&table[..cut], CMDLINE_EXTRA_PREFIX);
        }
        // Cut inside the OEM structure's strings: an error, not a partial string.
        let oem_start = table.len() - end().len() - 20;
        assert!(find_oem_string(&table[..oem_start], CMDLINE_EXTRA_PREFIX).is_err());
    }

    #[test]
    fn malformed_structures_are_named() {
        let short_header = [structure(1, &[], &[]), vec![11, 3, 0, 0, 0, 0]].concat();
        assert_eq!(
            find_oem_string(&short_header, CMDLINE_EXTRA_PREFIX),
            Err("table: a structure is shorter than its own header")
        );
        let past_end = vec![11, 200, 0, 0, 1];
        assert_eq!(
            find_oem_string(&past_end, CMDLINE_EXTRA_PREFIX),
            Err("table: a structure runs past the table's end")
        );
        let unterminated = vec![11, 5, 0, 0, 1, b'a', b'b', 0];
        assert_eq!(
            find_oem_string(&unterminated, CMDLINE_EXTRA_PREFIX),
            Err("table: a structure's strings do not end in two NULs")
        );
        // A single NUL followed by text is not an empty string set.
        let empty_then_text = vec![11, 5, 0, 0, 0, 0, b'a', 0, 0];
        assert!(find_oem_string(&empty_then_text, CMDLINE_EXTRA_PREFIX).is_err());
        let no_count = [
            structure(11, &[], &[b"io.systemd.stub.kernel-cmdline-extra=x"]),
            end(),
        ]
        .concat();
        assert_eq!(
            find_oem_string(&no_count, CMDLINE_EXTRA_PREFIX),
            Err("table: an OEM strings structure has no count")
        );
    }

    fn with_checksum(mut ep: Vec<u8>, at: usize, over: core::ops::Range<usize>) -> Vec<u8> {
        ep[at] = 0;
        let sum = ep[over].iter().fold(0u8, |s, b| s.wrapping_add(*b));
        ep[at] = sum.wrapping_neg();
        ep
    }

    fn smbios3(address: u64, max_size: u32) -> Vec<u8> {
        let mut ep = b"_SM3_".to_vec();
        ep.extend_from_slice(&[0, 0x18, 3, 0, 0, 1, 0]);
        ep.extend_from_slice(&max_size.to_le_bytes());
        ep.extend_from_slice(&address.to_le_bytes());
        with_checksum(ep, 5, 0..0x18)
    }

    fn smbios2(address: u32, len: u16) -> Vec<u8> {
        let mut ep = b"_SM_".to_vec();
        ep.extend_from_slice(&[0, 0x1f, 2, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        ep.extend_from_slice(b"_DMI_");
        ep.push(0);
        ep.extend_from_slice(&len.to_le_bytes());
        ep.extend_from_slice(&address.to_le_bytes());
        ep.extend_from_slice(&9u16.to_le_bytes());
        ep.push(0x28);
        let ep = with_checksum(ep, 0x15, 0x10..0x1f);
        with_checksum(ep, 4, 0..0x1f)
    }

    #[test]
    fn both_entry_points_give_the_table() {
        let ep = smbios3(0x7fbe_a000, 0x1a5);
        assert_eq!(entry_point_len(EntryPoint::Smbios3, &ep[..7]), Ok(0x18));
        assert_eq!(
            parse_entry_point(EntryPoint::Smbios3, &ep),
            Ok(TableLocation {
                address: 0x7fbe_a000,
                len: 0x1a5
            })
        );
        let ep = smbios2(0x000f_0000, 0x1a5);
        assert_eq!(entry_point_len(EntryPoint::Smbios2, &ep[..7]), Ok(0x1f));
        assert_eq!(
            parse_entry_point(EntryPoint::Smbios2, &ep),
            Ok(TableLocation {
                address: 0xf_0000,
                len: 0x1a5
            })
        );
    }

    #[test]
    fn bad_entry_points_are_refused() {
        let mut ep = smbios3(0x1000, 0x100);
        ep[0x10] ^= 1;
        assert_eq!(
            parse_entry_point(EntryPoint::Smbios3, &ep),
            Err("entry point: bad checksum")
        );
        assert_eq!(
            parse_entry_point(EntryPoint::Smbios2, &smbios3(0x1000, 0x100)),
            Err("entry point: no anchor string")
        );
        let mut ep = smbios2(0x1000, 0x100);
        ep[0x10] = b'X';
        let ep = with_checksum(ep, 4, 0..0x1f);
        assert!(parse_entry_point(EntryPoint::Smbios2, &ep).is_err());
        let ep = smbios3(0, 0x100);
        assert_eq!(
            parse_entry_point(EntryPoint::Smbios3, &ep),
            Err("entry point: no structure table")
        );
        let mut ep = smbios3(0x1000, 0x100);
        ep[6] = 0xff;
        assert_eq!(
            entry_point_len(EntryPoint::Smbios3, &ep),
            Err("entry point: length out of range")
        );
        assert!(parse_entry_point(EntryPoint::Smbios3, &ep[..0x10]).is_err());
    }

    #[test]
    fn a_huge_table_length_is_capped() {
        let ep = smbios3(0x1000, u32::MAX);
        assert_eq!(
            parse_entry_point(EntryPoint::Smbios3, &ep).unwrap().len,
            MAX_TABLE_BYTES
        );
    }
}
