//! A raw disk image read front to back in fixed-size clusters, the one input of the
//! qcow2 and VMDK writers. All-zero clusters are told apart so a sparse format can leave
//! them out; the virtual size is the file's, rounded up to whole 512-byte sectors (as QEMU
//! sees a raw file).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use super::EmitError;

pub const SECTOR: u64 = 512;

pub struct RawDisk {
    path: PathBuf,
    reader: BufReader<File>,
    /// Bytes in the file.
    file_len: u64,
    /// Bytes the guest sees: `file_len` rounded up to a sector.
    virtual_size: u64,
    /// Next byte `next_cluster` reads.
    position: u64,
}

impl RawDisk {
    pub fn open(path: &Path) -> Result<RawDisk, EmitError> {
        let io = |source| EmitError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        if file_len == 0 {
            return Err(EmitError::Invalid {
                path: path.display().to_string(),
                problem: "the raw disk image is empty".into(),
            });
        }
        Ok(RawDisk {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            file_len,
            virtual_size: file_len.div_ceil(SECTOR) * SECTOR,
            position: 0,
        })
    }

    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// Fill `buf` with the next cluster (zero-padded past the end of the file);
    /// false once the whole disk has been read.
    pub fn next_cluster(&mut self, buf: &mut [u8]) -> Result<bool, EmitError> {
        if self.position >= self.virtual_size {
            return Ok(false);
        }
        let want = (self.file_len.saturating_sub(self.position)).min(buf.len() as u64) as usize;
        self.reader
            .read_exact(&mut buf[..want])
            .map_err(|source| EmitError::Io {
                path: self.path.display().to_string(),
                source,
            })?;
        buf[want..].fill(0);
        self.position += buf.len() as u64;
        Ok(true)
    }
}

/// True when every byte is zero (16 bytes at a time: this runs over the whole disk).
pub fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(16);
    chunks
        .by_ref()
        .all(|c| u128::from_ne_bytes(c.try_into().expect("16-byte chunk")) == 0)
        && chunks.remainder().iter().all(|&b| b == 0)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    /// Runs qemu-img (the reference reader of our disk formats): success and its output.
    pub fn qemu_img(args: &[&str]) -> (bool, String) {
        let out = std::process::Command::new("qemu-img")
            .args(args)
            .output()
            .expect("qemu-img (qemu-utils) is needed by this test");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// A sparse raw image: random data at `extents` (offset, length), zeros elsewhere,
    /// `len` bytes long. Deterministic (xorshift), so failures reproduce.
    pub fn synthetic_raw(path: &Path, len: u64, extents: &[(u64, usize)], seed: u64) {
        let mut f = File::create(path).unwrap();
        f.set_len(len).unwrap();
        let mut state = seed | 1;
        for &(offset, length) in extents {
            let data: Vec<u8> = (0..length)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // Mostly compressible text with some noise, like a filesystem.
                    if state % 4 == 0 {
                        (state >> 32) as u8
                    } else {
                        b"harmony "[(state % 8) as usize]
                    }
                })
                .collect();
            f.seek(SeekFrom::Start(offset)).unwrap();
            f.write_all(&data).unwrap();
        }
    }

    #[test]
    fn clusters_cover_the_disk_and_pad_the_last_sector() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.raw");
        std::fs::write(&path, vec![7u8; 1000]).unwrap();
        let mut disk = RawDisk::open(&path).unwrap();
        assert_eq!(disk.virtual_size(), 1024);
        let mut buf = vec![1u8; 512];
        assert!(disk.next_cluster(&mut buf).unwrap());
        assert!(buf.iter().all(|&b| b == 7));
        assert!(disk.next_cluster(&mut buf).unwrap());
        assert!(buf[..488].iter().all(|&b| b == 7) && is_zero(&buf[488..]));
        assert!(!disk.next_cluster(&mut buf).unwrap());
    }

    #[test]
    fn zero_test_sees_every_byte() {
        let mut buf = vec![0u8; 65536 + 5];
        assert!(is_zero(&buf));
        for i in [0, 15, 16, 65535, 65540] {
            buf[i] = 1;
            assert!(!is_zero(&buf), "{i}");
            buf[i] = 0;
        }
    }

    #[test]
    fn an_empty_image_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.raw");
        std::fs::write(&path, b"").unwrap();
        let err = RawDisk::open(&path).err().unwrap().to_string();
        assert!(err.contains("empty.raw") && err.contains("empty"), "{err}");
    }
}
