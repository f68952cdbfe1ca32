//! `disk.vmdk`: the raw disk as a streamOptimized VMDK (VMware Virtual Disk Format 5.0,
//! "stream-optimized compressed sparse extent"), the kind an OVA carries and vSphere
//! imports. Written here because qemu-img puts a random CID in the descriptor (no two
//! runs give the same bytes) and preallocates its tables in the header area.
//!
//! Layout, one pass over the raw disk:
//! - sector 0: the sparse extent header, `gdOffset` = GD_AT_END (the real one is in the footer);
//! - sector 1..: the embedded descriptor (createType "streamOptimized", a fixed CID);
//! - from sector 128: for every 512 grains (32 MiB of disk), each non-zero grain as a grain
//!   marker (LBA, compressed size) + its zlib-deflated 64 KiB, then a grain-table marker +
//!   the grain table (512 sector offsets of the grain markers); all-zero grains and
//!   all-zero grain tables are left out;
//! - a grain-directory marker + the grain directory (sector offsets of the grain tables);
//! - a footer marker + the header again with the real `gdOffset`, and the end-of-stream marker.
//!
//! Every record starts on a 512-byte sector. Same raw disk and CID, same bytes.

use std::io::{BufWriter, Write};
use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;

use super::raw_disk::{is_zero, RawDisk, SECTOR};
use super::EmitError;

/// 128 sectors = 64 KiB per grain.
const GRAIN_SECTORS: u64 = 128;
const GRAIN_BYTES: usize = (GRAIN_SECTORS * SECTOR) as usize;
const GTES_PER_GT: u64 = 512;
const GT_SECTORS: u64 = GTES_PER_GT * 4 / SECTOR;
const DESCRIPTOR_OFFSET: u64 = 1;
/// Room for the descriptor as VMware's tools and qemu-img leave it (it can be edited in place).
const DESCRIPTOR_SECTORS: u64 = 20;
/// Grains start here: the first grain boundary after the descriptor.
const OVERHEAD_SECTORS: u64 = 128;
const GD_AT_END: u64 = u64::MAX;
/// Newline detection valid | compressed grains | markers.
const FLAGS: u32 = 1 | (1 << 16) | (1 << 17);
const COMPRESS_DEFLATE: u16 = 1;
const MARKER_EOS: u32 = 0;
const MARKER_GRAIN_TABLE: u32 = 1;
const MARKER_GRAIN_DIRECTORY: u32 = 2;
const MARKER_FOOTER: u32 = 3;
/// Grains read and compressed together (in parallel), then written in order.
const BATCH_GRAINS: usize = 64;

/// The disk controller named in the descriptor; the OVF attaches the disk to the same kind
/// (a VMware paravirtual SCSI controller, which Debian's cloud kernel drives; it has no
/// LSI Logic driver). The VMDK 5.0 paper lists ide/buslogic/lsilogic/legacyESX, but ESXi
/// itself records "pvscsi" for disks on that controller and image builders for vSphere
/// (kiwi) patch the same value in; an importer takes the controller from the OVF.
pub const ADAPTER_TYPE: &str = "pvscsi";
/// ESXi 6.5+, the same hardware version the OVF asks for (`vmx-13`).
pub const VIRTUAL_HW_VERSION: u32 = 13;

pub struct VmdkOptions<'a> {
    /// The descriptor's content ID; fixed by the caller (derived from the raw disk's
    /// digest) so that the same disk gives the same bytes.
    pub cid: u32,
    /// The file name the descriptor's extent line gives (the name inside an OVA).
    pub extent_name: &'a str,
}

/// What a written image holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmdkSummary {
    /// Bytes the guest sees.
    pub capacity: u64,
    /// Bytes of the non-zero grains stored (OVF's populatedSize).
    pub populated: u64,
    pub file_size: u64,
}

/// Convert the raw disk at `raw` into a streamOptimized VMDK at `out` (written to a
/// temporary file beside it and renamed).
pub fn write_vmdk(raw: &Path, out: &Path, opts: &VmdkOptions) -> Result<VmdkSummary, EmitError> {
    let invalid = |problem: String| EmitError::Invalid {
        path: out.display().to_string(),
        problem,
    };
    if opts.extent_name.is_empty() || opts.extent_name.contains(['"', '\n', '\r']) {
        return Err(invalid(format!(
            "extent name {:?} cannot go into a VMDK descriptor",
            opts.extent_name
        )));
    }
    let mut disk = RawDisk::open(raw)?;
    let capacity_sectors = disk.virtual_size() / SECTOR;
    let io = |source| EmitError::Io {
        path: out.display().to_string(),
        source,
    };
    let dir = out.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    let mut w = Stream {
        out: BufWriter::with_capacity(1 << 20, tmp),
        sector: 0,
    };

    let header = header(capacity_sectors, GD_AT_END);
    w.write_record(&header).map_err(io)?;
    let descriptor = descriptor(opts, capacity_sectors);
    if descriptor.len() as u64 > DESCRIPTOR_SECTORS * SECTOR {
        return Err(invalid(
            "the VMDK descriptor does not fit its sectors".into(),
        ));
    }
    w.write_record(&descriptor).map_err(io)?;
    w.pad_to(OVERHEAD_SECTORS).map_err(io)?;

    let total_grains = capacity_sectors.div_ceil(GRAIN_SECTORS);
    let mut directory = vec![0u32; total_grains.div_ceil(GTES_PER_GT) as usize];
    let mut table = vec![0u32; GTES_PER_GT as usize];
    let mut populated = 0u64;
    let mut grain: u64 = 0;
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH_GRAINS);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let phase = crate::progress::phase(
        "vmdk",
        None,
        Some(total_grains),
        crate::progress::Unit::Blocks,
    );
    loop {
        batch.clear();
        let mut buf = vec![0u8; GRAIN_BYTES];
        while batch.len() < BATCH_GRAINS && disk.next_cluster(&mut buf)? {
            batch.push(std::mem::replace(&mut buf, vec![0u8; GRAIN_BYTES]));
        }
        if batch.is_empty() {
            break;
        }
        let compressed = compress_batch(&batch, threads).map_err(io)?;
        phase.inc(batch.len() as u64);
        for data in compressed {
            if let Some(data) = data {
                let offset = w.offset32().map_err(|e| invalid(e.to_string()))?;
                table[(grain % GTES_PER_GT) as usize] = offset;
                let mut marker = Vec::with_capacity(12 + data.len());
                marker.extend_from_slice(&(grain * GRAIN_SECTORS).to_le_bytes());
                marker.extend_from_slice(&(data.len() as u32).to_le_bytes());
                marker.extend_from_slice(&data);
                w.write_record(&marker).map_err(io)?;
                populated += GRAIN_BYTES as u64;
            }
            grain += 1;
            if grain % GTES_PER_GT == 0 || grain == total_grains {
                let index = ((grain - 1) / GTES_PER_GT) as usize;
                if table.iter().any(|&e| e != 0) {
                    w.write_record(&marker(GT_SECTORS, MARKER_GRAIN_TABLE))
                        .map_err(io)?;
                    directory[index] = w.offset32().map_err(|e| invalid(e.to_string()))?;
                    w.write_record(&le_u32s(&table)).map_err(io)?;
                    table.fill(0);
                }
            }
        }
    }

    phase.finish();
    let gd_bytes = le_u32s(&directory);
    let gd_sectors = (gd_bytes.len() as u64).div_ceil(SECTOR);
    w.write_record(&marker(gd_sectors, MARKER_GRAIN_DIRECTORY))
        .map_err(io)?;
    let gd_offset = w.sector;
    w.write_record(&gd_bytes).map_err(io)?;
    w.write_record(&marker(1, MARKER_FOOTER)).map_err(io)?;
    w.write_record(&self::header(capacity_sectors, gd_offset))
        .map_err(io)?;
    w.write_record(&marker(0, MARKER_EOS)).map_err(io)?;

    let file_size = w.sector * SECTOR;
    let tmp = w.out.into_inner().map_err(|e| io(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(out).map_err(|e| io(e.error))?;
    Ok(VmdkSummary {
        capacity: capacity_sectors * SECTOR,
        populated,
        file_size,
    })
}

/// The output and the sector it is at.
struct Stream<W: Write> {
    out: W,
    sector: u64,
}

impl<W: Write> Stream<W> {
    /// Write bytes and pad them to a whole sector.
    fn write_record(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        let padded = (bytes.len() as u64).div_ceil(SECTOR) * SECTOR;
        self.out
            .write_all(&vec![0u8; (padded - bytes.len() as u64) as usize])?;
        self.sector += padded / SECTOR;
        Ok(())
    }

    fn pad_to(&mut self, sector: u64) -> std::io::Result<()> {
        let gap = sector.saturating_sub(self.sector);
        self.out.write_all(&vec![0u8; (gap * SECTOR) as usize])?;
        self.sector += gap;
        Ok(())
    }

    /// Grain and table offsets are 32-bit sector numbers: a stream is at most 2 TiB.
    fn offset32(&self) -> Result<u32, String> {
        u32::try_from(self.sector)
            .map_err(|_| "the VMDK stream would pass 2 TiB (32-bit sector offsets)".to_string())
    }
}

/// Deflate (zlib framing, level 6 as qemu-img and VMware use) each non-zero grain;
/// `None` for an all-zero one. Spread over `threads`; the result keeps the input order.
fn compress_batch(batch: &[Vec<u8>], threads: usize) -> std::io::Result<Vec<Option<Vec<u8>>>> {
    let per_thread = batch.len().div_ceil(threads.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = batch
            .chunks(per_thread)
            .map(|chunk| {
                scope.spawn(move || -> std::io::Result<Vec<Option<Vec<u8>>>> {
                    chunk
                        .iter()
                        .map(|g| {
                            if is_zero(g) {
                                return Ok(None);
                            }
                            let mut z = ZlibEncoder::new(
                                Vec::with_capacity(GRAIN_BYTES / 2),
                                Compression::default(),
                            );
                            z.write_all(g)?;
                            z.finish().map(Some)
                        })
                        .collect()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(batch.len());
        for h in handles {
            all.extend(h.join().expect("compression thread panicked")?);
        }
        Ok(all)
    })
}

/// A metadata marker: `val` sectors of metadata follow, size 0, then the type.
fn marker(val: u64, kind: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(16);
    m.extend_from_slice(&val.to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&kind.to_le_bytes());
    m
}

fn le_u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// SparseExtentHeader (little-endian, one sector).
fn header(capacity_sectors: u64, gd_offset: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(SECTOR as usize);
    h.extend_from_slice(b"KDMV");
    h.extend_from_slice(&3u32.to_le_bytes()); // version 3: streamOptimized
    h.extend_from_slice(&FLAGS.to_le_bytes());
    h.extend_from_slice(&capacity_sectors.to_le_bytes());
    h.extend_from_slice(&GRAIN_SECTORS.to_le_bytes());
    h.extend_from_slice(&DESCRIPTOR_OFFSET.to_le_bytes());
    h.extend_from_slice(&DESCRIPTOR_SECTORS.to_le_bytes());
    h.extend_from_slice(&(GTES_PER_GT as u32).to_le_bytes());
    h.extend_from_slice(&0u64.to_le_bytes()); // rgdOffset: no redundant directory
    h.extend_from_slice(&gd_offset.to_le_bytes());
    h.extend_from_slice(&OVERHEAD_SECTORS.to_le_bytes());
    h.push(0); // uncleanShutdown
    h.extend_from_slice(b"\n \r\n"); // newline detection characters
    h.extend_from_slice(&COMPRESS_DEFLATE.to_le_bytes());
    h
}

/// The embedded descriptor; SCSI geometry (255 heads, 63 sectors) as for any SCSI disk.
fn descriptor(opts: &VmdkOptions, capacity_sectors: u64) -> Vec<u8> {
    let cylinders = (capacity_sectors / (255 * 63)).clamp(1, 65535);
    format!(
        "# Disk DescriptorFile\n\
         version=1\n\
         encoding=\"UTF-8\"\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity_sectors} SPARSE \"{name}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.adapterType = \"{ADAPTER_TYPE}\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.virtualHWVersion = \"{VIRTUAL_HW_VERSION}\"\n",
        cid = opts.cid,
        name = opts.extent_name,
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::raw_disk::tests::{qemu_img, synthetic_raw};
    use std::io::Read;

    const OPTS: VmdkOptions = VmdkOptions {
        cid: 0x1234abcd,
        extent_name: "node-disk1.vmdk",
    };

    /// `qemu-img check` finds no errors and the VMDK reads back as the raw disk.
    fn check_against_qemu_img(len: u64, extents: &[(u64, usize)]) -> (VmdkSummary, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        let vmdk = dir.path().join("disk.vmdk");
        synthetic_raw(&raw, len, extents, len ^ 0x5555);
        let summary = write_vmdk(&raw, &vmdk, &OPTS).unwrap();
        let (r, v) = (raw.to_str().unwrap(), vmdk.to_str().unwrap());
        let (ok, text) = qemu_img(&["check", "-f", "vmdk", v]);
        assert!(ok && text.contains("No errors were found"), "{text}");
        let (ok, text) = qemu_img(&["compare", "-f", "raw", "-F", "vmdk", r, v]);
        assert!(ok && text.contains("Images are identical"), "{text}");
        let (ok, text) = qemu_img(&["info", "--output=json", v]);
        assert!(ok, "{text}");
        assert!(text.contains("\"streamOptimized\""), "{text}");
        let bytes = std::fs::read(&vmdk).unwrap();
        assert_eq!(bytes.len() as u64, summary.file_size);
        (summary, bytes)
    }

    #[test]
    fn sparse_disk_with_zero_runs_reads_back_identical() {
        let (s, bytes) = check_against_qemu_img(
            100 << 20,
            &[
                (0, 70_000),
                (5 << 20, 1),
                ((40 << 20) - 3, 10), // across two grain tables
                (60 << 20, 3 << 20),
                ((100 << 20) - 512, 512),
            ],
        );
        assert_eq!(s.capacity, 100 << 20);
        assert_eq!(s.populated, 54 * 65536);
        // Grain tables only where there are grains: 32 MiB ranges 0, 1 and 3 have data.
        let markers = count_markers(&bytes);
        assert_eq!(markers[MARKER_GRAIN_TABLE as usize], 3, "{markers:?}");
        assert_eq!(markers[MARKER_GRAIN_DIRECTORY as usize], 1);
        assert_eq!(markers[MARKER_FOOTER as usize], 1);
    }

    #[test]
    fn size_not_a_multiple_of_the_grain_or_a_sector() {
        let len = (3 << 20) + 777;
        let (s, _) = check_against_qemu_img(len, &[(len - 300, 300), (1000, 100_000)]);
        assert_eq!(s.capacity, len.div_ceil(512) * 512);
    }

    #[test]
    fn an_all_zero_disk_stores_no_grain() {
        let (s, bytes) = check_against_qemu_img(2 << 20, &[]);
        assert_eq!(s.populated, 0);
        // header, descriptor area, GD marker + GD, footer marker, footer, EOS.
        assert_eq!(bytes.len() as u64, (128 + 1 + 1 + 1 + 1 + 1) * 512);
    }

    #[test]
    fn header_descriptor_and_footer() {
        let (_, bytes) = check_against_qemu_img(1 << 20, &[(0, 512)]);
        assert_eq!(&bytes[..4], b"KDMV");
        assert_eq!(
            u64::from_le_bytes(bytes[56..64].try_into().unwrap()),
            GD_AT_END
        );
        let text = String::from_utf8_lossy(&bytes[512..512 * 21]);
        assert!(text.contains("CID=1234abcd\n"), "{text}");
        assert!(text.contains("createType=\"streamOptimized\""), "{text}");
        assert!(
            text.contains("RW 2048 SPARSE \"node-disk1.vmdk\""),
            "{text}"
        );
        assert!(text.contains("ddb.adapterType = \"pvscsi\""), "{text}");
        assert!(text.contains("ddb.virtualHWVersion = \"13\""), "{text}");
        // The footer: the header again, pointing at the grain directory.
        let footer = &bytes[bytes.len() - 1024..bytes.len() - 512];
        assert_eq!(&footer[..4], b"KDMV");
        let gd = u64::from_le_bytes(footer[56..64].try_into().unwrap());
        assert_ne!(gd, GD_AT_END);
        assert_eq!(&bytes[bytes.len() - 512..], &[0u8; 512]);
        // The grain directory's one entry names a grain table whose entry 0 names grain 0.
        let gd_at = (gd * 512) as usize;
        let gt = u32::from_le_bytes(bytes[gd_at..gd_at + 4].try_into().unwrap()) as usize * 512;
        let grain = u32::from_le_bytes(bytes[gt..gt + 4].try_into().unwrap()) as usize * 512;
        assert_eq!(grain, 128 * 512);
        let size = u32::from_le_bytes(bytes[grain + 8..grain + 12].try_into().unwrap()) as usize;
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&bytes[grain + 12..grain + 12 + size])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated.len(), GRAIN_BYTES);
    }

    #[test]
    fn same_raw_same_bytes_and_the_cid_is_the_callers() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        synthetic_raw(&raw, 8 << 20, &[(1000, 300_000), (6 << 20, 5000)], 3);
        let a = dir.path().join("a.vmdk");
        let b = dir.path().join("b.vmdk");
        write_vmdk(&raw, &a, &OPTS).unwrap();
        write_vmdk(&raw, &b, &OPTS).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let other = VmdkOptions {
            cid: 7,
            extent_name: "x.vmdk",
        };
        write_vmdk(&raw, &b, &other).unwrap();
        assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    }

    #[test]
    fn a_name_that_would_break_the_descriptor_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("disk.raw");
        synthetic_raw(&raw, 1 << 20, &[], 1);
        let out = dir.path().join("bad.vmdk");
        let bad = VmdkOptions {
            cid: 1,
            extent_name: "a\"b",
        };
        let err = write_vmdk(&raw, &out, &bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.vmdk") && err.contains("descriptor"),
            "{err}"
        );
        assert!(!out.exists());
    }

    /// Metadata markers by type, walking the stream record by record.
    fn count_markers(bytes: &[u8]) -> [usize; 4] {
        let mut counts = [0usize; 4];
        let mut at = (OVERHEAD_SECTORS * SECTOR) as usize;
        while at < bytes.len() {
            let val = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            let size = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as u64;
            if size > 0 {
                at += ((12 + size).div_ceil(SECTOR) * SECTOR) as usize; // a grain
                continue;
            }
            let kind = u32::from_le_bytes(bytes[at + 12..at + 16].try_into().unwrap());
            counts[kind as usize] += 1;
            if kind == MARKER_EOS {
                break;
            }
            at += ((1 + val) * SECTOR) as usize;
        }
        counts
    }
}
