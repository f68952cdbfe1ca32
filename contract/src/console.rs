//! The console lines the binaries print for `harmony run` and the QEMU tests to find:
//! each starts with a marker, printed whole in one write so that no other output splits it.

/// harmony-agent prints it, then the first-boot report as JSON on the same line, once first
/// boot is done (or was done before): `HARMONY-FIRSTBOOT {"status":"success",…}`.
pub const FIRSTBOOT_MARKER: &str = "HARMONY-FIRSTBOOT ";

/// harmony-init prints it, then `: ` and what went wrong, before it powers off on a
/// failure: `HARMONY-INIT-ERROR: no root image …`.
pub const INIT_ERROR_MARKER: &str = "HARMONY-INIT-ERROR";

#[cfg(test)]
mod tests {
    use super::*;

    /// `harmony run` looks for either marker anywhere in a line: neither may contain the
    /// other, and both are one upper-case word a kernel or init message does not print.
    #[test]
    fn the_markers_tell_each_other_apart() {
        for (marker, other) in [
            (FIRSTBOOT_MARKER, INIT_ERROR_MARKER),
            (INIT_ERROR_MARKER, FIRSTBOOT_MARKER),
        ] {
            assert!(!marker.contains(other.trim_end()), "{marker:?} {other:?}");
            let word = marker.trim_end();
            assert!(word.starts_with("HARMONY-"), "{marker:?}");
            assert!(
                word.bytes().all(|b| b.is_ascii_uppercase() || b == b'-'),
                "{marker:?}"
            );
        }
        // The report follows its marker on the same line, after one space.
        assert!(FIRSTBOOT_MARKER.ends_with(' '));
    }
}
