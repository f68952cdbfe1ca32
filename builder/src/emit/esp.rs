//! The EFI System Partition: a FAT32 filesystem written in memory (no mkfs, no mount),
//! holding the files firmware boots, e.g. `EFI/BOOT/BOOTX64.EFI`.
//!
//! Written here rather than with the `fatfs` crate: fatfs 0.3.6 gives the `.` and `..`
//! entries of every new directory long-name entries and points `..` of a top-level
//! directory at cluster 2 instead of 0, which `fsck.vfat` reports as corruption. An ESP
//! needs little: 8.3 names, a few directories, files in contiguous clusters. The layout
//! follows Microsoft's FAT specification (FAT32: 32 reserved sectors, FSInfo in sector
//! 1, backup boot sector in 6, two FATs, root directory at cluster 2). Volume id, label
//! and every timestamp come from the inputs, so the same files give the same bytes.
//! Tests read it back with fatfs, `fsck.vfat` and mtools.

use std::collections::BTreeMap;

const SECTOR: usize = 512;
const MIB: u64 = 1 << 20;
const RESERVED_SECTORS: u32 = 32;
const FAT_COUNT: u32 = 2;
const DIR_ENTRY: usize = 32;
const END_OF_CHAIN: u32 = 0x0FFF_FFFF;
const MEDIA: u8 = 0xF8;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIRECTORY: u8 = 0x10;
const ATTR_ARCHIVE: u8 = 0x20;
/// FAT32 needs at least 65525 clusters; one 512-byte sector per cluster at 64 MiB gives
/// about 130 000. The UEFI spec asks for FAT32 on disks.
pub const MIN_ESP_BYTES: u64 = 64 * MIB;
const MIN_CLUSTERS: u32 = 65_525;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EspError {
    #[error("EFI system partition: {path}: {why}")]
    BadPath { path: String, why: String },
    #[error("EFI system partition: {size} bytes cannot hold a FAT32 filesystem (at least {MIN_ESP_BYTES})")]
    TooSmall { size: u64 },
    #[error("EFI system partition: the files need {needed} clusters, the filesystem has {free}")]
    Full { needed: u64, free: u64 },
}

/// The size an ESP needs for files of `payload` bytes: room for the FATs, directories
/// and slack, rounded up to a MiB, at least MIN_ESP_BYTES.
pub fn esp_size(payload: u64) -> u64 {
    let needed = payload + payload / 16 + 4 * MIB;
    needed.div_ceil(MIB).max(MIN_ESP_BYTES / MIB) * MIB
}

/// An 8.3 name as stored (space-padded, upper case) and the NT case flags that make
/// Linux and Windows show an all-lower-case base or extension in lower case.
fn short_name(part: &str, path: &str) -> Result<([u8; 11], u8), EspError> {
    let bad = |why: &str| EspError::BadPath {
        path: path.to_string(),
        why: format!("`{part}`: {why}"),
    };
    let (base, ext) = match part.rsplit_once('.') {
        Some((b, e)) => (b, e),
        None => (part, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || (part.contains('.') && ext.is_empty())
    {
        return Err(bad("not an 8.3 name (long names are not supported)"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "$%'-_@~`!(){}^#&".contains(c);
    let mut flags = 0;
    for (text, lower_flag) in [(base, 0x08), (ext, 0x10)] {
        if !text.chars().all(allowed) {
            return Err(bad(
                "only letters, digits and $%'-_@~`!(){}^#& fit an 8.3 name",
            ));
        }
        let has_lower = text.chars().any(|c| c.is_ascii_lowercase());
        let has_upper = text.chars().any(|c| c.is_ascii_uppercase());
        if has_lower && has_upper {
            return Err(bad("mixed case needs a long name (not supported)"));
        }
        if has_lower {
            flags |= lower_flag;
        }
    }
    let mut name = [b' '; 11];
    for (i, b) in base.bytes().enumerate() {
        name[i] = b.to_ascii_uppercase();
    }
    for (i, b) in ext.bytes().enumerate() {
        name[8 + i] = b.to_ascii_uppercase();
    }
    Ok((name, flags))
}

#[derive(Default)]
struct Dir<'a> {
    dirs: BTreeMap<String, Dir<'a>>,
    files: BTreeMap<String, &'a [u8]>,
}

/// FAT date and time (local time; we write UTC) from SOURCE_DATE_EPOCH, clamped to
/// 1980..=2107, 2-second resolution.
fn fat_timestamp(epoch: i64) -> (u16, u16) {
    let epoch = epoch.clamp(315_532_800, 4_354_819_198);
    let (days, secs) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (year, month, day) = ignition::rfc3339::civil_from_days(days);
    let date = (((year - 1980) << 9) | (month << 5) | day) as u16;
    let time = (((secs / 3600) << 11) | ((secs / 60 % 60) << 5) | ((secs % 60) / 2)) as u16;
    (date, time)
}

struct Geometry {
    sectors_per_cluster: u32,
    fat_sectors: u32,
    clusters: u32,
}

impl Geometry {
    fn new(total_sectors: u32) -> Result<Geometry, EspError> {
        // A power of two that keeps the cluster count at least twice FAT32's minimum.
        let mut sectors_per_cluster = 1;
        while sectors_per_cluster < 64
            && total_sectors / (sectors_per_cluster * 2) >= 2 * MIN_CLUSTERS
        {
            sectors_per_cluster *= 2;
        }
        let estimate = (total_sectors - RESERVED_SECTORS) / sectors_per_cluster;
        let fat_sectors = ((estimate + 2) * 4).div_ceil(SECTOR as u32);
        let data_sectors = total_sectors.saturating_sub(RESERVED_SECTORS + FAT_COUNT * fat_sectors);
        let clusters = data_sectors / sectors_per_cluster;
        if clusters < MIN_CLUSTERS {
            return Err(EspError::TooSmall {
                size: u64::from(total_sectors) * SECTOR as u64,
            });
        }
        Ok(Geometry {
            sectors_per_cluster,
            fat_sectors,
            clusters,
        })
    }

    fn cluster_bytes(&self) -> usize {
        self.sectors_per_cluster as usize * SECTOR
    }

    fn cluster_offset(&self, cluster: u32) -> usize {
        let data = (RESERVED_SECTORS + FAT_COUNT * self.fat_sectors) as usize * SECTOR;
        data + (cluster - 2) as usize * self.cluster_bytes()
    }
}

struct Writer<'g> {
    image: Vec<u8>,
    geometry: &'g Geometry,
    fat: Vec<u32>,
    next_free: u32,
    date: u16,
    time: u16,
}

impl Writer<'_> {
    /// A contiguous chain of `count` clusters (at least one); its first cluster.
    fn allocate(&mut self, count: usize) -> Result<u32, EspError> {
        let count = count.max(1) as u32;
        let first = self.next_free;
        let free = u64::from(self.geometry.clusters + 2 - first);
        if u64::from(count) > free {
            return Err(EspError::Full {
                needed: u64::from(count),
                free,
            });
        }
        for c in first..first + count {
            self.fat[c as usize] = if c + 1 == first + count {
                END_OF_CHAIN
            } else {
                c + 1
            };
        }
        self.next_free = first + count;
        Ok(first)
    }

    fn entry(
        &self,
        name: [u8; 11],
        case_flags: u8,
        attr: u8,
        cluster: u32,
        size: u32,
    ) -> [u8; DIR_ENTRY] {
        let mut e = [0u8; DIR_ENTRY];
        e[0..11].copy_from_slice(&name);
        e[11] = attr;
        e[12] = case_flags;
        e[14..16].copy_from_slice(&self.time.to_le_bytes());
        e[16..18].copy_from_slice(&self.date.to_le_bytes());
        e[18..20].copy_from_slice(&self.date.to_le_bytes());
        e[20..22].copy_from_slice(&((cluster >> 16) as u16).to_le_bytes());
        e[22..24].copy_from_slice(&self.time.to_le_bytes());
        e[24..26].copy_from_slice(&self.date.to_le_bytes());
        e[26..28].copy_from_slice(&(cluster as u16).to_le_bytes());
        e[28..32].copy_from_slice(&size.to_le_bytes());
        e
    }

    fn write_at_cluster(&mut self, cluster: u32, bytes: &[u8]) {
        let at = self.geometry.cluster_offset(cluster);
        self.image[at..at + bytes.len()].copy_from_slice(bytes);
    }

    /// Write `dir` into the clusters starting at `own` (already allocated), then its
    /// children. `parent` is 0 for the root's children, as the spec wants for `..`.
    fn write_dir(
        &mut self,
        dir: &Dir,
        own: u32,
        parent: Option<u32>,
        label: Option<[u8; 11]>,
        path: &str,
    ) -> Result<(), EspError> {
        let mut entries: Vec<[u8; DIR_ENTRY]> = Vec::new();
        if let Some(parent) = parent {
            let mut dot = [b' '; 11];
            dot[0] = b'.';
            entries.push(self.entry(dot, 0, ATTR_DIRECTORY, own, 0));
            let mut dotdot = dot;
            dotdot[1] = b'.';
            entries.push(self.entry(dotdot, 0, ATTR_DIRECTORY, parent, 0));
        }
        if let Some(label) = label {
            entries.push(self.entry(label, 0, ATTR_VOLUME_ID, 0, 0));
        }
        let mut children = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (name, sub) in &dir.dirs {
            let child_path = format!("{path}/{name}");
            let (short, flags) = short_name(name, &child_path)?;
            if !seen.insert(short) {
                return Err(EspError::BadPath {
                    path: child_path,
                    why: "two names differ only in case".into(),
                });
            }
            let slots = sub.dirs.len() + sub.files.len() + 2;
            let cluster =
                self.allocate((slots * DIR_ENTRY).div_ceil(self.geometry.cluster_bytes()))?;
            entries.push(self.entry(short, flags, ATTR_DIRECTORY, cluster, 0));
            children.push((sub, cluster, child_path));
        }
        for (name, bytes) in &dir.files {
            let file_path = format!("{path}/{name}");
            let (short, flags) = short_name(name, &file_path)?;
            if !seen.insert(short) {
                return Err(EspError::BadPath {
                    path: file_path,
                    why: "two names differ only in case".into(),
                });
            }
            let size = u32::try_from(bytes.len()).map_err(|_| EspError::BadPath {
                path: file_path.clone(),
                why: "larger than FAT's 4 GiB file limit".into(),
            })?;
            let cluster = if bytes.is_empty() {
                0
            } else {
                let c = self.allocate(bytes.len().div_ceil(self.geometry.cluster_bytes()))?;
                self.write_at_cluster(c, bytes);
                c
            };
            entries.push(self.entry(short, flags, ATTR_ARCHIVE, cluster, size));
        }
        self.write_at_cluster(own, &entries.concat());
        for (sub, cluster, child_path) in children {
            // `..` of a top-level directory names the root as cluster 0.
            let me = if parent.is_none() { 0 } else { own };
            self.write_dir(sub, cluster, Some(me), None, &child_path)?;
        }
        Ok(())
    }
}

/// A FAT32 image of `size` bytes holding `files` (`/`-separated 8.3 paths; directories
/// are made as needed). `hidden_sectors` is the partition's first LBA on its disk.
pub fn esp_image(
    files: &[(&str, &[u8])],
    size: u64,
    volume_id: u32,
    label: &str,
    hidden_sectors: u32,
    source_date_epoch: i64,
) -> Result<Vec<u8>, EspError> {
    let total_sectors =
        u32::try_from(size / SECTOR as u64).map_err(|_| EspError::TooSmall { size })?;
    if size < MIN_ESP_BYTES {
        return Err(EspError::TooSmall { size });
    }
    let (label_name, _) = short_name(label, label)?;
    let geometry = Geometry::new(total_sectors)?;

    let mut root = Dir::default();
    for (path, bytes) in files {
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some(name) = parts.pop() else {
            return Err(EspError::BadPath {
                path: path.to_string(),
                why: "empty".into(),
            });
        };
        let mut dir = &mut root;
        for p in parts {
            dir = dir.dirs.entry(p.to_string()).or_default();
        }
        if dir.files.insert(name.to_string(), bytes).is_some() || dir.dirs.contains_key(name) {
            return Err(EspError::BadPath {
                path: path.to_string(),
                why: "given twice".into(),
            });
        }
    }

    let (date, time) = fat_timestamp(source_date_epoch);
    let mut w = Writer {
        image: vec![0u8; total_sectors as usize * SECTOR],
        geometry: &geometry,
        fat: vec![0u32; geometry.clusters as usize + 2],
        next_free: 2,
        date,
        time,
    };
    w.fat[0] = 0x0FFF_FF00 | u32::from(MEDIA);
    w.fat[1] = END_OF_CHAIN;
    let root_slots = root.dirs.len() + root.files.len() + 1;
    let root_cluster = w.allocate((root_slots * DIR_ENTRY).div_ceil(geometry.cluster_bytes()))?;
    w.write_dir(&root, root_cluster, None, Some(label_name), "")?;

    let free = geometry.clusters + 2 - w.next_free;
    let mut image = std::mem::take(&mut w.image);
    let boot = boot_sector(
        &geometry,
        total_sectors,
        volume_id,
        &label_name,
        hidden_sectors,
    );
    let fsinfo = fs_info(free, w.next_free);
    for base in [0, 6] {
        image[base * SECTOR..(base + 1) * SECTOR].copy_from_slice(&boot);
        image[(base + 1) * SECTOR..(base + 2) * SECTOR].copy_from_slice(&fsinfo);
        // Sector 2 of the boot record carries only the signature.
        image[(base + 3) * SECTOR - 2..(base + 3) * SECTOR].copy_from_slice(&[0x55, 0xAA]);
    }
    let fat_bytes: Vec<u8> = w.fat.iter().flat_map(|e| e.to_le_bytes()).collect();
    for copy in 0..FAT_COUNT {
        let at = (RESERVED_SECTORS + copy * geometry.fat_sectors) as usize * SECTOR;
        image[at..at + fat_bytes.len()].copy_from_slice(&fat_bytes);
    }
    Ok(image)
}

fn boot_sector(
    g: &Geometry,
    total_sectors: u32,
    volume_id: u32,
    label: &[u8; 11],
    hidden_sectors: u32,
) -> [u8; SECTOR] {
    let mut b = [0u8; SECTOR];
    b[0..3].copy_from_slice(&[0xEB, 0x58, 0x90]);
    b[3..11].copy_from_slice(b"HARMONY ");
    b[11..13].copy_from_slice(&(SECTOR as u16).to_le_bytes());
    b[13] = g.sectors_per_cluster as u8;
    b[14..16].copy_from_slice(&(RESERVED_SECTORS as u16).to_le_bytes());
    b[16] = FAT_COUNT as u8;
    b[21] = MEDIA;
    b[24..26].copy_from_slice(&63u16.to_le_bytes()); // sectors per track
    b[26..28].copy_from_slice(&255u16.to_le_bytes()); // heads
    b[28..32].copy_from_slice(&hidden_sectors.to_le_bytes());
    b[32..36].copy_from_slice(&total_sectors.to_le_bytes());
    b[36..40].copy_from_slice(&g.fat_sectors.to_le_bytes());
    b[44..48].copy_from_slice(&2u32.to_le_bytes()); // root directory cluster
    b[48..50].copy_from_slice(&1u16.to_le_bytes()); // FSInfo sector
    b[50..52].copy_from_slice(&6u16.to_le_bytes()); // backup boot sector
    b[64] = 0x80; // drive number: a hard disk
    b[66] = 0x29; // extended boot signature: the next three fields are valid
    b[67..71].copy_from_slice(&volume_id.to_le_bytes());
    b[71..82].copy_from_slice(label);
    b[82..90].copy_from_slice(b"FAT32   ");
    // Not bootable as a BIOS volume: a jump to a halt loop.
    b[90..92].copy_from_slice(&[0xF4, 0xEB]);
    b[92] = 0xFD;
    b[510] = 0x55;
    b[511] = 0xAA;
    b
}

fn fs_info(free_clusters: u32, next_free: u32) -> [u8; SECTOR] {
    let mut s = [0u8; SECTOR];
    s[0..4].copy_from_slice(&0x4161_5252u32.to_le_bytes());
    s[484..488].copy_from_slice(&0x6141_7272u32.to_le_bytes());
    s[488..492].copy_from_slice(&free_clusters.to_le_bytes());
    s[492..496].copy_from_slice(&next_free.to_le_bytes());
    s[508..512].copy_from_slice(&0xAA55_0000u32.to_le_bytes());
    s
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use super::*;

    const EPOCH: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

    fn big() -> Vec<u8> {
        (0..300_000u32).map(|i| (i % 251) as u8).collect()
    }

    fn image() -> Vec<u8> {
        let big = big();
        esp_image(
            &[
                ("EFI/BOOT/BOOTX64.EFI", &big),
                ("EFI/BOOT/readme.txt", b"hello\n"),
                ("loader/empty", b""),
            ],
            MIN_ESP_BYTES,
            0x1234_abcd,
            "HARMONY",
            2048,
            EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn fatfs_reads_back_files_and_fixed_metadata() {
        let fs = fatfs::FileSystem::new(Cursor::new(image()), fatfs::FsOptions::new()).unwrap();
        assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
        assert_eq!(fs.volume_id(), 0x1234_abcd);
        assert_eq!(fs.volume_label(), "HARMONY");
        let mut content = Vec::new();
        fs.root_dir()
            .open_file("EFI/BOOT/BOOTX64.EFI")
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert!(content == big());
        let entries: Vec<_> = fs
            .root_dir()
            .open_dir("EFI/BOOT")
            .unwrap()
            .iter()
            .map(|e| e.unwrap())
            .collect();
        let names: Vec<String> = entries.iter().map(|e| e.file_name()).collect();
        assert_eq!(names, [".", "..", "BOOTX64.EFI", "readme.txt"]);
        let modified = entries[3].modified();
        assert_eq!(
            (modified.date.year, modified.date.month, modified.date.day),
            (2023, 11, 14)
        );
        assert_eq!(
            (modified.time.hour, modified.time.min, modified.time.sec),
            (22, 13, 20)
        );
        let mut empty = Vec::new();
        fs.root_dir()
            .open_file("loader/empty")
            .unwrap()
            .read_to_end(&mut empty)
            .unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn same_files_same_bytes() {
        assert!(image() == image());
    }

    #[test]
    fn timestamps_are_clamped_into_fat_range() {
        assert_eq!(fat_timestamp(0), (1 << 5 | 1, 0)); // 1980-01-01 00:00:00
        let (date, _) = fat_timestamp(951_782_400); // 2000-02-29
        assert_eq!(date, 20 << 9 | 2 << 5 | 29);
    }

    #[test]
    fn sizes_round_up_to_mebibytes_with_a_floor() {
        assert_eq!(esp_size(0), MIN_ESP_BYTES);
        assert_eq!(esp_size(200 * MIB) % MIB, 0);
        assert!(esp_size(200 * MIB) > 200 * MIB + 200 * MIB / 16);
    }

    #[test]
    fn bad_names_and_full_volumes_are_refused() {
        let e = esp_image(
            &[("EFI/BOOT/bootx64-long.efi", b"x")],
            MIN_ESP_BYTES,
            1,
            "ESP",
            0,
            0,
        )
        .unwrap_err();
        assert!(e.to_string().contains("EFI/BOOT/bootx64-long.efi"), "{e}");
        let e = esp_image(&[("Mixed.EFI", b"x")], MIN_ESP_BYTES, 1, "ESP", 0, 0).unwrap_err();
        assert!(e.to_string().contains("mixed case"), "{e}");
        let huge = vec![1u8; MIN_ESP_BYTES as usize];
        assert!(matches!(
            esp_image(&[("A", &huge)], MIN_ESP_BYTES, 1, "ESP", 0, 0),
            Err(EspError::Full { .. })
        ));
        assert!(matches!(
            esp_image(&[], MIN_ESP_BYTES / 2, 1, "ESP", 0, 0),
            Err(EspError::TooSmall { .. })
        ));
    }

    #[test]
    fn larger_volumes_use_larger_clusters_and_stay_fat32() {
        let g = Geometry::new((600 * MIB / SECTOR as u64) as u32).unwrap();
        assert_eq!(g.sectors_per_cluster, 8);
        assert!(g.clusters >= 2 * MIN_CLUSTERS);
    }

    #[test]
    fn fsck_and_mtools_accept_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("esp.img");
        std::fs::write(&path, image()).unwrap();
        match std::process::Command::new("fsck.vfat")
            .arg("-n")
            .arg(&path)
            .output()
        {
            Ok(out) => {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(out.status.success(), "{text}");
                assert!(text.contains(": 7 files, "), "{text}");
                assert_eq!(text.lines().count(), 2, "fsck.vfat had remarks: {text}");
            }
            Err(_) => harmony_test_support::skip(
                "tool fsck.vfat not installed: Debian package dosfstools",
            ),
        }
        match std::process::Command::new("mdir")
            .args(["-/", "-b", "-i"])
            .arg(&path)
            .arg("::/")
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{text}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert!(text.contains("::/EFI/BOOT/BOOTX64.EFI"), "{text}");
                assert!(text.contains("::/EFI/BOOT/readme.txt"), "{text}");
                assert!(text.contains("::/loader/empty"), "{text}");
            }
            Err(_) => harmony_test_support::skip("tool mdir not installed: Debian package mtools"),
        }
        match std::process::Command::new("minfo")
            .arg("-i")
            .arg(&path)
            .arg("::")
            .output()
        {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("serial number: 1234ABCD"), "{text}");
                assert!(text.contains("hidden sectors: 2048"), "{text}");
            }
            Err(_) => harmony_test_support::skip("tool minfo not installed: Debian package mtools"),
        }
    }
}
