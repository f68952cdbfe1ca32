//! `disk.qcow2`: the raw disk as a qcow2 version 3 image, written here rather than by
//! `qemu-img convert`. qemu-img 7.2 is deterministic too (two runs, same bytes), but its
//! layout and header change between QEMU versions (header length, compression-type
//! field, where tables go), so the bytes would depend on the build host's qemu-img.
//! This writer gives the same bytes everywhere and needs no host tool.
//!
//! One pass over the raw disk, metadata after the data:
//! `[header][non-zero data clusters, in guest order][L2 tables][L1][refcount blocks][refcount table]`.
//! 64 KiB clusters, 16-bit refcounts (every cluster used once), no backing file, no
//! compression, no snapshots; all-zero clusters are left unallocated and read as zeros.

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::raw_disk::{is_zero, RawDisk};
use super::EmitError;

const CLUSTER_BITS: u32 = 16;
const CLUSTER: u64 = 1 << CLUSTER_BITS;
/// 8-byte entries per L2 table (one cluster).
const L2_ENTRIES: u64 = CLUSTER / 8;
/// refcount_order 4: 16-bit refcounts, so one refcount block counts this many clusters.
const REFCOUNT_ORDER: u32 = 4;
const REFCOUNTS_PER_BLOCK: u64 = CLUSTER * 8 / (1 << REFCOUNT_ORDER);
/// L1/L2 flag: the cluster's refcount is exactly 1 (it may be written in place).
const COPIED: u64 = 1 << 63;
const HEADER_LENGTH: u32 = 104;

/// What a written image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qcow2Summary {
    pub virtual_size: u64,
    /// Guest clusters stored (not all zero).
    pub data_clusters: u64,
    pub file_size: u64,
}

/// Convert the raw disk at `raw` into a qcow2 image at `out` (written to a temporary
/// file beside it and renamed, so `out` is never half-written).
pub fn write_qcow2(raw: &Path, out: &Path) -> Result<Qcow2Summary, EmitError> {
    let mut disk = RawDisk::open(raw)?;
    let io = |source| EmitError::Io {
        path: out.display().to_string(),
        source,
    };
    let dir = out.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let mut w = BufWriter::with_capacity(1 << 20, tmp);

    let virtual_size = disk.virtual_size();
    let guest_clusters = virtual_size.div_ceil(CLUSTER);
    // The header's cluster, filled in last.
    w.write_all(&[0u8; CLUSTER as usize]).map_err(io)?;
    let mut next_cluster: u64 = 1;
    // Host offset of each guest cluster; 0 = unallocated (reads as zeros).
    let mut map = vec![0u64; guest_clusters as usize];
    let mut buf = vec![0u8; CLUSTER as usize];
    let mut guest = 0usize;
    while disk.next_cluster(&mut buf)? {
        if !is_zero(&buf) {
            w.write_all(&buf).map_err(io)?;
            map[guest] = next_cluster * CLUSTER;
            next_cluster += 1;
        }
        guest += 1;
    }
    let data_clusters = next_cluster - 1;

    // L2 tables, only for the ranges that hold data.
    let l1_size = guest_clusters.div_ceil(L2_ENTRIES);
    let mut l1 = vec![0u64; l1_size as usize];
    for (index, entries) in map.chunks(L2_ENTRIES as usize).enumerate() {
        if entries.iter().all(|&e| e == 0) {
            continue;
        }
        let mut table = vec![0u8; CLUSTER as usize];
        for (slot, &offset) in entries.iter().enumerate() {
            if offset != 0 {
                table[slot * 8..slot * 8 + 8].copy_from_slice(&(offset | COPIED).to_be_bytes());
            }
        }
        w.write_all(&table).map_err(io)?;
        l1[index] = (next_cluster * CLUSTER) | COPIED;
        next_cluster += 1;
    }

    let l1_offset = next_cluster * CLUSTER;
    let l1_clusters = (l1_size * 8).div_ceil(CLUSTER).max(1);
    let mut l1_bytes = vec![0u8; (l1_clusters * CLUSTER) as usize];
    for (i, entry) in l1.iter().enumerate() {
        l1_bytes[i * 8..i * 8 + 8].copy_from_slice(&entry.to_be_bytes());
    }
    w.write_all(&l1_bytes).map_err(io)?;
    next_cluster += l1_clusters;

    // Refcount blocks count every cluster of the file, themselves and the table included.
    let (blocks, table_clusters) = refcount_layout(next_cluster);
    let total_clusters = next_cluster + blocks + table_clusters;
    let first_block = next_cluster;
    for block in 0..blocks {
        let mut counts = vec![0u8; CLUSTER as usize];
        let start = block * REFCOUNTS_PER_BLOCK;
        let end = ((block + 1) * REFCOUNTS_PER_BLOCK).min(total_clusters);
        for cluster in start..end {
            let at = ((cluster - start) * 2) as usize;
            counts[at..at + 2].copy_from_slice(&1u16.to_be_bytes());
        }
        w.write_all(&counts).map_err(io)?;
    }
    let table_offset = (first_block + blocks) * CLUSTER;
    let mut table = vec![0u8; (table_clusters * CLUSTER) as usize];
    for block in 0..blocks {
        let at = (block * 8) as usize;
        table[at..at + 8].copy_from_slice(&((first_block + block) * CLUSTER).to_be_bytes());
    }
    w.write_all(&table).map_err(io)?;

    let header = header(
        virtual_size,
        l1_size as u32,
        l1_offset,
        table_offset,
        table_clusters as u32,
    );
    w.seek(SeekFrom::Start(0)).map_err(io)?;
    w.write_all(&header).map_err(io)?;
    let tmp = w.into_inner().map_err(|e| io(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(out).map_err(|e| io(e.error))?;
    Ok(Qcow2Summary {
        virtual_size,
        data_clusters,
        file_size: total_clusters * CLUSTER,
    })
}

/// Refcount blocks and refcount-table clusters for a file whose other clusters number
/// `used`: the smallest counts that also cover their own clusters.
fn refcount_layout(used: u64) -> (u64, u64) {
    let (mut blocks, mut table) = (1u64, 1u64);
    loop {
        let total = used + blocks + table;
        let need_blocks = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let need_table = (need_blocks * 8).div_ceil(CLUSTER);
        if (need_blocks, need_table) == (blocks, table) {
            return (blocks, table);
        }
        blocks = need_blocks.max(blocks);
        table = need_table.max(table);
    }
}

/// The version 3 header (big-endian), `HEADER_LENGTH` bytes; the zeros after it end the
/// (empty) list of header extensions.
fn header(
    virtual_size: u64,
    l1_size: u32,
    l1_offset: u64,
    refcount_table_offset: u64,
    refcount_table_clusters: u32,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LENGTH as usize);
    h.extend_from_slice(b"QFI\xfb");
    h.extend_from_slice(&3u32.to_be_bytes()); // version
    h.extend_from_slice(&0u64.to_be_bytes()); // backing_file_offset
    h.extend_from_slice(&0u32.to_be_bytes()); // backing_file_size
    h.extend_from_slice(&CLUSTER_BITS.to_be_bytes());
    h.extend_from_slice(&virtual_size.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // crypt_method
    h.extend_from_slice(&l1_size.to_be_bytes());
    h.extend_from_slice(&l1_offset.to_be_bytes());
    h.extend_from_slice(&refcount_table_offset.to_be_bytes());
    h.extend_from_slice(&refcount_table_clusters.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // nb_snapshots
    h.extend_from_slice(&0u64.to_be_bytes()); // snapshots_offset
    h.extend_from_slice(&0u64.to_be_bytes()); // incompatible_features
    h.extend_from_slice(&0u64.to_be_bytes()); // compatible_features
    h.extend_from_slice(&0u64.to_be_bytes()); // autoclear_features
    h.extend_from_slice(&REFCOUNT_ORDER.to_be_bytes());
    h.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
    debug_assert_eq!(h.len(), HEADER_LENGTH as usize);
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::raw_disk::tests::{qemu_img, synthetic_raw};

    /// Our image passes `qemu-img check` and reads back as the raw disk, byte for byte.
    fn check_against_qemu_img(len: u64, extents: &[(u64, usize)]) -> Qcow2Summary {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let qcow2 = dir.path().join("disk.qcow2");
        synthetic_raw(&raw, len, extents, len);
        let summary = write_qcow2(&raw, &qcow2).unwrap();
        let (r, p) = (raw.to_str().unwrap(), qcow2.to_str().unwrap());
        let (ok, text) = qemu_img(&["check", "-f", "qcow2", p]);
        assert!(ok && text.contains("No errors were found"), "{text}");
        let (ok, text) = qemu_img(&["compare", "-f", "raw", "-F", "qcow2", r, p]);
        assert!(ok && text.contains("Images are identical"), "{text}");
        assert_eq!(std::fs::metadata(&qcow2).unwrap().len(), summary.file_size);
        summary
    }

    #[test]
    fn sparse_disk_with_zero_runs_reads_back_identical() {
        let s = check_against_qemu_img(
            300 << 20,
            &[
                (0, 70_000),              // straddles the first two clusters
                (5 << 20, 1),             // one byte
                ((100 << 20) - 3, 10),    // across a cluster boundary
                (200 << 20, 3 << 20),     // a long run
                ((300 << 20) - 512, 512), // the last sector
            ],
        );
        assert_eq!(s.virtual_size, 300 << 20);
        // 2 + 1 + 2 + 48 + 1 non-zero clusters; the rest are not stored.
        assert_eq!(s.data_clusters, 54);
    }

    #[test]
    fn size_not_a_multiple_of_the_cluster_or_a_sector() {
        let len = (1 << 20) + 12345;
        let s = check_against_qemu_img(len, &[(len - 100, 100), (4096, 9000)]);
        assert_eq!(s.virtual_size, len.div_ceil(512) * 512);
    }

    #[test]
    fn more_than_one_l2_table_and_an_all_zero_disk() {
        // An L2 table maps 512 MiB: data in the first and third ranges only.
        check_against_qemu_img(1200 << 20, &[(10, 10), ((1100 << 20) + 7, 200_000)]);
        let s = check_against_qemu_img(3 << 20, &[]);
        assert_eq!(s.data_clusters, 0);
    }

    #[test]
    fn same_raw_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        synthetic_raw(&raw, 8 << 20, &[(1000, 300_000), (6 << 20, 5000)], 3);
        write_qcow2(&raw, &dir.path().join("a.qcow2")).unwrap();
        write_qcow2(&raw, &dir.path().join("b.qcow2")).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a.qcow2")).unwrap(),
            std::fs::read(dir.path().join("b.qcow2")).unwrap()
        );
    }

    #[test]
    fn refcount_layout_covers_itself() {
        assert_eq!(refcount_layout(10), (1, 1));
        // 32768 counts per block: 32766 used + 1 block + 1 table fill one block exactly.
        assert_eq!(refcount_layout(32766), (1, 1));
        assert_eq!(refcount_layout(32767), (2, 1));
    }
}
