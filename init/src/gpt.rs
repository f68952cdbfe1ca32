//! Editing a disk's GUID partition table in place: add a partition in the free
//! space after the last one, or grow the last one into space the disk gained
//! (a user ran `qemu-img resize`). Both headers and both entry arrays are
//! rewritten with fresh CRCs; the backup moves to the disk's new end; the
//! protective MBR's size follows. 512-byte logical sectors only (virtio, NVMe
//! and SCSI disks in QEMU and vSphere).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

const SECTOR: u64 = 512;
const SIGNATURE: &[u8; 8] = b"EFI PART";
const HEADER_SIZE: usize = 92;
const ENTRY_NAME_UNITS: usize = 36;
/// Partitions start on 1 MiB boundaries, as every partitioning tool does.
const ALIGN_SECTORS: u64 = 2048;
/// Growing by less than this is not worth rewriting the table.
const MIN_GROWTH_SECTORS: u64 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("{disk}: {what}: {source}")]
    Io {
        disk: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{disk}: {0}", .problem)]
    Invalid { disk: String, problem: String },
    #[error("{disk}: only {free_mib} MiB free after the last partition, {partition} needs {need_mib} MiB; grow the disk (e.g. qemu-img resize)")]
    NoRoom {
        disk: String,
        partition: String,
        free_mib: u64,
        need_mib: u64,
    },
}

/// The partition to make sure of.
pub struct PartitionSpec<'a> {
    pub name: &'a str,
    pub type_guid: [u8; 16],
    /// Refuse to create it smaller than this.
    pub min_bytes: u64,
    /// The attribute bits a partition made here gets (bits 48-63 are the type's).
    pub attributes: u64,
}

/// What [`ensure_partition`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created { number: u32, sectors: u64 },
    Grown { number: u32, from: u64, to: u64 },
    Unchanged { number: u32 },
}

impl Outcome {
    pub fn number(&self) -> u32 {
        match *self {
            Outcome::Created { number, .. }
            | Outcome::Grown { number, .. }
            | Outcome::Unchanged { number } => number,
        }
    }
}

/// What the table is read from and written to: a disk's device node, or bytes in
/// memory (tests, fuzz/).
pub trait Disk {
    fn size(&self) -> io::Result<u64>;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn sync(&self) -> io::Result<()>;
}

impl Disk for File {
    fn size(&self) -> io::Result<u64> {
        (&*self).seek(SeekFrom::End(0))
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }
    fn sync(&self) -> io::Result<()> {
        self.sync_all()
    }
}

impl Disk for RefCell<Vec<u8>> {
    fn size(&self) -> io::Result<u64> {
        Ok(self.borrow().len() as u64)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let bytes = self.borrow();
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = from
            .checked_add(buf.len())
            .and_then(|end| bytes.get(from..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut bytes = self.borrow_mut();
        let from = usize::try_from(offset).unwrap_or(usize::MAX);
        let dst = from
            .checked_add(buf.len())
            .and_then(|end| bytes.get_mut(from..end))
            .ok_or(io::ErrorKind::WriteZero)?;
        dst.copy_from_slice(buf);
        Ok(())
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}

/// A GUID in its on-disk byte order from its text form (first three fields
/// little-endian). Panics on a malformed literal: callers pass constants.
pub const fn guid(text: &str) -> [u8; 16] {
    let t = text.as_bytes();
    assert!(t.len() == 36, "GUID literal must be 36 characters");
    let mut hex = [0u8; 16];
    let (mut i, mut n) = (0, 0);
    while i < 36 {
        if t[i] == b'-' {
            i += 1;
            continue;
        }
        hex[n] = nibble(t[i]) << 4 | nibble(t[i + 1]);
        n += 1;
        i += 2;
    }
    [
        hex[3], hex[2], hex[1], hex[0], hex[5], hex[4], hex[7], hex[6], hex[8], hex[9], hex[10],
        hex[11], hex[12], hex[13], hex[14], hex[15],
    ]
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("bad hex digit in GUID literal"),
    }
}

struct Header {
    bytes: [u8; HEADER_SIZE],
}

impl Header {
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.bytes[at..at + 4].try_into().expect("4 bytes"))
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.bytes[at..at + 8].try_into().expect("8 bytes"))
    }
    fn set_u32(&mut self, at: usize, v: u32) {
        self.bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    fn set_u64(&mut self, at: usize, v: u64) {
        self.bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn seal(&mut self) {
        self.set_u32(16, 0);
        let crc = crc32fast::hash(&self.bytes);
        self.set_u32(16, crc);
    }
}

/// A disk's primary table, checked (signature, sizes, both CRCs).
struct Table {
    header: Header,
    entries: Vec<u8>,
    entry_size: usize,
    count: usize,
    /// The disk's size in sectors.
    sectors: u64,
}

impl Table {
    fn read(disk: &impl Disk, disk_name: &str) -> Result<Table, GptError> {
        let io = |what| {
            let disk = disk_name.to_string();
            move |source| GptError::Io { disk, what, source }
        };
        let invalid = |problem: String| GptError::Invalid {
            disk: disk_name.into(),
            problem,
        };
        let sectors = disk.size().map_err(io("find the disk's size"))? / SECTOR;
        let mut header = Header {
            bytes: [0; HEADER_SIZE],
        };
        disk.read_exact_at(&mut header.bytes, SECTOR)
            .map_err(io("read the GPT header"))?;
        if &header.bytes[..8] != SIGNATURE {
            return Err(invalid("no GPT header at LBA 1".into()));
        }
        if header.u32(12) as usize != HEADER_SIZE {
            return Err(invalid(format!(
                "GPT header size {} (expected {HEADER_SIZE})",
                header.u32(12)
            )));
        }
        let stored_crc = header.u32(16);
        let mut check = Header {
            bytes: header.bytes,
        };
        check.seal();
        if check.u32(16) != stored_crc {
            return Err(invalid("GPT header CRC mismatch".into()));
        }
        let entries_lba = header.u64(72);
        let count = header.u32(80) as usize;
        let entry_size = header.u32(84) as usize;
        if !(128..=4096).contains(&entry_size) || count == 0 || count * entry_size > 1 << 20 {
            return Err(invalid(format!(
                "unsupported GPT entry array: {count} entries of {entry_size} bytes"
            )));
        }
        // The array lies between the header and the first usable LBA, or rewriting the
        // table would overwrite the header or a partition.
        let entry_sectors = ((count * entry_size) as u64).div_ceil(SECTOR);
        let first_usable = header.u64(40);
        if entries_lba < 2
            || entries_lba.saturating_add(entry_sectors) > first_usable
            || first_usable > header.u64(48)
        {
            return Err(invalid(format!(
                "GPT entry array at LBA {entries_lba} ({entry_sectors} sectors) does not lie \
                 between the header and the first usable LBA {first_usable}"
            )));
        }
        let mut entries = vec![0u8; count * entry_size];
        let at = entries_lba
            .checked_mul(SECTOR)
            .ok_or_else(|| invalid(format!("GPT entries at LBA {entries_lba}")))?;
        disk.read_exact_at(&mut entries, at)
            .map_err(io("read the GPT entries"))?;
        if crc32fast::hash(&entries) != header.u32(88) {
            return Err(invalid("GPT partition entries CRC mismatch".into()));
        }
        Ok(Table {
            header,
            entries,
            entry_size,
            count,
            sectors,
        })
    }

    fn entry(&self, i: usize) -> &[u8] {
        &self.entries[i * self.entry_size..(i + 1) * self.entry_size]
    }
    fn entry_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.entries[i * self.entry_size..(i + 1) * self.entry_size]
    }
    fn used(&self, i: usize) -> bool {
        self.entry(i)[..16] != [0u8; 16]
    }
    fn range(&self, i: usize) -> (u64, u64) {
        let e = self.entry(i);
        (
            u64::from_le_bytes(e[32..40].try_into().expect("8 bytes")),
            u64::from_le_bytes(e[40..48].try_into().expect("8 bytes")),
        )
    }
    fn attributes(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.entry(i)[48..56].try_into().expect("8 bytes"))
    }
    fn named(&self, i: usize, name_units: &[u16]) -> bool {
        let units: Vec<u16> = self.entry(i)[56..128]
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        units == name_units
    }

    /// The one used entry named `name`; two or more are refused: which one is this
    /// node's would be a guess.
    fn find(&self, disk_name: &str, name: &str) -> Result<Option<usize>, GptError> {
        let units: Vec<u16> = name.encode_utf16().collect();
        let found: Vec<usize> = (0..self.count)
            .filter(|&i| self.used(i) && self.named(i, &units))
            .collect();
        match found[..] {
            [] => Ok(None),
            [i] => Ok(Some(i)),
            _ => Err(GptError::Invalid {
                disk: disk_name.into(),
                problem: format!(
                    "{} partitions are named {name:?} (numbers {}); refusing to guess which is this node's",
                    found.len(),
                    found
                        .iter()
                        .map(|i| (i + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// Writes both tables with `last_usable` and fresh CRCs, the backup at the disk's
    /// end, and the protective MBR's size; then syncs.
    fn write(
        &mut self,
        disk: &impl Disk,
        disk_name: &str,
        last_usable: u64,
    ) -> Result<(), GptError> {
        let io = |what| {
            let disk = disk_name.to_string();
            move |source| GptError::Io { disk, what, source }
        };
        let entry_sectors = (self.entries.len() as u64).div_ceil(SECTOR);
        let entries_lba = self.header.u64(72);
        let entries_crc = crc32fast::hash(&self.entries);
        let backup_lba = self.sectors.saturating_sub(1);
        let backup_entries_lba = backup_lba
            .checked_sub(entry_sectors)
            .filter(|&lba| lba > last_usable)
            .ok_or_else(|| GptError::Invalid {
                disk: disk_name.into(),
                problem: format!(
                    "no room for the backup table on a disk of {} sectors",
                    self.sectors
                ),
            })?;
        self.header.set_u64(48, last_usable);
        self.header.set_u32(88, entries_crc);
        let mut primary = Header {
            bytes: self.header.bytes,
        };
        primary.set_u64(24, 1);
        primary.set_u64(32, backup_lba);
        primary.set_u64(72, entries_lba);
        primary.seal();
        let mut backup = Header {
            bytes: self.header.bytes,
        };
        backup.set_u64(24, backup_lba);
        backup.set_u64(32, 1);
        backup.set_u64(72, backup_entries_lba);
        backup.seal();

        // Backup first: until the primary is rewritten, firmware still reads the old table.
        let pad = |bytes: &[u8]| {
            let mut sector = vec![0u8; SECTOR as usize];
            sector[..bytes.len()].copy_from_slice(bytes);
            sector
        };
        disk.write_all_at(&self.entries, backup_entries_lba * SECTOR)
            .map_err(io("write the backup GPT entries"))?;
        disk.write_all_at(&pad(&backup.bytes), backup_lba * SECTOR)
            .map_err(io("write the backup GPT header"))?;
        disk.write_all_at(&self.entries, entries_lba * SECTOR)
            .map_err(io("write the GPT entries"))?;
        disk.write_all_at(&pad(&primary.bytes), SECTOR)
            .map_err(io("write the GPT header"))?;
        update_protective_mbr(disk, self.sectors).map_err(io("update the protective MBR"))?;
        disk.sync().map_err(io("sync"))?;
        Ok(())
    }
}

/// Makes sure `disk` has exactly one partition named `spec.name`: creates it (with
/// `spec.attributes`) over all the free space after the last partition, or grows it
/// to the disk's end if it is the last one and the disk grew. Two partitions of that
/// name are refused. Everything is computed before the first write. Returns what it
/// did and the partition's attribute bits.
pub fn ensure_partition(
    disk: &impl Disk,
    disk_name: &str,
    spec: &PartitionSpec,
    unique_guid: [u8; 16],
) -> Result<(Outcome, u64), GptError> {
    let invalid = |problem: String| GptError::Invalid {
        disk: disk_name.into(),
        problem,
    };
    let mut table = Table::read(disk, disk_name)?;
    let sectors = table.sectors;
    let entry_sectors = (table.entries.len() as u64).div_ceil(SECTOR);
    let old_last_usable = table.header.u64(48);
    let Some(last_usable) = sectors.checked_sub(2 + entry_sectors) else {
        return Err(invalid(format!(
            "disk of {} bytes is too small",
            sectors * SECTOR
        )));
    };
    if last_usable < old_last_usable {
        return Err(invalid(format!(
            "the disk ({sectors} sectors) is smaller than its GPT says (last usable LBA {old_last_usable})"
        )));
    }
    let name_units: Vec<u16> = spec.name.encode_utf16().collect();
    if name_units.len() > ENTRY_NAME_UNITS {
        return Err(invalid(format!(
            "partition name {:?} is longer than 36 UTF-16 units",
            spec.name
        )));
    }
    let highest_end = (0..table.count)
        .filter(|&i| table.used(i))
        .map(|i| table.range(i).1)
        .max()
        .unwrap_or(table.header.u64(40).saturating_sub(1));

    let (outcome, attributes) = match table.find(disk_name, spec.name)? {
        Some(i) => {
            let (first, last) = table.range(i);
            let number = i as u32 + 1;
            let outcome = if last == highest_end
                && last_usable >= last.saturating_add(MIN_GROWTH_SECTORS)
                && first <= last
            {
                table.entry_mut(i)[40..48].copy_from_slice(&last_usable.to_le_bytes());
                Outcome::Grown {
                    number,
                    from: last - first + 1,
                    to: last_usable - first + 1,
                }
            } else {
                Outcome::Unchanged { number }
            };
            (outcome, table.attributes(i))
        }
        None => {
            let first = highest_end
                .saturating_add(1)
                .div_ceil(ALIGN_SECTORS)
                .saturating_mul(ALIGN_SECTORS);
            let need = spec.min_bytes.div_ceil(SECTOR);
            let free = (last_usable + 1).saturating_sub(first);
            if free < need.max(1) {
                return Err(GptError::NoRoom {
                    disk: disk_name.into(),
                    partition: spec.name.into(),
                    free_mib: (free * SECTOR) >> 20,
                    need_mib: spec.min_bytes >> 20,
                });
            }
            let Some(slot) = (0..table.count).find(|&i| !table.used(i)) else {
                return Err(invalid(format!(
                    "all {} GPT entries are in use",
                    table.count
                )));
            };
            let e = table.entry_mut(slot);
            e.fill(0);
            e[..16].copy_from_slice(&spec.type_guid);
            e[16..32].copy_from_slice(&unique_guid);
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last_usable.to_le_bytes());
            e[48..56].copy_from_slice(&spec.attributes.to_le_bytes());
            for (k, unit) in name_units.iter().enumerate() {
                e[56 + 2 * k..58 + 2 * k].copy_from_slice(&unit.to_le_bytes());
            }
            let outcome = Outcome::Created {
                number: slot as u32 + 1,
                sectors: last_usable - first + 1,
            };
            (outcome, spec.attributes)
        }
    };
    let moved = last_usable != old_last_usable;
    if matches!(outcome, Outcome::Unchanged { .. }) && !moved {
        return Ok((outcome, attributes));
    }
    table.write(disk, disk_name, last_usable)?;
    Ok((outcome, attributes))
}

/// Sets partition `number`'s attribute bits to `attributes` (both tables rewritten).
pub fn set_attributes(
    disk: &impl Disk,
    disk_name: &str,
    number: u32,
    attributes: u64,
) -> Result<(), GptError> {
    let mut table = Table::read(disk, disk_name)?;
    let i = (number as usize)
        .checked_sub(1)
        .filter(|&i| i < table.count && table.used(i))
        .ok_or_else(|| GptError::Invalid {
            disk: disk_name.into(),
            problem: format!("no partition number {number}"),
        })?;
    if table.attributes(i) == attributes {
        return Ok(());
    }
    table.entry_mut(i)[48..56].copy_from_slice(&attributes.to_le_bytes());
    let last_usable = table.header.u64(48);
    table.write(disk, disk_name, last_usable)
}

/// The protective MBR's 0xEE entry covers the disk (capped at 2^32 - 1 sectors).
fn update_protective_mbr(disk: &impl Disk, sectors: u64) -> std::io::Result<()> {
    let mut entry = [0u8; 16];
    disk.read_exact_at(&mut entry, 446)?;
    if entry[4] != 0xEE {
        return Ok(());
    }
    let size = sectors.saturating_sub(1).min(u32::MAX as u64) as u32;
    entry[12..16].copy_from_slice(&size.to_le_bytes());
    disk.write_all_at(&entry, 446)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const VAR: [u8; 16] = guid("4d21b016-b534-45c2-a9fb-5c16e091fd2d");

    fn tool(name: &str) -> bool {
        let found = Command::new(name).arg("--version").output().is_ok();
        if !found {
            harmony_test_support::skip(format!("tool {name} not installed"));
        }
        found
    }

    /// A disk image partitioned by sfdisk: two partitions, then free space.
    fn disk(mib: u64) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        File::create(&path).unwrap().set_len(mib << 20).unwrap();
        let script = "label: gpt\n\
            first-lba: 2048\n\
            start=2048, size=4096, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name=harmony-root\n\
            start=6144, size=2048, type=2c7357ed-ebd2-46d9-aec1-23d437ec2bf5, name=harmony-root-verity\n";
        let mut child = Command::new("sfdisk")
            .arg("-q")
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        (dir, path)
    }

    fn var(min_mib: u64) -> PartitionSpec<'static> {
        PartitionSpec {
            name: "harmony-var",
            type_guid: VAR,
            min_bytes: min_mib << 20,
            attributes: 0,
        }
    }

    fn open(path: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    }

    /// `sgdisk -v` checks both headers, both arrays and their CRCs.
    fn verify_clean(path: &std::path::Path) {
        let out = Command::new("sgdisk").arg("-v").arg(path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("No problems found"), "sgdisk -v: {text}");
    }

    fn sfdisk_json(path: &std::path::Path) -> serde_like::Table {
        let out = Command::new("sfdisk")
            .arg("--dump")
            .arg(path)
            .output()
            .unwrap();
        serde_like::parse(&String::from_utf8(out.stdout).unwrap())
    }

    /// Just enough of `sfdisk --dump` to compare partitions.
    mod serde_like {
        pub type Table = Vec<(String, u64, u64, String, String)>;
        pub fn parse(dump: &str) -> Table {
            dump.lines()
                .filter(|l| l.contains(" : start="))
                .map(|l| {
                    let field = |key: &str| {
                        l.split(',')
                            .find_map(|f| {
                                f.trim()
                                    .split_once('=')
                                    .filter(|(k, _)| k.trim().ends_with(key))
                            })
                            .map(|(_, v)| v.trim().trim_matches('"').to_string())
                            .unwrap_or_default()
                    };
                    (
                        l.split(" : ").next().unwrap().trim().to_string(),
                        field("start").parse().unwrap(),
                        field("size").parse().unwrap(),
                        field("type").to_lowercase(),
                        field("name"),
                    )
                })
                .collect()
        }
    }

    #[test]
    fn creates_the_partition_in_free_space_and_sgdisk_agrees() {
        if !tool("sfdisk") || !tool("sgdisk") {
            return;
        }
        let (_dir, path) = disk(64);
        let (outcome, _) = ensure_partition(&open(&path), "disk.raw", &var(16), [7; 16]).unwrap();
        let sectors = (64 << 20) / 512 - 33 - 8192;
        assert_eq!(outcome, Outcome::Created { number: 3, sectors });
        verify_clean(&path);
        let table = sfdisk_json(&path);
        assert_eq!(table.len(), 3, "{table:?}");
        let p = &table[2];
        assert_eq!(
            (p.1, p.2, p.3.as_str(), p.4.as_str()),
            (
                8192,
                sectors,
                "4d21b016-b534-45c2-a9fb-5c16e091fd2d",
                "harmony-var"
            )
        );

        // Second boot: nothing to do, nothing written.
        let before = std::fs::read(&path).unwrap();
        let again = ensure_partition(&open(&path), "disk.raw", &var(16), [9; 16]).unwrap();
        assert_eq!(again, (Outcome::Unchanged { number: 3 }, 0));
        assert!(std::fs::read(&path).unwrap() == before);
    }

    #[test]
    fn grows_the_last_partition_and_moves_the_backup_when_the_disk_grew() {
        if !tool("sfdisk") || !tool("sgdisk") {
            return;
        }
        let (_dir, path) = disk(64);
        ensure_partition(&open(&path), "disk.raw", &var(16), [7; 16]).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(96 << 20)
            .unwrap();
        let (outcome, _) = ensure_partition(&open(&path), "disk.raw", &var(16), [9; 16]).unwrap();
        let to = (96 << 20) / 512 - 33 - 8192;
        assert_eq!(
            outcome,
            Outcome::Grown {
                number: 3,
                from: (64 << 20) / 512 - 33 - 8192,
                to
            }
        );
        verify_clean(&path);
        assert_eq!(sfdisk_json(&path)[2].2, to);
    }

    #[test]
    fn refuses_when_there_is_no_room_and_writes_nothing() {
        if !tool("sfdisk") {
            return;
        }
        let (_dir, path) = disk(8);
        let before = std::fs::read(&path).unwrap();
        let e = ensure_partition(&open(&path), "disk.raw", &var(64), [7; 16]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "disk.raw: only 3 MiB free after the last partition, harmony-var needs 64 MiB; grow the disk (e.g. qemu-img resize)"
        );
        assert!(std::fs::read(&path).unwrap() == before);
    }

    #[test]
    fn rejects_a_disk_without_gpt_or_with_a_bad_crc() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blank");
        File::create(&path).unwrap().set_len(1 << 20).unwrap();
        let e = ensure_partition(&open(&path), "blank", &var(1), [7; 16]).unwrap_err();
        assert_eq!(e.to_string(), "blank: no GPT header at LBA 1");

        if !tool("sfdisk") {
            return;
        }
        let (_d, path) = disk(16);
        let f = open(&path);
        FileExt::write_all_at(&f, b"X", 512 + 60).unwrap(); // inside the disk GUID
        let e = ensure_partition(&f, "disk.raw", &var(1), [7; 16]).unwrap_err();
        assert_eq!(e.to_string(), "disk.raw: GPT header CRC mismatch");
    }

    /// A disk partitioned by sfdisk from `script`'s partition lines.
    fn disk_with(mib: u64, lines: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        File::create(&path).unwrap().set_len(mib << 20).unwrap();
        let mut child = Command::new("sfdisk")
            .arg("-q")
            .arg(&path)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let script = format!("label: gpt\nfirst-lba: 2048\n{lines}");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
        (dir, path)
    }

    #[test]
    fn two_partitions_of_the_name_are_refused_and_nothing_is_written() {
        if !tool("sfdisk") {
            return;
        }
        let (_dir, path) = disk_with(
            32,
            "start=2048, size=2048, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name=harmony-root\n\
             start=4096, size=4096, type=4d21b016-b534-45c2-a9fb-5c16e091fd2d, name=harmony-var\n\
             start=8192, size=4096, type=4d21b016-b534-45c2-a9fb-5c16e091fd2d, name=harmony-var\n",
        );
        let before = std::fs::read(&path).unwrap();
        let e = ensure_partition(&open(&path), "/dev/vda", &var(1), [7; 16]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/vda: 2 partitions are named \"harmony-var\" (numbers 2, 3); refusing to guess which is this node's"
        );
        assert!(std::fs::read(&path).unwrap() == before);
    }

    #[test]
    fn a_created_partition_carries_the_spec_s_attributes_until_they_are_cleared() {
        if !tool("sfdisk") || !tool("sgdisk") {
            return;
        }
        let (_dir, path) = disk(64);
        let spec = PartitionSpec {
            attributes: 1 << 55,
            ..var(16)
        };
        let (outcome, attributes) =
            ensure_partition(&open(&path), "disk.raw", &spec, [7; 16]).unwrap();
        assert_eq!((outcome.number(), attributes), (3, 1 << 55));
        // sfdisk shows type-specific bits as GUID:N.
        let dump = String::from_utf8(
            Command::new("sfdisk")
                .arg("--dump")
                .arg(&path)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(dump.contains("attrs=\"GUID:55\""), "{dump}");
        // The next boot reads the bit back.
        let (_, attributes) = ensure_partition(&open(&path), "disk.raw", &spec, [9; 16]).unwrap();
        assert_eq!(attributes, 1 << 55);
        set_attributes(&open(&path), "disk.raw", 3, 0).unwrap();
        verify_clean(&path);
        let (again, attributes) =
            ensure_partition(&open(&path), "disk.raw", &spec, [9; 16]).unwrap();
        assert_eq!((again, attributes), (Outcome::Unchanged { number: 3 }, 0));
        assert!(set_attributes(&open(&path), "disk.raw", 9, 0).is_err());
    }

    #[test]
    fn a_table_in_memory_reads_and_writes_like_the_disk() {
        if !tool("sfdisk") {
            return;
        }
        let (_dir, path) = disk(64);
        let memory = RefCell::new(std::fs::read(&path).unwrap());
        let on_file = ensure_partition(&open(&path), "disk.raw", &var(16), [7; 16]).unwrap();
        let in_memory = ensure_partition(&memory, "disk.raw", &var(16), [7; 16]).unwrap();
        assert_eq!(on_file, in_memory);
        assert!(memory.into_inner() == std::fs::read(&path).unwrap());
        // Short or garbage bytes are an error, never a panic.
        for bytes in [vec![], vec![0xff; 1000], {
            let mut v = std::fs::read(&path).unwrap();
            v.truncate(40 << 10);
            v
        }] {
            let _ = ensure_partition(&RefCell::new(bytes), "m", &var(1), [1; 16]);
        }
    }

    #[test]
    fn an_entry_array_over_the_header_or_the_partitions_is_refused() {
        if !tool("sfdisk") {
            return;
        }
        let (_d, path) = disk(16);
        for (entries_lba, problem) in [(1u64, "at LBA 1"), (4096, "at LBA 4096")] {
            let f = open(&path);
            let mut header = [0u8; HEADER_SIZE];
            FileExt::read_exact_at(&f, &mut header, SECTOR).unwrap();
            let mut h = Header { bytes: header };
            h.set_u64(72, entries_lba);
            h.seal();
            FileExt::write_all_at(&f, &h.bytes, SECTOR).unwrap();
            let e = ensure_partition(&f, "disk.raw", &var(1), [7; 16]).unwrap_err();
            assert!(
                e.to_string().contains(problem) && e.to_string().contains("first usable LBA"),
                "{e}"
            );
        }
    }

    #[test]
    fn guid_text_to_disk_order() {
        assert_eq!(
            guid("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"),
            [
                0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d, 0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84,
                0xb7, 0x09
            ]
        );
    }
}
