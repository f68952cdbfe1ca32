//! A file's contents as a config gives them: bytes held as given, gzip data kept
//! compressed. Gzip data is inflated once when the config is read, to check its size and
//! hash without keeping the result, and again only while the agent writes it to disk; so
//! memory never holds a file decompressed, whatever its size (README, First boot:
//! "Limits").

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::limits::GunzipError;

/// Length and sha256 are known from the start; equality compares them.
#[derive(Clone)]
pub struct Contents {
    pieces: Vec<Piece>,
    len: u64,
    sha256: [u8; 32],
}

#[derive(Clone)]
enum Piece {
    Bytes(Arc<[u8]>),
    Gzip(Arc<[u8]>),
}

impl Piece {
    fn reader(&self) -> Box<dyn Read + '_> {
        match self {
            Piece::Bytes(b) => Box::new(&b[..]),
            Piece::Gzip(z) => Box::new(flate2::read::GzDecoder::new(&z[..])),
        }
    }

    fn held(&self) -> usize {
        match self {
            Piece::Bytes(b) | Piece::Gzip(b) => b.len(),
        }
    }
}

impl Contents {
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Contents {
        let bytes: Vec<u8> = bytes.into();
        Contents {
            len: bytes.len() as u64,
            sha256: Sha256::digest(&bytes).into(),
            pieces: vec![Piece::Bytes(bytes.into())],
        }
    }

    /// Gzip data whose inflated form is at most `cap` bytes: inflated here once, into a
    /// hash, stopping as soon as more than `cap` bytes came (a bomb is never inflated
    /// whole).
    pub fn gunzip(compressed: Vec<u8>, cap: u64) -> Result<Contents, GunzipError> {
        let piece = Piece::Gzip(compressed.into());
        let (len, sha256) =
            digest(piece.reader(), cap).map_err(|e| GunzipError::Invalid(e.to_string()))?;
        let len = len.ok_or(GunzipError::TooLarge(cap))?;
        Ok(Contents {
            pieces: vec![piece],
            len,
            sha256,
        })
    }

    /// One after the other, as a file that is written and then appended to. The digest
    /// is taken again (inflating gzip pieces), unless there is only one non-empty part.
    pub fn concat<'a>(parts: impl IntoIterator<Item = &'a Contents>) -> io::Result<Contents> {
        let parts: Vec<&Contents> = parts.into_iter().filter(|c| !c.is_empty()).collect();
        match parts.as_slice() {
            [] => return Ok(Contents::default()),
            [one] => return Ok((*one).clone()),
            _ => {}
        }
        let pieces: Vec<Piece> = parts
            .iter()
            .flat_map(|c| c.pieces.iter().cloned())
            .collect();
        let reader = Reader {
            pieces: &pieces,
            current: None,
        };
        let (len, sha256) = digest(reader, u64::MAX)?;
        Ok(Contents {
            len: len.unwrap_or(u64::MAX),
            sha256,
            pieces,
        })
    }

    /// The bytes, inflated as they are read.
    pub fn reader(&self) -> impl Read + '_ {
        Reader {
            pieces: &self.pieces,
            current: None,
        }
    }

    /// Everything in memory: for contents the agent must read (node settings, a unit's
    /// text), never for writing a file.
    pub fn to_vec(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.reader().read_to_end(&mut out)?;
        Ok(out)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    /// What these contents keep in memory (compressed data stays compressed).
    pub fn held_bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.held() as u64).sum()
    }
}

/// Length (`None` past `cap`) and sha256 of what a reader gives, 64 KiB at a time.
fn digest(mut r: impl Read, cap: u64) -> io::Result<(Option<u64>, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut len: u64 = 0;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok((Some(len), hasher.finalize().into()));
        }
        len = len.saturating_add(n as u64);
        if len > cap {
            return Ok((None, hasher.finalize().into()));
        }
        hasher.update(&buf[..n]);
    }
}

/// The pieces in order; a flat walk (not nested `chain`s), so thousands of appends cost
/// no stack.
struct Reader<'a> {
    pieces: &'a [Piece],
    current: Option<Box<dyn Read + 'a>>,
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(r) = self.current.as_mut() {
                let n = r.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.current = None;
            }
            let Some((first, rest)) = self.pieces.split_first() else {
                return Ok(0);
            };
            self.pieces = rest;
            self.current = Some(first.reader());
        }
    }
}

impl PartialEq for Contents {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.sha256 == other.sha256
    }
}

impl Eq for Contents {}

impl PartialEq<[u8]> for Contents {
    fn eq(&self, other: &[u8]) -> bool {
        self.len == other.len() as u64 && self.sha256 == <[u8; 32]>::from(Sha256::digest(other))
    }
}

impl<const N: usize> PartialEq<[u8; N]> for Contents {
    fn eq(&self, other: &[u8; N]) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Contents({} bytes, sha256 {})",
            self.len,
            self.sha256_hex()
        )
    }
}

/// As its sha256: plans and reports name contents, never carry them.
impl serde::Serialize for Contents {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.sha256_hex())
    }
}

impl Default for Contents {
    fn default() -> Self {
        Contents::from_bytes(Vec::new())
    }
}

impl From<Vec<u8>> for Contents {
    fn from(bytes: Vec<u8>) -> Self {
        Contents::from_bytes(bytes)
    }
}

impl From<&[u8]> for Contents {
    fn from(bytes: &[u8]) -> Self {
        Contents::from_bytes(bytes)
    }
}

impl From<String> for Contents {
    fn from(text: String) -> Self {
        Contents::from_bytes(text.into_bytes())
    }
}

impl From<&str> for Contents {
    fn from(text: &str) -> Self {
        Contents::from_bytes(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn gzip_stays_compressed_and_reads_back_inflated() {
        let text = b"hello ".repeat(10_000);
        let c = Contents::gunzip(gzip(&text), 1 << 20).unwrap();
        assert_eq!(c.len(), text.len() as u64);
        assert!(c.held_bytes() < 1000, "{}", c.held_bytes());
        assert_eq!(c, Contents::from_bytes(text.clone()));
        assert_eq!(c.to_vec().unwrap(), text);
    }

    #[test]
    fn gzip_past_the_cap_or_invalid_is_refused() {
        let big = gzip(&vec![0u8; 1 << 20]);
        assert_eq!(
            Contents::gunzip(big.clone(), (1 << 20) - 1),
            Err(GunzipError::TooLarge((1 << 20) - 1))
        );
        assert!(Contents::gunzip(big, 1 << 20).is_ok());
        assert!(matches!(
            Contents::gunzip(b"plain".to_vec(), 10),
            Err(GunzipError::Invalid(_))
        ));
    }

    #[test]
    fn concat_reads_every_piece_in_order() {
        let parts: Vec<Contents> = (0..5000)
            .map(|i| {
                if i % 2 == 0 {
                    Contents::from(format!("{i},"))
                } else {
                    Contents::gunzip(gzip(format!("{i},").as_bytes()), 100).unwrap()
                }
            })
            .collect();
        let all = Contents::concat(&parts).unwrap();
        let want: String = (0..5000).map(|i| format!("{i},")).collect();
        assert_eq!(all.to_vec().unwrap(), want.as_bytes());
        assert_eq!(all, Contents::from(want));
    }
}
