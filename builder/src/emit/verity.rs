//! The dm-verity hash tree of the root filesystem image: bytes in, hash area and root
//! hash out. Pure: no files, no devices.
//!
//! Format: dm-verity version 1 ("normal" hash type), sha256, 4096-byte data and hash
//! blocks, as `veritysetup format --format=1 --hash=sha256` writes it onto a separate
//! hash device: a 512-byte veritysetup superblock padded to one hash block, then the
//! tree with its top level first and the level over the data blocks last. The kernel
//! ignores the superblock (the table says `hash_start_block` 1); it is there so that
//! `veritysetup verify DATA HASH ROOTHASH` works on the disk with no other argument.
//! Boot trusts only the command line, which carries every parameter (docs/boot-flow.md).
//!
//! The salt and the superblock UUID are derived from the image's sha256, so the same
//! image gives the same bytes: the build stays bit-reproducible.

use sha2::{Digest, Sha256};

/// Data and hash block size in bytes (the page size: what every kernel accepts).
pub const BLOCK_SIZE: usize = 4096;
/// The hash algorithm, by its kernel crypto API name.
pub const ALGORITHM: &str = "sha256";
/// dm-verity hash type: 1 is "normal" (salt first); 0 is the Chrome OS variant.
pub const HASH_TYPE: u32 = 1;
/// The tree starts after the superblock, which takes one hash block.
pub const HASH_START_BLOCK: u64 = 1;

const DIGEST_SIZE: usize = 32;
const HASHES_PER_BLOCK: usize = BLOCK_SIZE / DIGEST_SIZE;
const SUPERBLOCK_SIGNATURE: &[u8; 8] = b"verity\0\0";
const SUPERBLOCK_VERSION: u32 = 1;
const SUPERBLOCK_SIZE: usize = 512;
/// Domain separation: the salt is not the image digest itself.
const SALT_CONTEXT: &[u8] = b"harmony dm-verity salt v1\0";
const UUID_CONTEXT: &[u8] = b"harmony dm-verity uuid v1\0";

/// What the kernel needs to verify the data, and the bytes of the hash partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityTree {
    /// Superblock block, then the tree: the whole hash partition's contents.
    pub hash_area: Vec<u8>,
    pub root_hash: [u8; DIGEST_SIZE],
    pub salt: [u8; DIGEST_SIZE],
    /// Number of 4096-byte data blocks covered; a final partial block counts as one,
    /// zero-padded, so the data partition must hold `data_blocks * 4096` bytes with
    /// zeros after the image.
    pub data_blocks: u64,
    /// The superblock's UUID (veritysetup shows it; the kernel never sees it).
    pub uuid: [u8; 16],
}

impl VerityTree {
    /// The tree of a root image, with the salt and UUID derived from its digest.
    pub fn of_image(data: &[u8]) -> Self {
        let digest = Sha256::digest(data);
        let derive = |context: &[u8]| -> [u8; DIGEST_SIZE] {
            let mut h = Sha256::new();
            h.update(context);
            h.update(digest);
            h.finalize().into()
        };
        let salt = derive(SALT_CONTEXT);
        let mut uuid: [u8; 16] = derive(UUID_CONTEXT)[..16].try_into().expect("16 bytes");
        // An RFC 4122 version 4 / variant 1 UUID, as veritysetup generates.
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        Self::build(data, salt, uuid)
    }

    /// The tree for a given salt and UUID (also what the known-answer tests use).
    pub fn build(data: &[u8], salt: [u8; DIGEST_SIZE], uuid: [u8; 16]) -> Self {
        let data_blocks = data.len().div_ceil(BLOCK_SIZE) as u64;
        let hash_block = |block: &[u8]| -> [u8; DIGEST_SIZE] {
            let mut h = Sha256::new();
            h.update(salt);
            h.update(block);
            // A short last data block hashes as if zero-padded to a full block.
            if block.len() < BLOCK_SIZE {
                h.update(&[0u8; BLOCK_SIZE][..BLOCK_SIZE - block.len()]);
            }
            h.finalize().into()
        };

        // Levels from the data upwards; each level is whole hash blocks.
        let mut levels: Vec<Vec<u8>> = Vec::new();
        let mut below: Vec<[u8; DIGEST_SIZE]> = data.chunks(BLOCK_SIZE).map(hash_block).collect();
        let root_hash = loop {
            // The kernel stops when one block's digest is left: that digest is the root.
            // Zero data blocks give no levels and the digest of nothing useful; an
            // empty image is not a root filesystem, so it is simply the salt's hash.
            if below.len() <= 1 {
                break below
                    .first()
                    .copied()
                    .unwrap_or_else(|| Sha256::digest(salt).into());
            }
            let mut level = Vec::with_capacity(below.len().div_ceil(HASHES_PER_BLOCK) * BLOCK_SIZE);
            for chunk in below.chunks(HASHES_PER_BLOCK) {
                for digest in chunk {
                    level.extend_from_slice(digest);
                }
                level.resize(level.len().div_ceil(BLOCK_SIZE) * BLOCK_SIZE, 0);
            }
            below = level.chunks(BLOCK_SIZE).map(hash_block).collect();
            levels.push(level);
        };

        let tree_len: usize = levels.iter().map(Vec::len).sum();
        let mut hash_area = Vec::with_capacity(BLOCK_SIZE + tree_len);
        hash_area.extend_from_slice(&superblock(&uuid, &salt, data_blocks));
        hash_area.resize(BLOCK_SIZE, 0);
        for level in levels.iter().rev() {
            hash_area.extend_from_slice(level);
        }
        VerityTree {
            hash_area,
            root_hash,
            salt,
            data_blocks,
            uuid,
        }
    }

    pub fn root_hash_hex(&self) -> String {
        hex::encode(self.root_hash)
    }

    pub fn salt_hex(&self) -> String {
        hex::encode(self.salt)
    }
}

/// `struct verity_sb` of cryptsetup (lib/verity/verity.c), little-endian, 512 bytes.
fn superblock(uuid: &[u8; 16], salt: &[u8], data_blocks: u64) -> [u8; SUPERBLOCK_SIZE] {
    let mut sb = [0u8; SUPERBLOCK_SIZE];
    sb[0..8].copy_from_slice(SUPERBLOCK_SIGNATURE);
    sb[8..12].copy_from_slice(&SUPERBLOCK_VERSION.to_le_bytes());
    sb[12..16].copy_from_slice(&HASH_TYPE.to_le_bytes());
    sb[16..32].copy_from_slice(uuid);
    sb[32..32 + ALGORITHM.len()].copy_from_slice(ALGORITHM.as_bytes());
    sb[64..68].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
    sb[68..72].copy_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
    sb[72..80].copy_from_slice(&data_blocks.to_le_bytes());
    sb[80..82].copy_from_slice(&(salt.len() as u16).to_le_bytes());
    sb[88..88 + salt.len()].copy_from_slice(salt);
    sb
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// An independent implementation of the same format (written from the kernel's
    /// dm-verity documentation, not from the code above): prints the root hash and the
    /// hex of the hash area, for the data file, salt and UUID given.
    const PYTHON_ORACLE: &str = r#"
import hashlib, struct, sys
data = open(sys.argv[1], 'rb').read()
salt = bytes.fromhex(sys.argv[2]); uuid = bytes.fromhex(sys.argv[3])
B = 4096
if len(data) % B:
    data += b'\0' * (B - len(data) % B)
nblocks = len(data) // B
h = lambda b: hashlib.sha256(salt + b).digest()
# Number of levels as the kernel computes it (drivers/md/dm-verity-target.c).
bits = 7
levels = 0
while bits * levels < 64 and (nblocks - 1) >> (bits * levels):
    levels += 1
blocks = [data[i:i + B] for i in range(0, len(data), B)]
stored = []
for _ in range(levels):
    digests = b''.join(h(b) for b in blocks)
    per = []
    for i in range(0, len(digests), B):
        per.append(digests[i:i + B].ljust(B, b'\0'))
    stored.append(b''.join(per))
    blocks = per
root = h(blocks[0])
sb = struct.pack('<8sII16s32sIIQH6s256s168s', b'verity', 1, 1, uuid, b'sha256',
                 B, B, nblocks, len(salt), b'', salt, b'')
area = sb.ljust(B, b'\0') + b''.join(reversed(stored))
print(root.hex())
print(area.hex())
"#;

    fn python_oracle(data: &[u8], salt: &[u8; 32], uuid: &[u8; 16]) -> (String, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, data).unwrap();
        let out = Command::new("python3")
            .arg("-c")
            .arg(PYTHON_ORACLE)
            .arg(&file)
            .arg(hex::encode(salt))
            .arg(hex::encode(uuid))
            .output()
            .expect("python3 runs (it is a build requirement of the tests)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        let root = lines.next().unwrap().to_string();
        let area = hex::decode(lines.next().unwrap()).unwrap();
        (root, area)
    }

    /// Deterministic, non-repeating bytes (so a misplaced block changes a digest).
    fn pattern(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 32);
        let mut counter = 0u64;
        while out.len() < len {
            out.extend_from_slice(&Sha256::digest(counter.to_le_bytes()));
            counter += 1;
        }
        out.truncate(len);
        out
    }

    /// cryptsetup's own test suite (tests/verity-compat-test): 8 MiB of zeros, 4096-byte
    /// blocks, this salt, format 1, sha256 — the root hash veritysetup prints.
    #[test]
    fn matches_veritysetup_known_answer() {
        let salt: [u8; 32] =
            hex::decode("e48da609055204e89ae53b655ca2216dd983cf3cb829f34f63a297d106d53e2d")
                .unwrap()
                .try_into()
                .unwrap();
        let tree = VerityTree::build(&vec![0u8; 8 << 20], salt, [0; 16]);
        assert_eq!(
            tree.root_hash_hex(),
            "e522df0f97da4febb882ac40f30b37dc0b444bf6df418929463fa25280f09d5c"
        );
        assert_eq!(tree.data_blocks, 2048);
        // Superblock + 1 top block + 16 level-0 blocks (2048 / 128).
        assert_eq!(tree.hash_area.len(), (1 + 1 + 16) * BLOCK_SIZE);
    }

    #[test]
    fn matches_independent_python_implementation() {
        // One block, a partial block, exactly one full hash block of digests, and
        // one more (two levels).
        for len in [
            1,
            BLOCK_SIZE,
            3 * BLOCK_SIZE + 17,
            128 * BLOCK_SIZE,
            129 * BLOCK_SIZE,
        ] {
            agrees_with_python(len);
        }
    }

    /// 128 * 128 + 1 blocks (64 MiB): the smallest tree with three levels. Slow in a
    /// debug build (sha2 unoptimised); quick in CI's release build.
    #[test]
    fn matches_independent_python_implementation_with_three_levels() {
        agrees_with_python((128 * 128 + 1) * BLOCK_SIZE);
    }

    fn agrees_with_python(len: usize) {
        let salt = [0x5a; 32];
        let uuid = *b"0123456789abcdef";
        let data = pattern(len);
        let tree = VerityTree::build(&data, salt, uuid);
        let (root, area) = python_oracle(&data, &salt, &uuid);
        assert_eq!(tree.root_hash_hex(), root, "root hash, {len} bytes");
        assert!(tree.hash_area == area, "hash area differs, {len} bytes");
        assert_eq!(tree.data_blocks, len.div_ceil(BLOCK_SIZE) as u64);
    }

    #[test]
    fn superblock_fields_are_where_veritysetup_reads_them() {
        let tree = VerityTree::of_image(&pattern(5 * BLOCK_SIZE));
        let sb = &tree.hash_area[..SUPERBLOCK_SIZE];
        assert_eq!(&sb[..8], b"verity\0\0");
        assert_eq!(u32::from_le_bytes(sb[8..12].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(sb[12..16].try_into().unwrap()), 1);
        assert_eq!(&sb[16..32], &tree.uuid);
        assert_eq!(&sb[32..39], b"sha256\0");
        assert_eq!(u64::from_le_bytes(sb[72..80].try_into().unwrap()), 5);
        assert_eq!(u16::from_le_bytes(sb[80..82].try_into().unwrap()), 32);
        assert_eq!(&sb[88..120], &tree.salt);
        assert!(tree.hash_area[120..BLOCK_SIZE].iter().all(|&b| b == 0));
        // Version 4, RFC 4122 variant.
        assert_eq!(tree.uuid[6] >> 4, 4);
        assert_eq!(tree.uuid[8] >> 6, 0b10);
    }

    #[test]
    fn same_image_same_tree_and_any_change_changes_root_and_salt() {
        let data = pattern(10 * BLOCK_SIZE);
        let a = VerityTree::of_image(&data);
        assert_eq!(a, VerityTree::of_image(&data));
        let mut changed = data.clone();
        changed[7 * BLOCK_SIZE + 100] ^= 1;
        let b = VerityTree::of_image(&changed);
        assert_ne!(a.root_hash, b.root_hash);
        assert_ne!(a.salt, b.salt);
        assert_ne!(
            a.salt[..],
            Sha256::digest(&data)[..],
            "salt is not the bare digest"
        );
        // Changing one data block under the same salt changes the root too.
        assert_ne!(
            VerityTree::build(&changed, a.salt, a.uuid).root_hash,
            a.root_hash
        );
    }
}
