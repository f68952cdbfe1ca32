//! Squashfs metadata blocks: the tables (inodes, directories, fragments, ids, xattrs) are
//! streams cut into 8 KiB pieces, each stored behind a 2-byte header, compressed when
//! that is smaller. A position in such a stream is the block's offset in the table plus
//! the offset within its uncompressed piece.

use super::compress::compress;

pub const METADATA_SIZE: usize = 8192;
/// Header bit: the block is stored uncompressed.
const UNCOMPRESSED: u16 = 0x8000;

#[derive(Default)]
pub struct MetadataWriter {
    /// Finished blocks, headers included.
    out: Vec<u8>,
    /// Offsets in `out` where each finished block starts.
    starts: Vec<u64>,
    pending: Vec<u8>,
}

impl MetadataWriter {
    /// Where the next byte written will be: (block offset in the table, offset in block).
    pub fn position(&self) -> (u32, u16) {
        // Both fit: tables stay far below 4 GiB, and pending is flushed at 8 KiB.
        (self.out.len() as u32, self.pending.len() as u16)
    }

    /// The same, as squashfs packs it in references (`block << 16 | offset`).
    pub fn reference(&self) -> u64 {
        let (block, offset) = self.position();
        (u64::from(block) << 16) | u64::from(offset)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= METADATA_SIZE {
            self.flush(METADATA_SIZE);
        }
    }

    fn flush(&mut self, len: usize) {
        let chunk: Vec<u8> = self.pending.drain(..len).collect();
        self.starts.push(self.out.len() as u64);
        match compress(&chunk) {
            Some(packed) => {
                self.out
                    .extend_from_slice(&(packed.len() as u16).to_le_bytes());
                self.out.extend_from_slice(&packed);
            }
            None => {
                self.out
                    .extend_from_slice(&(chunk.len() as u16 | UNCOMPRESSED).to_le_bytes());
                self.out.extend_from_slice(&chunk);
            }
        }
    }

    /// The table's bytes and where each block starts in them.
    pub fn finish(mut self) -> (Vec<u8>, Vec<u64>) {
        if !self.pending.is_empty() {
            self.flush(self.pending.len());
        }
        (self.out, self.starts)
    }
}
