//! Any bytes as a disk harmony-init edits at a disk boot: make sure of a /var partition
//! (create, grow or leave it), then clear its attribute bit, on the bytes in memory. An
//! error or a table, never a panic; and a table it wrote reads back the same.
//!
//! The first byte scales the disk and chooses whether the harness seals the fuzzer's
//! table (signature, header size, both CRCs): random bytes almost never pass the CRCs, so
//! without sealing only the rejection paths would be explored.
#![no_main]

use std::cell::RefCell;

use harmony_init::gpt::{ensure_partition, set_attributes, Outcome, PartitionSpec};
use harmony_init::var_volume::{UNFORMATTED, VAR_TYPE};
use libfuzzer_sys::fuzz_target;

const SECTOR: usize = 512;

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

/// Writes the signature and header size, then the entry array's CRC (where the header
/// says the array is, if it is on the disk) and the header's CRC.
fn seal(disk: &mut [u8]) {
    if disk.len() < 2 * SECTOR {
        return;
    }
    disk[SECTOR..SECTOR + 8].copy_from_slice(b"EFI PART");
    disk[SECTOR + 12..SECTOR + 16].copy_from_slice(&92u32.to_le_bytes());
    let h = &disk[SECTOR..SECTOR + 92];
    let lba = u64::from_le_bytes(h[72..80].try_into().expect("8 bytes")) as usize;
    let (count, size) = (le32(h, 80) % 256, le32(h, 84));
    let array = lba
        .checked_mul(SECTOR)
        .and_then(|start| Some((start, start.checked_add(count.checked_mul(size)?)?)))
        .filter(|&(_, end)| end <= disk.len());
    if let Some((start, end)) = array {
        let crc = crc32fast::hash(&disk[start..end]);
        disk[SECTOR + 80..SECTOR + 84].copy_from_slice(&(count as u32).to_le_bytes());
        disk[SECTOR + 88..SECTOR + 92].copy_from_slice(&crc.to_le_bytes());
    }
    disk[SECTOR + 16..SECTOR + 20].fill(0);
    let crc = crc32fast::hash(&disk[SECTOR..SECTOR + 92]);
    disk[SECTOR + 16..SECTOR + 20].copy_from_slice(&crc.to_le_bytes());
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, table)) = data.split_first() else {
        return;
    };
    let mut bytes = table.to_vec();
    bytes.resize(table.len().max(usize::from(control & 0x7f) << 13), 0);
    if control & 0x80 != 0 {
        seal(&mut bytes);
    }
    let disk = RefCell::new(bytes);
    let spec = PartitionSpec {
        name: "harmony-var",
        type_guid: VAR_TYPE,
        min_bytes: 64 << 10,
        attributes: UNFORMATTED,
    };
    let Ok((outcome, attributes)) = ensure_partition(&disk, "fuzz", &spec, [7; 16]) else {
        return;
    };
    if set_attributes(&disk, "fuzz", outcome.number(), attributes & !UNFORMATTED).is_ok() {
        let (again, left) = ensure_partition(&disk, "fuzz", &spec, [9; 16])
            .expect("a table harmony-init wrote reads back");
        assert_eq!(again.number(), outcome.number());
        assert!(matches!(again, Outcome::Unchanged { .. }), "{again:?}");
        assert_eq!(left & UNFORMATTED, 0);
    }
});
