//! File capabilities a build step's command sets, as the image must carry them.
//!
//! Inside the step's user namespace the kernel stores `security.capability` in its
//! namespaced form (revision 3, followed by the host uid of the namespace's root). The
//! booted image has no such namespace: its root is the initial namespace's, where a
//! revision-3 value only counts if that uid is 0. So a value written for the namespace's
//! root is turned back into the plain revision-2 form, as `getcap` inside the namespace
//! shows it (and as the kernel itself hands it to readers there).

pub const CAPABILITY: &str = "security.capability";

const REVISION_MASK: u32 = 0xff00_0000;
const REVISION_2: u32 = 0x0200_0000;
const REVISION_3: u32 = 0x0300_0000;
/// magic_etc + two (permitted, inheritable) pairs.
const REVISION_2_SIZE: usize = 20;
/// ... + rootid.
const REVISION_3_SIZE: usize = 24;

/// `value` as the image needs it when `ns_root` is the host uid the namespace's root
/// maps to; values in another form (or for another root) are kept as they are.
pub fn for_image(value: &[u8], ns_root: u32) -> Vec<u8> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(value.get(at..at + 4)?.try_into().ok()?))
    };
    match (value.len(), word(0), word(REVISION_2_SIZE)) {
        (REVISION_3_SIZE, Some(magic), Some(rootid))
            if magic & REVISION_MASK == REVISION_3 && rootid == ns_root =>
        {
            let mut v2 = value[..REVISION_2_SIZE].to_vec();
            let magic = REVISION_2 | (magic & !REVISION_MASK);
            v2[..4].copy_from_slice(&magic.to_le_bytes());
            v2
        }
        _ => value.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `setcap cap_net_raw+ep` as written in a namespace whose root is host uid 1000000,
    /// and as written by real root.
    const V3: [u8; 24] = [
        0, 0, 0, 3, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x42, 0x0f, 0,
    ];
    const V2: [u8; 20] = [
        1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn a_namespaced_capability_becomes_the_plain_one() {
        let mut effective = V3;
        effective[0] = 1;
        assert_eq!(for_image(&effective, 1_000_000), V2);
        let mut v2_not_effective = V2;
        v2_not_effective[0] = 0;
        assert_eq!(for_image(&V3, 1_000_000), v2_not_effective);
        // Another namespace's root, a plain value, garbage: as they are.
        assert_eq!(for_image(&V3, 1000), V3);
        assert_eq!(for_image(&V2, 1_000_000), V2);
        assert_eq!(for_image(b"xx", 1_000_000), b"xx");
    }
}
