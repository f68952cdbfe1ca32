//! `verification.hash`: `sha256-<hex>` or `sha512-<hex>`, checked against the bytes.

use sha2::{Digest, Sha256, Sha512};

use crate::error::Problem;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedHash {
    Sha256([u8; 32]),
    Sha512([u8; 64]),
}

impl ExpectedHash {
    /// Hex is accepted in either case, as Go's hex decoder does.
    pub fn parse(s: &str) -> Result<ExpectedHash, Problem> {
        let bad = || Problem::MalformedHash(s.to_string());
        let (kind, hex_digits) = s.split_once('-').ok_or_else(bad)?;
        match kind {
            "sha256" => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(hex_digits, &mut d).map_err(|_| bad())?;
                Ok(ExpectedHash::Sha256(d))
            }
            "sha512" => {
                let mut d = [0u8; 64];
                hex::decode_to_slice(hex_digits, &mut d).map_err(|_| bad())?;
                Ok(ExpectedHash::Sha512(d))
            }
            _ => Err(bad()),
        }
    }

    pub fn verify(&self, data: &[u8]) -> Result<(), Problem> {
        let actual = match self {
            ExpectedHash::Sha256(_) => ExpectedHash::Sha256(Sha256::digest(data).into()),
            ExpectedHash::Sha512(_) => ExpectedHash::Sha512(Sha512::digest(data).into()),
        };
        self.matches(actual)
    }

    /// Against contents that may be kept compressed: their sha256 is known already, a
    /// sha512 is hashed as they are inflated.
    pub fn verify_contents(&self, c: &crate::Contents) -> Result<(), Problem> {
        let actual = match self {
            ExpectedHash::Sha256(_) => ExpectedHash::Sha256(c.sha256()),
            ExpectedHash::Sha512(_) => {
                let mut h = Sha512::new();
                std::io::copy(&mut c.reader(), &mut h).map_err(|e| Problem::Gzip(e.to_string()))?;
                ExpectedHash::Sha512(h.finalize().into())
            }
        };
        self.matches(actual)
    }

    fn matches(&self, actual: ExpectedHash) -> Result<(), Problem> {
        if *self == actual {
            Ok(())
        } else {
            Err(Problem::HashMismatch {
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl std::fmt::Display for ExpectedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedHash::Sha256(d) => write!(f, "sha256-{}", hex::encode(d)),
            ExpectedHash::Sha512(d) => write!(f, "sha512-{}", hex::encode(d)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HI_SHA256: &str = "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4";

    #[test]
    fn parses_and_verifies() {
        let h = ExpectedHash::parse(&format!("sha256-{HI_SHA256}")).unwrap();
        assert!(h.verify(b"hi").is_ok());
        let err = h.verify(b"ho").unwrap_err().to_string();
        assert!(
            err.starts_with("hash mismatch: expected sha256-8f43"),
            "{err}"
        );
        let h512 = ExpectedHash::parse(&format!("sha512-{}", hex::encode(Sha512::digest(b"x"))));
        assert!(h512.unwrap().verify(b"x").is_ok());
    }

    #[test]
    fn malformed() {
        for bad in [
            "sha256",
            "md5-00",
            "sha256-abc",
            &format!("sha512-{HI_SHA256}"),
            &format!("sha256-{}", HI_SHA256.replace('8', "g")),
        ] {
            assert_eq!(
                ExpectedHash::parse(bad),
                Err(Problem::MalformedHash(bad.to_string()))
            );
        }
    }
}
