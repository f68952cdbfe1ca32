//! GUID partition tables (UEFI spec 2.10, §5): the protective MBR, the primary header
//! and entry array at the start of the disk, the backup array and header at its end.
//! 512-byte sectors, 128 entries of 128 bytes, CRC32 over header and array.

use sha2::{Digest, Sha256};

pub const SECTOR: u64 = 512;
const ENTRY_COUNT: u32 = 128;
const ENTRY_SIZE: u32 = 128;
const HEADER_SIZE: u32 = 92;
/// Sectors the entry array takes: 128 × 128 bytes.
pub const ENTRY_SECTORS: u64 = (ENTRY_COUNT * ENTRY_SIZE) as u64 / SECTOR;
/// LBA 0 (MBR) + LBA 1 (header) + the entry array.
pub const PRIMARY_SECTORS: u64 = 2 + ENTRY_SECTORS;
/// The entry array + the backup header in the last LBA.
pub const BACKUP_SECTORS: u64 = ENTRY_SECTORS + 1;
/// A partition name holds at most 36 UTF-16 code units.
pub const MAX_NAME_UNITS: usize = 36;

/// A GUID in its on-disk (mixed-endian) byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

/// EFI System Partition.
pub const ESP_TYPE: Guid = Guid::from_fields(
    0xC12A7328,
    0xF81F,
    0x11D2,
    [0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B],
);

impl Guid {
    /// From the textual fields `d1-d2-d3-d4[0..2]-d4[2..8]`.
    pub const fn from_fields(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }

    /// A version-4-shaped GUID from a hash of `parts` (length-prefixed, so the split
    /// between parts counts): the same inputs always name the same disk or partition.
    pub fn derived(parts: &[&[u8]]) -> Guid {
        let mut h = Sha256::new();
        h.update(b"harmony-gpt-guid\0");
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        let digest = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        // Version 4 (in d3's high nibble, stored little-endian) and the RFC 4122 variant.
        b[7] = (b[7] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Guid(b)
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9]
        )?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02X}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptPartition {
    /// At most 36 UTF-16 units; Linux shows it as PARTNAME in sysfs/uevent.
    pub name: String,
    pub type_guid: Guid,
    pub unique_guid: Guid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GptError {
    #[error("partition {name:?}: name longer than {MAX_NAME_UNITS} UTF-16 units")]
    LongName { name: String },
    #[error("partition {name:?}: sectors {first}..={last} are outside the usable {usable_first}..={usable_last}, overlap another, or are empty")]
    BadRange {
        name: String,
        first: u64,
        last: u64,
        usable_first: u64,
        usable_last: u64,
    },
    #[error("more than {ENTRY_COUNT} partitions")]
    TooMany,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpt {
    pub disk_guid: Guid,
    /// Size of the whole disk in sectors.
    pub disk_sectors: u64,
    pub partitions: Vec<GptPartition>,
}

impl Gpt {
    pub fn first_usable_lba(&self) -> u64 {
        PRIMARY_SECTORS
    }

    pub fn last_usable_lba(&self) -> u64 {
        self.disk_sectors - BACKUP_SECTORS - 1
    }

    fn last_lba(&self) -> u64 {
        self.disk_sectors - 1
    }

    pub fn validate(&self) -> Result<(), GptError> {
        if self.partitions.len() > ENTRY_COUNT as usize {
            return Err(GptError::TooMany);
        }
        let mut taken: Vec<(u64, u64)> = Vec::new();
        for p in &self.partitions {
            if p.name.encode_utf16().count() > MAX_NAME_UNITS {
                return Err(GptError::LongName {
                    name: p.name.clone(),
                });
            }
            let overlaps = taken
                .iter()
                .any(|&(a, b)| p.first_lba <= b && a <= p.last_lba);
            if p.first_lba > p.last_lba
                || p.first_lba < self.first_usable_lba()
                || p.last_lba > self.last_usable_lba()
                || overlaps
            {
                return Err(GptError::BadRange {
                    name: p.name.clone(),
                    first: p.first_lba,
                    last: p.last_lba,
                    usable_first: self.first_usable_lba(),
                    usable_last: self.last_usable_lba(),
                });
            }
            taken.push((p.first_lba, p.last_lba));
        }
        Ok(())
    }

    /// LBA 0: one partition of type 0xEE over the whole disk (up to 2 TiB), so MBR-only
    /// tools see the disk as in use.
    pub fn protective_mbr(&self) -> [u8; 512] {
        let mut mbr = [0u8; 512];
        let entry = &mut mbr[446..462];
        entry[1..4].copy_from_slice(&[0x00, 0x02, 0x00]); // CHS of LBA 1
        entry[4] = 0xEE;
        entry[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
        entry[8..12].copy_from_slice(&1u32.to_le_bytes());
        let size = (self.disk_sectors - 1).min(u64::from(u32::MAX)) as u32;
        entry[12..16].copy_from_slice(&size.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        mbr
    }

    fn entry_array(&self) -> Vec<u8> {
        let mut out = vec![0u8; (ENTRY_COUNT * ENTRY_SIZE) as usize];
        for (i, p) in self.partitions.iter().enumerate() {
            let e = &mut out[i * ENTRY_SIZE as usize..(i + 1) * ENTRY_SIZE as usize];
            e[0..16].copy_from_slice(&p.type_guid.0);
            e[16..32].copy_from_slice(&p.unique_guid.0);
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            e[48..56].copy_from_slice(&p.attributes.to_le_bytes());
            for (j, unit) in p.name.encode_utf16().take(MAX_NAME_UNITS).enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
            }
        }
        out
    }

    fn header(
        &self,
        my_lba: u64,
        alternate_lba: u64,
        entries_lba: u64,
        entries_crc: u32,
    ) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[0..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&HEADER_SIZE.to_le_bytes());
        // 16..20: header CRC, computed last over the 92 bytes with this field zero.
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&alternate_lba.to_le_bytes());
        h[40..48].copy_from_slice(&self.first_usable_lba().to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable_lba().to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.0);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&ENTRY_COUNT.to_le_bytes());
        h[84..88].copy_from_slice(&ENTRY_SIZE.to_le_bytes());
        h[88..92].copy_from_slice(&entries_crc.to_le_bytes());
        let crc = crc32fast::hash(&h[..HEADER_SIZE as usize]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The first PRIMARY_SECTORS sectors: protective MBR, primary header, entry array.
    pub fn primary(&self) -> Result<Vec<u8>, GptError> {
        self.validate()?;
        let entries = self.entry_array();
        let crc = crc32fast::hash(&entries);
        let mut out = Vec::with_capacity((PRIMARY_SECTORS * SECTOR) as usize);
        out.extend_from_slice(&self.protective_mbr());
        out.extend_from_slice(&self.header(1, self.last_lba(), 2, crc));
        out.extend_from_slice(&entries);
        Ok(out)
    }

    /// The last BACKUP_SECTORS sectors: the entry array again, then the backup header.
    pub fn backup(&self) -> Result<Vec<u8>, GptError> {
        self.validate()?;
        let entries = self.entry_array();
        let crc = crc32fast::hash(&entries);
        let entries_lba = self.last_lba() - ENTRY_SECTORS;
        let mut out = entries;
        out.extend_from_slice(&self.header(self.last_lba(), 1, entries_lba, crc));
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A reader that checks what a firmware checks: signature, header CRC, entry-array CRC,
    /// and that both copies agree. Returns the partitions as written.
    pub(crate) fn read_gpt(disk: &[u8]) -> Gpt {
        let sector = |lba: u64| &disk[(lba * SECTOR) as usize..((lba + 1) * SECTOR) as usize];
        assert_eq!(&sector(0)[510..], &[0x55, 0xAA], "MBR signature");
        assert_eq!(sector(0)[446 + 4], 0xEE, "protective MBR type");
        let disk_sectors = disk.len() as u64 / SECTOR;
        let parse = |lba: u64| {
            let h = sector(lba);
            assert_eq!(&h[0..8], b"EFI PART");
            let size = u32::from_le_bytes(h[12..16].try_into().unwrap()) as usize;
            let mut copy = h[..size].to_vec();
            copy[16..20].fill(0);
            assert_eq!(
                crc32fast::hash(&copy),
                u32::from_le_bytes(h[16..20].try_into().unwrap()),
                "header CRC at LBA {lba}"
            );
            let u64_at = |o: usize| u64::from_le_bytes(h[o..o + 8].try_into().unwrap());
            assert_eq!(u64_at(24), lba, "MyLBA");
            let entries_lba = u64_at(72);
            let entries = &disk[(entries_lba * SECTOR) as usize
                ..((entries_lba + ENTRY_SECTORS) * SECTOR) as usize];
            assert_eq!(
                crc32fast::hash(entries),
                u32::from_le_bytes(h[88..92].try_into().unwrap()),
                "entries CRC"
            );
            let mut partitions = Vec::new();
            for e in entries.chunks(128) {
                if e[0..16].iter().all(|&b| b == 0) {
                    continue;
                }
                let units: Vec<u16> = e[56..128]
                    .chunks(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .take_while(|&u| u != 0)
                    .collect();
                partitions.push(GptPartition {
                    name: String::from_utf16(&units).unwrap(),
                    type_guid: Guid(e[0..16].try_into().unwrap()),
                    unique_guid: Guid(e[16..32].try_into().unwrap()),
                    first_lba: u64::from_le_bytes(e[32..40].try_into().unwrap()),
                    last_lba: u64::from_le_bytes(e[40..48].try_into().unwrap()),
                    attributes: u64::from_le_bytes(e[48..56].try_into().unwrap()),
                });
            }
            (
                u64_at(32),
                Gpt {
                    disk_guid: Guid(h[56..72].try_into().unwrap()),
                    disk_sectors,
                    partitions,
                },
            )
        };
        let (alternate, primary) = parse(1);
        assert_eq!(
            alternate,
            disk_sectors - 1,
            "AlternateLBA is the last sector"
        );
        let (back, backup) = parse(disk_sectors - 1);
        assert_eq!(back, 1);
        assert_eq!(primary, backup, "primary and backup tables differ");
        primary
    }

    pub(crate) fn sample(disk_sectors: u64) -> Gpt {
        Gpt {
            disk_guid: Guid::derived(&[b"disk"]),
            disk_sectors,
            partitions: vec![
                GptPartition {
                    name: "ESP".into(),
                    type_guid: ESP_TYPE,
                    unique_guid: Guid::derived(&[b"esp"]),
                    first_lba: 2048,
                    last_lba: 4095,
                    attributes: 0,
                },
                GptPartition {
                    name: "harmony-root-ä".into(),
                    type_guid: Guid::from_fields(
                        0x4F68BCE3,
                        0xE8CD,
                        0x4DB1,
                        [0x96, 0xE7, 0xFB, 0xCA, 0xF9, 0x84, 0xB7, 0x09],
                    ),
                    unique_guid: Guid::derived(&[b"root"]),
                    first_lba: 4096,
                    last_lba: 6143,
                    attributes: 1 << 60,
                },
            ],
        }
    }

    fn disk_of(gpt: &Gpt) -> Vec<u8> {
        let mut disk = vec![0u8; (gpt.disk_sectors * SECTOR) as usize];
        let primary = gpt.primary().unwrap();
        disk[..primary.len()].copy_from_slice(&primary);
        let backup = gpt.backup().unwrap();
        let at = disk.len() - backup.len();
        disk[at..].copy_from_slice(&backup);
        disk
    }

    #[test]
    fn tables_read_back_with_valid_crcs() {
        let gpt = sample(8192);
        assert_eq!(read_gpt(&disk_of(&gpt)), gpt);
    }

    #[test]
    fn guid_text_is_the_usual_form() {
        assert_eq!(ESP_TYPE.to_string(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        let g = Guid::derived(&[b"a", b"b"]).to_string();
        assert_eq!(&g[14..15], "4", "version 4: {g}");
        assert!("89AB".contains(&g[19..20]), "variant: {g}");
        assert_ne!(Guid::derived(&[b"a", b"b"]), Guid::derived(&[b"ab"]));
    }

    #[test]
    fn sfdisk_and_sgdisk_agree() {
        let gpt = sample(8192);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.raw");
        std::fs::write(&path, disk_of(&gpt)).unwrap();
        match std::process::Command::new("sfdisk")
            .arg("--dump")
            .arg(&path)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(text.contains("label: gpt"), "{text}");
                assert!(
                    text.contains(&format!("label-id: {}", gpt.disk_guid)),
                    "{text}"
                );
                assert!(
                    text.contains(&format!(
                        "start=        2048, size=        2048, type={}, uuid={}, name=\"ESP\"",
                        ESP_TYPE, gpt.partitions[0].unique_guid
                    )),
                    "{text}"
                );
                // sfdisk escapes the UTF-8 of a name read back from UTF-16.
                assert!(
                    text.contains(r#"name="harmony-root-\xc3\xa4", attrs="GUID:60""#),
                    "{text}"
                );
            }
            Err(_) => harmony_test_support::skip("tool sfdisk not installed: Debian package fdisk"),
        }
        match std::process::Command::new("sgdisk")
            .arg("-v")
            .arg(&path)
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(out.status.success(), "{text}");
                assert!(text.contains("No problems found"), "{text}");
            }
            Err(_) => harmony_test_support::skip("tool sgdisk not installed: Debian package gdisk"),
        }
    }

    #[test]
    fn overlapping_or_misplaced_partitions_are_refused() {
        let mut gpt = sample(8192);
        gpt.partitions[1].first_lba = 4000;
        assert!(matches!(gpt.primary(), Err(GptError::BadRange { .. })));
        let mut gpt = sample(8192);
        gpt.partitions[1].last_lba = 8192 - 33;
        assert!(matches!(gpt.backup(), Err(GptError::BadRange { .. })));
        let mut gpt = sample(8192);
        gpt.partitions[0].name = "x".repeat(37);
        assert!(matches!(gpt.primary(), Err(GptError::LongName { .. })));
    }
}
