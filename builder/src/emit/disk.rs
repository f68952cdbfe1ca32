//! A whole disk from a list of partitions: GPT at both ends, each partition 1 MiB-aligned,
//! written sparsely to a temporary file and renamed into place. GUIDs are derived from
//! the partitions' names and contents, so the same partitions give the same disk.
//!
//! Outputs add partitions by pushing a `PartitionSpec` (the ESP today; a read-only root
//! and its dm-verity hash tree can follow), never by editing the writer.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::gpt::{Gpt, GptError, GptPartition, Guid, BACKUP_SECTORS, PRIMARY_SECTORS, SECTOR};

/// Partitions start on 1 MiB boundaries; the disk ends on one too (for qcow2/VMDK grains).
pub const ALIGNMENT: u64 = 1 << 20;
const CHUNK: usize = 1 << 20;
// The gaps before the first partition and after the last hold the two GPT copies.
const _: () = assert!(ALIGNMENT / SECTOR > BACKUP_SECTORS && ALIGNMENT / SECTOR >= PRIMARY_SECTORS);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionData {
    Bytes(Vec<u8>),
    /// A file already written (e.g. a large filesystem image), streamed onto the disk.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionSpec {
    /// The GPT partition name (Linux: PARTNAME); how init finds a partition.
    pub name: String,
    pub type_guid: Guid,
    pub data: PartitionData,
    /// The partition is at least this big (room to grow); 0: just the data.
    pub min_bytes: u64,
    /// None: derived from the name and the data's sha256. Set it where the GUID must
    /// carry meaning (e.g. dm-verity's root hash halves, as systemd does).
    pub unique_guid: Option<Guid>,
    pub attributes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskLayout {
    pub partitions: Vec<PartitionSpec>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenDisk {
    pub gpt: Gpt,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Gpt { path: String, source: GptError },
    #[error("{path}: a disk needs at least one partition")]
    Empty { path: String },
}

/// The data's length and sha256, reading a file once.
fn measure(data: &PartitionData) -> Result<(u64, [u8; 32]), DiskError> {
    match data {
        PartitionData::Bytes(b) => Ok((b.len() as u64, Sha256::digest(b).into())),
        PartitionData::File(path) => {
            let io = io_err(path);
            let mut file = File::open(path).map_err(&io)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK];
            let mut len = 0u64;
            loop {
                let n = file.read(&mut buf).map_err(&io)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                len += n as u64;
            }
            Ok((len, hasher.finalize().into()))
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DiskError {
    let path = path.display().to_string();
    move |source| DiskError::Io {
        path: path.clone(),
        source,
    }
}

/// Place the partitions: first at 1 MiB, each rounded up to 1 MiB, 1 MiB left at the
/// end for the backup table.
pub fn plan(layout: &DiskLayout, path: &Path) -> Result<Gpt, DiskError> {
    if layout.partitions.is_empty() {
        return Err(DiskError::Empty {
            path: path.display().to_string(),
        });
    }
    let mut partitions = Vec::new();
    let mut disk_id = vec![b"disk".to_vec()];
    let mut next = ALIGNMENT;
    for spec in &layout.partitions {
        let (len, digest) = measure(&spec.data)?;
        let size = len.max(spec.min_bytes).max(1).div_ceil(ALIGNMENT) * ALIGNMENT;
        let unique_guid = spec
            .unique_guid
            .unwrap_or_else(|| Guid::derived(&[b"partition", spec.name.as_bytes(), &digest]));
        partitions.push(GptPartition {
            name: spec.name.clone(),
            type_guid: spec.type_guid,
            unique_guid,
            first_lba: next / SECTOR,
            last_lba: (next + size) / SECTOR - 1,
            attributes: spec.attributes,
        });
        disk_id.extend([
            spec.name.as_bytes().to_vec(),
            spec.type_guid.0.to_vec(),
            digest.to_vec(),
            size.to_le_bytes().to_vec(),
        ]);
        next += size;
    }
    let parts: Vec<&[u8]> = disk_id.iter().map(Vec::as_slice).collect();
    Ok(Gpt {
        disk_guid: Guid::derived(&parts),
        disk_sectors: (next + ALIGNMENT) / SECTOR,
        partitions,
    })
}

/// Sequential writer that hashes every byte of the disk, zeros included, and leaves runs
/// of zeros as holes.
struct DiskWriter {
    file: File,
    hasher: Sha256,
    pos: u64,
}

impl DiskWriter {
    fn data(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.file.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn zeros_until(&mut self, end: u64) -> std::io::Result<()> {
        static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
        let mut left = end - self.pos;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            self.hasher.update(&ZEROS[..n]);
            left -= n as u64;
        }
        self.pos = end;
        self.file.seek(SeekFrom::Start(end))?;
        Ok(())
    }
}

/// Write the disk to `path` (via a temporary file beside it; nothing is left on error).
pub fn write_disk(layout: &DiskLayout, path: &Path) -> Result<WrittenDisk, DiskError> {
    let gpt = plan(layout, path)?;
    let shown = path.display().to_string();
    let gpt_err = |source| DiskError::Gpt {
        path: shown.clone(),
        source,
    };
    let primary = gpt.primary().map_err(gpt_err)?;
    let backup = gpt.backup().map_err(gpt_err)?;
    let size = gpt.disk_sectors * SECTOR;

    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let result = (|| -> Result<String, DiskError> {
        let io = io_err(&tmp);
        let file = File::create(&tmp).map_err(&io)?;
        file.set_len(size).map_err(&io)?;
        let mut w = DiskWriter {
            file,
            hasher: Sha256::new(),
            pos: 0,
        };
        w.data(&primary).map_err(&io)?;
        for (spec, part) in layout.partitions.iter().zip(&gpt.partitions) {
            w.zeros_until(part.first_lba * SECTOR).map_err(&io)?;
            let end = (part.last_lba + 1) * SECTOR;
            match &spec.data {
                PartitionData::Bytes(b) => w.data(b).map_err(&io)?,
                PartitionData::File(src) => {
                    let src_io = io_err(src);
                    let mut f = File::open(src).map_err(&src_io)?;
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let n = f.read(&mut buf).map_err(&src_io)?;
                        if n == 0 {
                            break;
                        }
                        if w.pos + n as u64 > end {
                            return Err(src_io(std::io::Error::other(
                                "the file grew while the disk was written",
                            )));
                        }
                        w.data(&buf[..n]).map_err(&io)?;
                    }
                }
            }
            w.zeros_until(end).map_err(&io)?;
        }
        w.zeros_until(size - backup.len() as u64).map_err(&io)?;
        w.data(&backup).map_err(&io)?;
        w.file.sync_all().map_err(&io)?;
        Ok(hex::encode(w.hasher.finalize()))
    })();
    match result {
        Ok(sha256) => {
            std::fs::rename(&tmp, path).map_err(io_err(path))?;
            Ok(WrittenDisk { gpt, size, sha256 })
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::gpt::tests::read_gpt;
    use crate::emit::gpt::ESP_TYPE;

    fn spec(name: &str, data: PartitionData) -> PartitionSpec {
        PartitionSpec {
            name: name.into(),
            type_guid: ESP_TYPE,
            data,
            min_bytes: 0,
            unique_guid: None,
            attributes: 0,
        }
    }

    #[test]
    fn partitions_land_aligned_with_their_bytes_and_a_valid_gpt() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("second.img");
        std::fs::write(&src, vec![7u8; 1_500_000]).unwrap();
        let layout = DiskLayout {
            partitions: vec![
                spec("first", PartitionData::Bytes(b"hello".to_vec())),
                PartitionSpec {
                    min_bytes: 3 << 20,
                    ..spec("second", PartitionData::File(src))
                },
            ],
        };
        let path = dir.path().join("disk.raw");
        let written = write_disk(&layout, &path).unwrap();
        let disk = std::fs::read(&path).unwrap();
        assert_eq!(disk.len() as u64, written.size);
        assert_eq!(written.size, (1 + 1 + 3 + 1) << 20);
        assert_eq!(hex::encode(Sha256::digest(&disk)), written.sha256);
        let gpt = read_gpt(&disk);
        assert_eq!(gpt, written.gpt);
        let [a, b] = &gpt.partitions[..] else {
            panic!("{gpt:?}")
        };
        assert_eq!((a.first_lba, a.last_lba), (2048, 4095));
        assert_eq!((b.first_lba, b.last_lba), (4096, 4096 + 6144 - 1));
        assert_eq!(&disk[1 << 20..(1 << 20) + 5], b"hello");
        assert!(disk[(1 << 20) + 5..2 << 20].iter().all(|&x| x == 0));
        assert!(disk[2 << 20..(2 << 20) + 1_500_000].iter().all(|&x| x == 7));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "{leftovers:?}");
    }

    #[test]
    fn same_partitions_same_disk_and_guids_follow_content() {
        let dir = tempfile::tempdir().unwrap();
        let layout = |b: &[u8]| DiskLayout {
            partitions: vec![spec("esp", PartitionData::Bytes(b.to_vec()))],
        };
        let one = write_disk(&layout(b"a"), &dir.path().join("1.raw")).unwrap();
        let two = write_disk(&layout(b"a"), &dir.path().join("2.raw")).unwrap();
        let other = write_disk(&layout(b"b"), &dir.path().join("3.raw")).unwrap();
        assert_eq!(one, two);
        assert_ne!(one.gpt.disk_guid, other.gpt.disk_guid);
        assert_ne!(
            one.gpt.partitions[0].unique_guid,
            other.gpt.partitions[0].unique_guid
        );
    }

    #[test]
    fn a_missing_source_file_fails_by_name_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = DiskLayout {
            partitions: vec![spec(
                "root",
                PartitionData::File(dir.path().join("nope.img")),
            )],
        };
        let e = write_disk(&layout, &dir.path().join("disk.raw"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.img"), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
