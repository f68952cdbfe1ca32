//! How much a config may make the agent hold in memory. A config is hostile input: a 1 MiB
//! gzip inflates to 1 GiB, so every decompression stops at its cap instead of allocating
//! whatever the stream claims (README, First boot: "Limits").

use std::io::Read;

/// One file's contents (or one `append` entry) once decoded and decompressed.
pub const MAX_FILE_BYTES: u64 = 128 << 20;
/// Every file's contents in one config together.
pub const MAX_CONFIG_BYTES: u64 = 256 << 20;
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

/// The running total of file contents in one config, against [`MAX_CONFIG_BYTES`].
#[derive(Debug, Default)]
pub struct ConfigBudget {
    used: u64,
}

impl ConfigBudget {
    /// Count `len` more bytes; false once the config's total passes the cap.
    pub fn take(&mut self, len: usize) -> bool {
        self.used = self.used.saturating_add(len as u64);
        self.used <= MAX_CONFIG_BYTES
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
        let mut b = ConfigBudget::default();
        assert!(b.take((MAX_CONFIG_BYTES / 2) as usize));
        assert!(b.take((MAX_CONFIG_BYTES / 2) as usize));
        assert!(!b.take(1));
    }
}
