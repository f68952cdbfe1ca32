//! Blocks an earlier build compressed, found by the sha256 of their raw bytes, so a
//! rebuild after a small change compresses only the blocks that changed. zstd gives the
//! same output for the same input and level, so a reused block is byte for byte what
//! compressing it again would give: the image stays reproducible.
//!
//! Each image's block list is kept beside it as records of 44 bytes: the raw block's
//! sha256, where its stored bytes start in that image (u64 LE) and its squashfs size
//! field (u32 LE, with the uncompressed bit).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::DATA_UNCOMPRESSED;

const RECORD: usize = 32 + 8 + 4;

/// How one block is stored: compressed bytes, or `None` when it is kept raw.
pub type Stored<'a> = Option<&'a [u8]>;

#[derive(Default)]
pub struct EarlierBlocks<'a> {
    by_raw: HashMap<[u8; 32], Stored<'a>>,
}

impl<'a> EarlierBlocks<'a> {
    /// Read an image's block list; records that do not fit the image are ignored (a
    /// damaged list costs compression time, never a wrong block).
    pub fn parse(image: &'a [u8], list: &[u8]) -> Self {
        let mut by_raw = HashMap::new();
        for record in list.chunks_exact(RECORD) {
            let (sha, rest) = record.split_at(32);
            let (offset, size) = rest.split_at(8);
            let (Ok(sha), Ok(offset), Ok(size)) = (
                <[u8; 32]>::try_from(sha),
                <[u8; 8]>::try_from(offset),
                <[u8; 4]>::try_from(size),
            ) else {
                continue;
            };
            let size = u32::from_le_bytes(size);
            if size & DATA_UNCOMPRESSED != 0 {
                by_raw.insert(sha, None);
                continue;
            }
            let Ok(start) = usize::try_from(u64::from_le_bytes(offset)) else {
                continue;
            };
            if let Some(bytes) = image.get(start..start.saturating_add(size as usize)) {
                by_raw.insert(sha, Some(bytes));
            }
        }
        EarlierBlocks { by_raw }
    }

    pub fn len(&self) -> usize {
        self.by_raw.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_raw.is_empty()
    }

    /// How the block with these raw bytes was stored before, if it was.
    pub fn get(&self, sha: &[u8; 32]) -> Option<Stored<'a>> {
        self.by_raw.get(sha).copied()
    }
}

pub fn digest(raw: &[u8]) -> [u8; 32] {
    Sha256::digest(raw).into()
}

/// The block list of an image being written, one record per stored block.
#[derive(Default)]
pub struct BlockList(Vec<u8>);

impl BlockList {
    pub fn push(&mut self, sha: &[u8; 32], offset: u64, size_field: u32) {
        self.0.extend_from_slice(sha);
        self.0.extend_from_slice(&offset.to_le_bytes());
        self.0.extend_from_slice(&size_field.to_le_bytes());
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}
