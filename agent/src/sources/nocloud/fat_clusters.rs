//! Every cluster the root directory leads to is checked before `fatfs` follows it.
//! fatfs 0.3 computes a cluster's sector as `cluster - 2` unchecked: a directory entry
//! or FAT link naming cluster 0 or 1 (or one past the volume) underflows there (a panic
//! where overflow is checked, a read somewhere else where it is not). A seed is
//! outside input, so such a volume is refused with the entry and cluster named.

use std::io::{self, Read, Seek, SeekFrom};

/// The geometry `fatfs` computes from the boot sector, as the FAT specification defines
/// it (the FAT type follows from the cluster count).
struct Geometry {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    fat_start: u64,
    root_dir_start: u64,
    root_dir_bytes: u64,
    data_start: u64,
    /// Valid clusters are 2..=max_cluster.
    max_cluster: u32,
    fat_bits: u8,
    root_cluster: u32,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid FAT volume: {msg}"),
    )
}

fn geometry(boot: &[u8; 512]) -> io::Result<Geometry> {
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([boot[o], boot[o + 1]]));
    let u32_at = |o: usize| {
        u64::from(u32::from_le_bytes([
            boot[o],
            boot[o + 1],
            boot[o + 2],
            boot[o + 3],
        ]))
    };
    let bytes_per_sector = u16_at(11);
    let sectors_per_cluster = u64::from(boot[13]);
    let reserved = u16_at(14);
    let fats = u64::from(boot[16]);
    let root_entries = u16_at(17);
    let total = match u16_at(19) {
        0 => u32_at(32),
        n => n,
    };
    let fat_sectors = match u16_at(22) {
        0 => u32_at(36),
        n => n,
    };
    if bytes_per_sector == 0 || sectors_per_cluster == 0 {
        return Err(invalid("zero sector or cluster size".into()));
    }
    let root_dir_bytes = root_entries * 32;
    let root_dir_sectors = root_dir_bytes.div_ceil(bytes_per_sector);
    let fat_start = reserved;
    let root_dir_start = fat_start + fats * fat_sectors;
    let data_start = root_dir_start + root_dir_sectors;
    let clusters = total
        .checked_sub(data_start)
        .ok_or_else(|| invalid("the data region starts past the volume's end".into()))?
        / sectors_per_cluster;
    let fat_bits = match clusters {
        0..4085 => 12,
        4085..65525 => 16,
        _ => 32,
    };
    Ok(Geometry {
        bytes_per_sector,
        sectors_per_cluster,
        fat_start,
        root_dir_start,
        root_dir_bytes,
        data_start,
        max_cluster: u32::try_from(clusters + 1).unwrap_or(u32::MAX),
        fat_bits,
        root_cluster: u32::try_from(u32_at(44)).unwrap_or(u32::MAX),
    })
}

/// Refuse the volume if its root directory, or a file in it, names a cluster outside
/// the volume or links one there.
pub fn check<R: Read + Seek>(dev: &mut R) -> io::Result<()> {
    let mut boot = [0u8; 512];
    dev.seek(SeekFrom::Start(0))?;
    dev.read_exact(&mut boot)?;
    let g = geometry(&boot)?;
    let root = if g.fat_bits == 32 {
        let chain = chain(dev, &g, g.root_cluster, "the root directory")?;
        let mut bytes = Vec::new();
        for c in chain {
            let mut cluster = vec![0u8; (g.bytes_per_sector * g.sectors_per_cluster) as usize];
            dev.seek(SeekFrom::Start(
                (g.data_start + u64::from(c - 2) * g.sectors_per_cluster) * g.bytes_per_sector,
            ))?;
            dev.read_exact(&mut cluster)?;
            bytes.extend_from_slice(&cluster);
        }
        bytes
    } else {
        let mut bytes = vec![0u8; g.root_dir_bytes as usize];
        dev.seek(SeekFrom::Start(g.root_dir_start * g.bytes_per_sector))?;
        dev.read_exact(&mut bytes)?;
        bytes
    };
    for (i, e) in root.chunks_exact(32).enumerate() {
        match (e[0], e[11]) {
            (0, _) => break,
            (0xE5, _) => continue,
            // Long-name pieces and the volume label point at no data.
            (_, attr) if attr & 0x0F == 0x0F || attr & 0x08 != 0 => continue,
            _ => {}
        }
        let hi = if g.fat_bits == 32 {
            u32::from(u16::from_le_bytes([e[20], e[21]])) << 16
        } else {
            0
        };
        let first = hi | u32::from(u16::from_le_bytes([e[26], e[27]]));
        // Cluster 0: an empty file (or `..` of the root), no data to follow.
        if first != 0 {
            chain(dev, &g, first, &format!("root directory entry {i}"))?;
        }
    }
    Ok(())
}

/// The clusters from `first` to the end of its chain, each checked to be on the volume;
/// a loop is cut at the volume's cluster count.
fn chain<R: Read + Seek>(
    dev: &mut R,
    g: &Geometry,
    first: u32,
    what: &str,
) -> io::Result<Vec<u32>> {
    let end_of_chain = match g.fat_bits {
        12 => 0xFF8,
        16 => 0xFFF8,
        _ => 0x0FFF_FFF8,
    };
    let mut out = Vec::new();
    let mut c = first;
    loop {
        if !(2..=g.max_cluster).contains(&c) {
            return Err(invalid(format!(
                "{what} leads to cluster {c}, outside 2..={}",
                g.max_cluster
            )));
        }
        if out.len() > g.max_cluster as usize {
            return Err(invalid(format!("{what}'s cluster chain loops")));
        }
        out.push(c);
        let next = fat_entry(dev, g, c)?;
        if next >= end_of_chain {
            return Ok(out);
        }
        c = next;
    }
}

fn fat_entry<R: Read + Seek>(dev: &mut R, g: &Geometry, c: u32) -> io::Result<u32> {
    let base = g.fat_start * g.bytes_per_sector;
    let c = u64::from(c);
    let mut b = [0u8; 4];
    match g.fat_bits {
        12 => {
            dev.seek(SeekFrom::Start(base + c + c / 2))?;
            dev.read_exact(&mut b[..2])?;
            let v = u16::from_le_bytes([b[0], b[1]]);
            Ok(u32::from(if c % 2 == 0 { v & 0x0FFF } else { v >> 4 }))
        }
        16 => {
            dev.seek(SeekFrom::Start(base + c * 2))?;
            dev.read_exact(&mut b[..2])?;
            Ok(u32::from(u16::from_le_bytes([b[0], b[1]])))
        }
        _ => {
            dev.seek(SeekFrom::Start(base + c * 4))?;
            dev.read_exact(&mut b)?;
            Ok(u32::from_le_bytes(b) & 0x0FFF_FFFF)
        }
    }
}
