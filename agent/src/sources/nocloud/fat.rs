//! A small read-only FAT12/16/32 reader, enough for a NoCloud `cidata` seed: the volume
//! label (the root directory's volume entry, else the boot sector's, as blkid reads it)
//! and named files of the root directory, by their long (VFAT) names.
//!
//! Our own rather than the `fatfs` crate: fatfs 0.3 computes a cluster's sector as
//! `cluster - 2` unchecked, and a hostile seed reached that underflow by more paths than a
//! check beforehand could close (an entry or FAT link naming cluster 0 or 1, the active
//! FAT of a FAT32 volume with mirroring off, ...: the `nocloud_fat` fuzz target's
//! findings). Here every cluster is checked against the volume before it is read, chains
//! are followed no further than a file's size, and nothing larger than a config document
//! ([`ignition::limits::MAX_DOCUMENT_BYTES`]) is read into memory.

use std::io::{self, Read, Seek, SeekFrom};

use ignition::limits::MAX_DOCUMENT_BYTES;

/// The FAT specification's limit on a directory: 65536 entries of 32 bytes.
const MAX_DIR_BYTES: u64 = 65536 * 32;

/// A FAT volume, its boot sector read and checked.
pub struct Volume<R> {
    dev: R,
    g: Geometry,
}

/// What the boot sector says, as the FAT specification derives it (the FAT type follows
/// from the cluster count).
struct Geometry {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    /// First byte of the FAT in use (FAT32 may name another than the first).
    fat_offset: u64,
    fat_bytes: u64,
    root_dir_offset: u64,
    root_dir_bytes: u64,
    data_offset: u64,
    /// Valid clusters are 2..=max_cluster.
    max_cluster: u32,
    fat_bits: u8,
    root_cluster: u32,
    boot_label: Option<String>,
}

impl Geometry {
    fn cluster_bytes(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }
}

/// One regular file of the root directory.
struct RootFile {
    name: String,
    first_cluster: u32,
    size: u32,
    /// Its index among the root directory's entries, for errors.
    entry: usize,
}

/// A root directory entry, as far as the seed reader cares.
enum Entry {
    Label(String),
    File(RootFile),
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid FAT volume: {msg}"),
    )
}

/// `None` when the device holds no FAT file system (its boot sector is not one);
/// an error only when reading it fails.
pub fn open<R: Read + Seek>(mut dev: R) -> io::Result<Option<Volume<R>>> {
    let mut boot = [0u8; 512];
    dev.seek(SeekFrom::Start(0))?;
    match dev.read_exact(&mut boot) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok(geometry(&boot).map(|g| Volume { dev, g }))
}

/// The boot sector's geometry, `None` where it is not a FAT boot sector or its numbers
/// cannot describe a volume.
fn geometry(boot: &[u8; 512]) -> Option<Geometry> {
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([boot[o], boot[o + 1]]));
    let u32_at = |o: usize| {
        u64::from(u32::from_le_bytes([
            boot[o],
            boot[o + 1],
            boot[o + 2],
            boot[o + 3],
        ]))
    };
    if boot[510..512] != [0x55, 0xAA] || !matches!(boot[0], 0xEB | 0xE9) {
        return None;
    }
    let bytes_per_sector = u16_at(11);
    let sectors_per_cluster = u64::from(boot[13]);
    let reserved = u16_at(14);
    let fats = u64::from(boot[16]);
    let root_entries = u16_at(17);
    let total = match u16_at(19) {
        0 => u32_at(32),
        n => n,
    };
    // FAT32 is the BPB whose 16-bit FAT size is 0 (it then has no fixed root directory).
    let fat32_bpb = u16_at(22) == 0;
    let fat_sectors = if fat32_bpb { u32_at(36) } else { u16_at(22) };
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || !sectors_per_cluster.is_power_of_two()
        || reserved == 0
        || fats == 0
        || fat_sectors == 0
        || (root_entries == 0) != fat32_bpb
    {
        return None;
    }
    let root_dir_bytes = root_entries * 32;
    let root_dir_start = reserved + fats * fat_sectors;
    let data_start = root_dir_start + root_dir_bytes.div_ceil(bytes_per_sector);
    let clusters = total.checked_sub(data_start)? / sectors_per_cluster;
    let fat_bits = match clusters {
        0 => return None,
        1..4085 => 12,
        4085..65525 => 16,
        _ => 32,
    };
    if (fat_bits == 32) != fat32_bpb {
        return None;
    }
    // FAT32: with mirroring off (bit 7), bits 0-3 name the FAT in use.
    let ext_flags = u16_at(40);
    let active_fat = if fat_bits == 32 && ext_flags & 0x80 != 0 {
        ext_flags & 0x0F
    } else {
        0
    };
    if active_fat >= fats {
        return None;
    }
    let (sig, label) = if fat32_bpb { (66, 71) } else { (38, 43) };
    let boot_label = (boot[sig] == 0x29).then(|| short_text(&boot[label..label + 11]));
    Some(Geometry {
        bytes_per_sector,
        sectors_per_cluster,
        fat_offset: (reserved + active_fat * fat_sectors) * bytes_per_sector,
        fat_bytes: fat_sectors * bytes_per_sector,
        root_dir_offset: root_dir_start * bytes_per_sector,
        root_dir_bytes,
        data_offset: data_start * bytes_per_sector,
        max_cluster: u32::try_from(clusters + 1).ok()?,
        fat_bits,
        root_cluster: u32::try_from(u32_at(44)).ok()?,
        boot_label,
    })
}

impl<R: Read + Seek> Volume<R> {
    /// The label, preferring the root directory's volume entry (what mkfs.fat -n and
    /// fatlabel keep current) over the boot sector's copy.
    pub fn label(&mut self) -> io::Result<String> {
        let from_root = self.root_entries()?.into_iter().find_map(|e| match e {
            Entry::Label(l) => Some(l),
            Entry::File(_) => None,
        });
        Ok(from_root
            .or_else(|| self.g.boot_label.clone())
            .unwrap_or_default())
    }

    /// The root directory's regular files whose names are in `wanted`, as (name,
    /// contents), in directory order.
    pub fn root_files(&mut self, wanted: &[&str]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for e in self.root_entries()? {
            let Entry::File(f) = e else { continue };
            if wanted.contains(&f.name.as_str()) {
                let bytes = self.read_file(&f)?;
                out.push((f.name, bytes));
            }
        }
        Ok(out)
    }

    fn root_entries(&mut self) -> io::Result<Vec<Entry>> {
        let bytes = if self.g.fat_bits == 32 {
            let cap = MAX_DIR_BYTES.div_ceil(self.g.cluster_bytes());
            let mut bytes = Vec::new();
            for c in self.chain(self.g.root_cluster, cap, "the root directory")? {
                bytes.extend_from_slice(&self.read_cluster(c, self.g.cluster_bytes())?);
            }
            bytes
        } else {
            self.read_at(self.g.root_dir_offset, self.g.root_dir_bytes)?
        };
        Ok(entries(&bytes, self.g.fat_bits == 32))
    }

    fn read_file(&mut self, f: &RootFile) -> io::Result<Vec<u8>> {
        let size = u64::from(f.size);
        if size > MAX_DOCUMENT_BYTES {
            return Err(invalid(format!(
                "{} is {size} bytes, more than the {MAX_DOCUMENT_BYTES} a seed file may hold",
                f.name
            )));
        }
        if size == 0 {
            return Ok(Vec::new());
        }
        let what = format!("root directory entry {} ({})", f.entry, f.name);
        let clusters = size.div_ceil(self.g.cluster_bytes());
        let chain = self.chain(f.first_cluster, clusters, &what)?;
        if (chain.len() as u64) < clusters {
            return Err(invalid(format!(
                "{what}: its cluster chain ends before its {size} bytes"
            )));
        }
        let mut out = Vec::new();
        for c in chain {
            let n = (size - out.len() as u64).min(self.g.cluster_bytes());
            out.extend_from_slice(&self.read_cluster(c, n)?);
        }
        Ok(out)
    }

    /// At most `limit` clusters from `first` on, each checked to lie on the volume
    /// before it is used. A chain longer than `limit` (or looping) is cut there.
    fn chain(&mut self, first: u32, limit: u64, what: &str) -> io::Result<Vec<u32>> {
        let end_of_chain = match self.g.fat_bits {
            12 => 0xFF8,
            16 => 0xFFF8,
            _ => 0x0FFF_FFF8,
        };
        let mut out = Vec::new();
        let mut c = first;
        loop {
            if !(2..=self.g.max_cluster).contains(&c) {
                return Err(invalid(format!(
                    "{what} leads to cluster {c}, outside 2..={}",
                    self.g.max_cluster
                )));
            }
            out.push(c);
            if out.len() as u64 >= limit {
                return Ok(out);
            }
            let next = self.fat_entry(c)?;
            if next >= end_of_chain {
                return Ok(out);
            }
            c = next;
        }
    }

    fn fat_entry(&mut self, c: u32) -> io::Result<u32> {
        let c = u64::from(c);
        let (at, len) = match self.g.fat_bits {
            12 => (c + c / 2, 2),
            16 => (c * 2, 2),
            _ => (c * 4, 4),
        };
        if at + len > self.g.fat_bytes {
            return Err(invalid(format!(
                "the FAT ({} bytes) has no entry for cluster {c}",
                self.g.fat_bytes
            )));
        }
        let b = self.read_at(self.g.fat_offset + at, len)?;
        Ok(match self.g.fat_bits {
            12 => {
                let v = u16::from_le_bytes([b[0], b[1]]);
                u32::from(if c % 2 == 0 { v & 0x0FFF } else { v >> 4 })
            }
            16 => u32::from(u16::from_le_bytes([b[0], b[1]])),
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x0FFF_FFFF,
        })
    }

    /// `n` bytes of cluster `c`, which [`Volume::chain`] has checked.
    fn read_cluster(&mut self, c: u32, n: u64) -> io::Result<Vec<u8>> {
        let index = u64::from(c) - 2;
        self.read_at(self.g.data_offset + index * self.g.cluster_bytes(), n)
    }

    fn read_at(&mut self, offset: u64, n: u64) -> io::Result<Vec<u8>> {
        self.dev.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        (&mut self.dev).take(n).read_to_end(&mut buf)?;
        if (buf.len() as u64) < n {
            return Err(invalid(format!(
                "{n} bytes at offset {offset} run past the end of the device"
            )));
        }
        Ok(buf)
    }
}

/// The label and regular files of a directory's bytes, up to its end marker. A file's
/// name is its long name when the pieces before it are whole and match its checksum,
/// else its short name.
fn entries(dir: &[u8], fat32: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut long = LongName::default();
    for (i, e) in dir.chunks_exact(32).enumerate() {
        let attr = e[11];
        match e[0] {
            0 => break,
            0xE5 => {
                long = LongName::default();
                continue;
            }
            _ => {}
        }
        if attr & 0x3F == 0x0F {
            long.add(e);
            continue;
        }
        let taken = std::mem::take(&mut long);
        if attr & 0x08 != 0 {
            out.push(Entry::Label(short_text(&e[..11])));
            continue;
        }
        if attr & 0x10 != 0 {
            continue;
        }
        let short: &[u8; 11] = e[..11].try_into().unwrap_or(&[0; 11]);
        let name = taken.name_for(short).unwrap_or_else(|| short_name(e));
        out.push(Entry::File(RootFile {
            name,
            // The high word counts on FAT32 only, as Linux reads it (FAT12/16 keep other
            // data there).
            first_cluster: if fat32 {
                u32::from(u16::from_le_bytes([e[20], e[21]])) << 16
            } else {
                0
            } | u32::from(u16::from_le_bytes([e[26], e[27]])),
            size: u32::from_le_bytes([e[28], e[29], e[30], e[31]]),
            entry: i,
        }));
    }
    out
}

/// The long-name pieces seen so far: the last piece comes first (flag 0x40) and says
/// how many there are; each carries the short name's checksum.
#[derive(Default)]
struct LongName {
    pieces: Vec<Option<[u16; 13]>>,
    checksum: u8,
    next: u8,
}

impl LongName {
    fn add(&mut self, e: &[u8]) {
        let order = e[0] & 0x1F;
        if e[0] & 0x40 != 0 {
            *self = LongName {
                pieces: vec![None; usize::from(order)],
                checksum: e[13],
                next: order,
            };
        } else if order == 0 || order != self.next || e[13] != self.checksum {
            *self = LongName::default();
            return;
        }
        if order == 0 {
            return;
        }
        let mut units = [0u16; 13];
        for (k, o) in (1..11)
            .step_by(2)
            .chain((14..26).step_by(2))
            .chain((28..32).step_by(2))
            .enumerate()
        {
            units[k] = u16::from_le_bytes([e[o], e[o + 1]]);
        }
        if let Some(slot) = self.pieces.get_mut(usize::from(order) - 1) {
            *slot = Some(units);
        }
        self.next = order - 1;
    }

    fn name_for(&self, short: &[u8; 11]) -> Option<String> {
        let checksum = short
            .iter()
            .fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b));
        if self.pieces.is_empty() || self.next != 0 || checksum != self.checksum {
            return None;
        }
        let units: Vec<u16> = self
            .pieces
            .iter()
            .map(|p| p.ok_or(()))
            .collect::<Result<Vec<_>, ()>>()
            .ok()?
            .concat()
            .into_iter()
            .take_while(|&u| u != 0)
            .collect();
        Some(String::from_utf16_lossy(&units))
    }
}

/// An 8.3 name as Linux shows it: `BASE.EXT`, each part lower-cased where the entry's
/// flags say so (Windows NT and mtools set them for all-lowercase names).
fn short_name(e: &[u8]) -> String {
    let mut base = e[..8].to_vec();
    // 0x05 stands for a leading 0xE5 byte (which marks a deleted entry).
    if base[0] == 0x05 {
        base[0] = 0xE5;
    }
    let case = |part: &[u8], lower: bool| {
        let t = short_text(part);
        if lower {
            t.to_lowercase()
        } else {
            t
        }
    };
    let base = case(&base, e[12] & 0x08 != 0);
    let ext = case(&e[8..11], e[12] & 0x10 != 0);
    if ext.is_empty() {
        base
    } else {
        format!("{base}.{ext}")
    }
}

/// Space-padded OEM text, read as Latin-1.
fn short_text(b: &[u8]) -> String {
    b.iter()
        .map(|&c| char::from(c))
        .collect::<String>()
        .trim_end_matches(' ')
        .to_string()
}
