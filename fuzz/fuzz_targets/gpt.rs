//! Any bytes as a disk harmony-init edits at a disk boot: make sure of a /var partition
//! (create, grow or leave it), then clear its attribute bit, on the bytes in memory. An
//! error or a table, never a panic; and a table it wrote reads back the same.
#![no_main]

use std::cell::RefCell;

use harmony_init::gpt::{ensure_partition, set_attributes, Outcome, PartitionSpec};
use harmony_init::var_volume::{UNFORMATTED, VAR_TYPE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte scales the disk: the fuzzer's table, then zeros up to the size.
    let Some((&scale, table)) = data.split_first() else {
        return;
    };
    let mut bytes = table.to_vec();
    bytes.resize(table.len().max(usize::from(scale) << 12), 0);
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
