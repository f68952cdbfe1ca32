//! sha256 digests: checking their form, locating blobs, hashing while reading.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Check `sha256:` followed by 64 lowercase hex digits.
pub fn check_sha256(digest: &str) -> Result<(), String> {
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("digest {digest:?} is not sha256:HEX"))?;
    if hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(format!("digest {digest:?} needs 64 lowercase hex digits"))
    }
}

/// `sha256:HEX` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Where a layout keeps a blob: `ROOT/blobs/sha256/HEX`. The digest must be checked first.
pub fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    root.join("blobs").join(algo).join(hex)
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// `(sha256:HEX, bytes read)`.
    pub fn finish(self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.count,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_form() {
        assert!(check_sha256(&sha256_digest(b"x")).is_ok());
        assert!(check_sha256("sha256:ABCD").is_err());
        assert!(check_sha256(&sha256_digest(b"x").to_uppercase()).is_err());
        assert!(check_sha256("sha512:00").is_err());
    }

    #[test]
    fn hashing_reader_matches_one_shot_hash() {
        let data = vec![42u8; 100_000];
        let mut r = HashingReader::new(&data[..]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.finish(), (sha256_digest(&data), 100_000));
    }
}
