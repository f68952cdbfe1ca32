//! Guestinfo values' `.encoding`, with Ignition's names and rules: "" (plain),
//! base64/b64, gzip/gz, and gzip+base64 in any of its four spellings. Anything else is an
//! error, never a guess. Base64 is the standard alphabet with padding; line breaks are
//! skipped, as Go's decoder does.

use base64::Engine;

pub fn decode(data: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    match encoding {
        "" => Ok(data.to_vec()),
        "base64" | "b64" => base64(data),
        "gzip" | "gz" => gunzip(data),
        "gzip+base64" | "gz+base64" | "gzip+b64" | "gz+b64" => gunzip(&base64(data)?),
        other => Err(format!(
            "unsupported encoding {other:?} (expected \"\", base64, b64, gzip, gz, \
             gzip+base64, gz+base64, gzip+b64 or gz+b64)"
        )),
    }
}

fn base64(data: &[u8]) -> Result<Vec<u8>, String> {
    let text: Vec<u8> = data
        .iter()
        .copied()
        .filter(|b| *b != b'\n' && *b != b'\r')
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// A config document: never inflated past the document cap (a gzip bomb guard).
fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    ignition::limits::gunzip(data, ignition::limits::MAX_DOCUMENT_BYTES).map_err(|e| match e {
        ignition::limits::GunzipError::Invalid(e) => format!("invalid gzip: {e}"),
        too_large => too_large.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const CFG: &[u8] = br#"{"ignition":{"version":"3.3.0"}}"#;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn b64(data: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(data)
            .into_bytes()
    }

    #[test]
    fn every_spelling_decodes() {
        assert_eq!(decode(CFG, "").unwrap(), CFG);
        for enc in ["base64", "b64"] {
            assert_eq!(decode(&b64(CFG), enc).unwrap(), CFG, "{enc}");
        }
        for enc in ["gzip", "gz"] {
            assert_eq!(decode(&gzip(CFG), enc).unwrap(), CFG, "{enc}");
        }
        for enc in ["gzip+base64", "gz+base64", "gzip+b64", "gz+b64"] {
            assert_eq!(decode(&b64(&gzip(CFG)), enc).unwrap(), CFG, "{enc}");
        }
    }

    #[test]
    fn base64_may_be_wrapped_like_base64_1_prints_it() {
        let data: Vec<u8> = (0..=255).collect();
        let mut wrapped = b64(&data);
        wrapped.insert(76, b'\n');
        wrapped.extend_from_slice(b"\r\n");
        assert_eq!(decode(&wrapped, "b64").unwrap(), data);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_document_cap() {
        let cap = ignition::limits::MAX_DOCUMENT_BYTES;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..cap >> 20 {
            enc.write_all(&chunk).unwrap();
        }
        enc.write_all(b" ").unwrap();
        let bomb = enc.finish().unwrap();
        assert_eq!(
            decode(&b64(&bomb), "gz+b64").unwrap_err(),
            format!("decompressed size exceeds {cap} bytes")
        );
    }

    #[test]
    fn bad_data_and_unknown_encodings_are_errors() {
        for enc in ["Base64", "gzip+base32", "base64+gzip", "plain", " "] {
            let err = decode(CFG, enc).unwrap_err();
            assert!(err.starts_with("unsupported encoding"), "{enc}: {err}");
        }
        assert!(decode(b"not base64!", "base64")
            .unwrap_err()
            .starts_with("invalid base64"));
        // Unpadded base64 is refused, as Go's StdEncoding refuses it.
        assert!(decode(b"eyJ9", "b64").is_ok());
        assert!(decode(b"eyJ", "b64").is_err());
        assert!(decode(CFG, "gzip").unwrap_err().starts_with("invalid gzip"));
        assert!(decode(&b64(CFG), "gz+b64")
            .unwrap_err()
            .starts_with("invalid gzip"));
    }
}
