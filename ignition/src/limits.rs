//! How much a config may make the agent hold in memory or write. A config is hostile
//! input: a 1 MiB gzip inflates to 1 GiB, so every decompression stops at its cap instead
//! of allocating whatever the stream claims, and file contents are inflated only while
//! they are written ([`crate::Contents`]; README, First boot: "Limits").

use std::io::Read;

/// One file's contents (or one `append` entry) once decoded and decompressed: what it
/// writes to disk (it is never held decompressed).
pub const MAX_FILE_BYTES: u64 = 512 << 20;
/// Every file's contents in one config together, decompressed: what the config writes.
pub const MAX_CONFIG_BYTES: u64 = 1 << 30;
/// Every file's contents in one config together as held in memory until they are
/// written: data URLs decoded and fetched bodies, gzip still compressed.
pub const MAX_HELD_BYTES: u64 = 256 << 20;
/// A config document itself (Ignition JSON, user-data, a guestinfo value) once decompressed.
pub const MAX_DOCUMENT_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GunzipError {
    #[error("invalid gzip data: {0}")]
    Invalid(String),
    #[error("decompressed size exceeds {0} bytes")]
    TooLarge(u64),
}

/// Gunzip at most `cap` bytes: past that, the error comes after `cap + 1` bytes were
/// produced, never after the whole stream.
pub fn gunzip(data: &[u8], cap: u64) -> Result<Vec<u8>, GunzipError> {
    read_at_most(flate2::read::GzDecoder::new(data), cap).map_err(|e| match e {
        ReadError::Io(e) => GunzipError::Invalid(e.to_string()),
        ReadError::TooLarge => GunzipError::TooLarge(cap),
    })
}

pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLarge,
}

/// Read everything, or stop with `TooLarge` once more than `cap` bytes came.
pub(crate) fn read_at_most(r: impl Read, cap: u64) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    r.take(cap.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(ReadError::Io)?;
    if out.len() as u64 > cap {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}

/// The running totals of file contents in one config, against [`MAX_CONFIG_BYTES`]
/// (written) and [`MAX_HELD_BYTES`] (held in memory).
#[derive(Debug, Default)]
pub struct ConfigBudget {
    written: u64,
    held: u64,
}

/// Which of the config's totals a file's contents took past its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// [`MAX_CONFIG_BYTES`]
    Written(u64),
    /// [`MAX_HELD_BYTES`]
    Held(u64),
}

impl OverBudget {
    pub fn problem(self) -> crate::Problem {
        match self {
            OverBudget::Written(cap) => crate::Problem::ConfigTooLarge(cap),
            OverBudget::Held(cap) => crate::Problem::ConfigHeldTooLarge(cap),
        }
    }
}

impl ConfigBudget {
    /// Count one more file's contents (or append entry).
    pub fn take(&mut self, c: &crate::Contents) -> Result<(), OverBudget> {
        self.written = self.written.saturating_add(c.len());
        self.held = self.held.saturating_add(c.held_bytes());
        if self.written > MAX_CONFIG_BYTES {
            return Err(OverBudget::Written(MAX_CONFIG_BYTES));
        }
        if self.held > MAX_HELD_BYTES {
            return Err(OverBudget::Held(MAX_HELD_BYTES));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// Counts the bytes a reader hands out: proof that the cap stops the decompressor,
    /// not only the result.
    struct Counting<R> {
        inner: R,
        produced: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.produced.set(self.produced.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap_without_inflating_the_rest() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&chunk).unwrap();
        }
        let bomb = gz.finish().unwrap();
        let produced = std::rc::Rc::new(std::cell::Cell::new(0));
        let r = Counting {
            inner: flate2::read::GzDecoder::new(&bomb[..]),
            produced: produced.clone(),
        };
        assert!(matches!(read_at_most(r, 1 << 20), Err(ReadError::TooLarge)));
        assert!(produced.get() <= (1 << 20) + 1, "{}", produced.get());
        assert_eq!(gunzip(&bomb, 1 << 20), Err(GunzipError::TooLarge(1 << 20)));
        assert_eq!(gunzip(&bomb, 64 << 20).map(|v| v.len()), Ok(64 << 20));
        assert!(matches!(gunzip(b"plain", 10), Err(GunzipError::Invalid(_))));
    }

    #[test]
    fn the_budget_counts_across_files() {
        let half = crate::Contents::from(vec![0u8; (MAX_HELD_BYTES / 2) as usize]);
        let mut b = ConfigBudget::default();
        assert_eq!(b.take(&half), Ok(()));
        assert_eq!(b.take(&half), Ok(()));
        assert_eq!(
            b.take(&crate::Contents::from("x")),
            Err(OverBudget::Held(MAX_HELD_BYTES))
        );
    }

    #[test]
    fn compressed_contents_count_inflated_against_what_is_written() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..MAX_FILE_BYTES >> 20 {
            gz.write_all(&chunk).unwrap();
        }
        let file = crate::Contents::gunzip(gz.finish().unwrap(), MAX_FILE_BYTES).unwrap();
        let mut b = ConfigBudget::default();
        for _ in 0..MAX_CONFIG_BYTES / MAX_FILE_BYTES {
            assert_eq!(b.take(&file), Ok(()));
        }
        assert_eq!(b.take(&file), Err(OverBudget::Written(MAX_CONFIG_BYTES)));
    }
}
