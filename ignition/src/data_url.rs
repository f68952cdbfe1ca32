//! Strict RFC 2397 `data:` URLs, as Ignition's Go decoder reads them.
//!
//! `data:[<mediatype>][;base64],<data>`. The data part must be URL characters only:
//! a space, a quote or a bad `%` escape is an error rather than something to guess at,
//! and base64 must be canonical (padded, standard alphabet).

use base64::Engine;

/// Decode a full `data:` URL into its bytes. The error says what is wrong, without the
/// URL (which can be huge); the caller adds the JSON path.
pub fn decode(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| "does not start with \"data:\"".to_string())?;
    let (header, data) = rest
        .split_once(',')
        .ok_or_else(|| "no ',' between the media type and the data".to_string())?;
    let mut is_base64 = false;
    for (i, param) in header.split(';').enumerate() {
        check_url_chars(param, "media type")?;
        if param.eq_ignore_ascii_case("base64") {
            if i == 0 {
                return Err("\"base64\" given as the media type".to_string());
            }
            is_base64 = true;
        } else if is_base64 {
            return Err("\";base64\" must be the last parameter".to_string());
        } else if i == 0 {
            if !param.is_empty() && !param.contains('/') {
                return Err(format!("media type {param:?} is not type/subtype"));
            }
        } else if !param.contains('=') {
            return Err(format!("parameter {param:?} is not attribute=value"));
        }
    }
    check_url_chars(data, "data")?;
    let bytes = percent_decode(data)?;
    if is_base64 {
        base64::engine::general_purpose::STANDARD
            .decode(&bytes)
            .map_err(|e| format!("bad base64: {e}"))
    } else {
        Ok(bytes)
    }
}

/// RFC 3986 unreserved and reserved characters, plus `%` for escapes.
fn check_url_chars(s: &str, part: &str) -> Result<(), String> {
    match s.char_indices().find(|(_, c)| {
        !(c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(*c))
    }) {
        Some((i, c)) => Err(format!(
            "character {c:?} at offset {i} of the {part} is not allowed in a URL (percent-encode it)"
        )),
        None => Ok(()),
    }
}

fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape at offset {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn plain_and_percent_encoded() {
        assert_eq!(decode("data:,hello%20world%0A").unwrap(), b"hello world\n");
        assert_eq!(
            decode("data:text/plain;charset=utf-8,a%2Cb").unwrap(),
            b"a,b"
        );
        assert_eq!(decode("data:,").unwrap(), b"");
    }

    #[test]
    fn base64() {
        assert_eq!(decode("data:;base64,aGk=").unwrap(), b"hi");
        assert_eq!(decode("data:text/plain;base64,aGk=").unwrap(), b"hi");
        assert!(decode("data:;base64,aGk").unwrap_err().contains("base64"));
        assert!(decode("data:;base64,a Gk=").unwrap_err().contains("' '"));
    }

    #[test]
    fn strict_rejections() {
        assert!(decode("data:hello").unwrap_err().contains("no ','"));
        assert!(decode("data:,a b").unwrap_err().contains("' ' at offset 1"));
        assert!(decode("data:,100%").unwrap_err().contains("percent escape"));
        assert!(decode("data:,%zz").unwrap_err().contains("percent escape"));
        assert!(decode("data:,%+1").unwrap_err().contains("percent escape"));
        assert!(decode("data:base64,aGk=")
            .unwrap_err()
            .contains("media type"));
        assert!(decode("data:;base64;x=y,aGk=")
            .unwrap_err()
            .contains("last"));
        assert!(decode("data:text,x").unwrap_err().contains("type/subtype"));
        assert!(decode("data:,caf\u{e9}")
            .unwrap_err()
            .contains("not allowed"));
    }
}
