//! The two partitions a disk image's verified root is made of, and the kernel
//! command line that ties them together (docs/boot-flow.md, "Disk boot"): the root
//! filesystem image zero-padded to whole 4096-byte blocks, its dm-verity hash area,
//! and `harmony.root=` / `harmony.verity.*=` / `harmony.var=` for harmony-init.

use super::gpt::Guid;
use super::verity::{VerityTree, BLOCK_SIZE};

/// GPT partition names harmony-init looks the partitions up by.
pub const ROOT_PARTITION_NAME: &str = "harmony-root";
pub const VERITY_PARTITION_NAME: &str = "harmony-root-verity";
/// Made by harmony-init at first boot in the space after the others.
pub const VAR_PARTITION_NAME: &str = "harmony-var";
/// Discoverable Partitions Specification type GUIDs (x86-64).
pub const ROOT_TYPE_GUID: &str = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709";
pub const VERITY_TYPE_GUID: &str = "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5";
/// GPT attribute bit 55 on the empty /var partition: "Harmony made this partition and
/// its /var is not complete yet": harmony-init formats it while the bit is set and clears
/// it once /var is whole, and never formats a partition without it (init/src/var_volume.rs
/// `UNFORMATTED`).
pub const VAR_UNFORMATTED_ATTRIBUTE: u64 = 1 << 55;
pub const VAR_TYPE_GUID: &str = "4d21b016-b534-45c2-a9fb-5c16e091fd2d";
pub const ROOT_TYPE: Guid = Guid::from_fields(
    0x4f68bce3,
    0xe8cd,
    0x4db1,
    [0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09],
);
pub const VERITY_TYPE: Guid = Guid::from_fields(
    0x2c7357ed,
    0xebd2,
    0x46d9,
    [0xae, 0xc1, 0x23, 0xd4, 0x37, 0xec, 0x2b, 0xf5],
);
pub const VAR_TYPE: Guid = Guid::from_fields(
    0x4d21b016,
    0xb534,
    0x45c2,
    [0xa9, 0xfb, 0x5c, 0x16, 0xe0, 0x91, 0xfd, 0x2d],
);

pub struct VerifiedRoot {
    /// The root image padded with zeros to `tree.data_blocks` blocks.
    pub root_partition: Vec<u8>,
    /// The hash partition's contents (veritysetup superblock + tree).
    pub verity_partition: Vec<u8>,
    pub tree: VerityTree,
}

impl VerifiedRoot {
    pub fn of_image(image: &[u8]) -> Self {
        let tree = VerityTree::of_image(image);
        let mut root_partition = Vec::with_capacity(tree.data_blocks as usize * BLOCK_SIZE);
        root_partition.extend_from_slice(image);
        root_partition.resize(tree.data_blocks as usize * BLOCK_SIZE, 0);
        VerifiedRoot {
            root_partition,
            verity_partition: tree.hash_area.clone(),
            tree,
        }
    }

    /// What the kernel command line must carry (appended to the recipe's).
    pub fn kernel_args(&self) -> Vec<String> {
        vec![
            format!("harmony.root=PARTLABEL={ROOT_PARTITION_NAME}"),
            format!("harmony.verity.hash=PARTLABEL={VERITY_PARTITION_NAME}"),
            format!("harmony.verity.roothash={}", self.tree.root_hash_hex()),
            format!("harmony.verity.salt={}", self.tree.salt_hex()),
            format!("harmony.verity.blocks={}", self.tree.data_blocks),
            format!("harmony.var=PARTLABEL={VAR_PARTITION_NAME}"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same GUID in text and in GPT byte order (first three fields little-endian).
    fn on_disk(text: &str) -> [u8; 16] {
        let h = hex::decode(text.replace('-', "")).unwrap();
        let mut b = [0u8; 16];
        b.copy_from_slice(&h);
        b[..4].reverse();
        b[4..6].reverse();
        b[6..8].reverse();
        b
    }

    #[test]
    fn type_guids_match_their_text() {
        assert_eq!(ROOT_TYPE.0, on_disk(ROOT_TYPE_GUID));
        assert_eq!(VERITY_TYPE.0, on_disk(VERITY_TYPE_GUID));
        assert_eq!(VAR_TYPE.0, on_disk(VAR_TYPE_GUID));
    }

    #[test]
    fn root_is_padded_to_the_blocks_the_tree_covers() {
        let image = vec![7u8; 3 * BLOCK_SIZE + 5];
        let v = VerifiedRoot::of_image(&image);
        assert_eq!(v.tree.data_blocks, 4);
        assert_eq!(v.root_partition.len(), 4 * BLOCK_SIZE);
        assert_eq!(&v.root_partition[..image.len()], &image[..]);
        assert!(v.root_partition[image.len()..].iter().all(|&b| b == 0));
        // The padded partition hashes to the same tree: what the kernel reads.
        assert_eq!(
            VerityTree::build(&v.root_partition, v.tree.salt, v.tree.uuid),
            v.tree
        );
    }

    #[test]
    fn kernel_args_name_partitions_and_every_verity_parameter() {
        let v = VerifiedRoot::of_image(&[1u8; BLOCK_SIZE]);
        let args = v.kernel_args();
        assert_eq!(args[0], "harmony.root=PARTLABEL=harmony-root");
        assert_eq!(args[1], "harmony.verity.hash=PARTLABEL=harmony-root-verity");
        assert_eq!(
            args[2],
            format!("harmony.verity.roothash={}", hex::encode(v.tree.root_hash))
        );
        assert_eq!(
            args[3],
            format!("harmony.verity.salt={}", hex::encode(v.tree.salt))
        );
        assert_eq!(args[4], "harmony.verity.blocks=1");
        assert_eq!(args[5], "harmony.var=PARTLABEL=harmony-var");
    }
}
