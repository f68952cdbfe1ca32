//! The MIME side of user-data: a message's headers, multipart bodies split at their
//! boundary, and base64 transfer encoding — the subset cloud-init's
//! `write-mime-multipart` and Python's email package produce.

use base64::Engine;

/// One MIME entity: its headers (names lowercased, folded lines joined) and raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Entity<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The media type, lowercased, without parameters; `text/plain` when absent (RFC 2045).
    pub fn media_type(&self) -> String {
        self.header("content-type")
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|| "text/plain".to_string())
    }

    /// A parameter of a header (`boundary` of Content-Type, `filename` of
    /// Content-Disposition), unquoted.
    pub fn param(&self, header: &str, name: &str) -> Option<String> {
        let value = self.header(header)?;
        value.split(';').skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().trim_matches('"').to_string())
        })
    }

    /// The body with its Content-Transfer-Encoding undone.
    pub fn decoded_body(&self) -> Result<Vec<u8>, String> {
        let cte = self
            .header("content-transfer-encoding")
            .map(|v| v.trim().to_ascii_lowercase());
        match cte.as_deref() {
            None | Some("7bit") | Some("8bit") | Some("binary") => Ok(self.body.to_vec()),
            Some("base64") => {
                let compact: Vec<u8> = self
                    .body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| format!("base64 body: {e}"))
            }
            Some(other) => Err(format!(
                "Content-Transfer-Encoding {other:?} is not supported (7bit, 8bit, binary, base64)"
            )),
        }
    }
}

/// Split a message into headers and body at the first empty line.
pub fn parse_entity(msg: &[u8]) -> Result<Entity<'_>, String> {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = msg[pos..].iter().position(|&b| b == b'\n') else {
            return Err("headers are not followed by an empty line".to_string());
        };
        let line = &msg[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        if line.is_empty() {
            break;
        }
        let line = std::str::from_utf8(line).map_err(|_| "header is not UTF-8".to_string())?;
        if line.starts_with([' ', '\t']) {
            let Some(last) = headers.last_mut() else {
                return Err(format!("continuation line {line:?} before any header"));
            };
            last.1.push(' ');
            last.1.push_str(line.trim());
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("header line {line:?} has no ':'"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(Entity {
        headers,
        body: &msg[pos..],
    })
}

/// The parts of a multipart body, each without the line break that precedes the next
/// delimiter (RFC 2046 §5.1.1).
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, String> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    let mut closed = false;
    while pos < body.len() {
        let end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |n| pos + n);
        let line = &body[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(delim.as_bytes()) {
            let rest = trim_ascii_end(rest);
            if rest.is_empty() || rest == b"--" {
                if let Some(s) = start {
                    let mut e = pos;
                    if e > s && body[e - 1] == b'\n' {
                        e -= 1;
                        if e > s && body[e - 1] == b'\r' {
                            e -= 1;
                        }
                    }
                    parts.push(&body[s..e]);
                }
                if rest == b"--" {
                    closed = true;
                    break;
                }
                start = Some((end + 1).min(body.len()));
            }
        }
        pos = end + 1;
    }
    if !closed {
        return Err(format!("closing delimiter --{boundary}-- not found"));
    }
    Ok(parts)
}

fn trim_ascii_end(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_with_folded_header_and_base64_part() {
        let msg = b"Content-Type: multipart/mixed;\r\n boundary=\"XX\"\r\nMIME-Version: 1.0\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/x-shellscript\r\n\r\n#!/bin/sh\necho hi\n\r\n--XX\r\nContent-Type: text/cloud-config\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"a.cfg\"\r\n\r\nI2Nsb3VkLWNvbmZpZwo=\r\n--XX--\r\nepilogue";
        let e = parse_entity(msg).unwrap();
        assert_eq!(e.media_type(), "multipart/mixed");
        assert_eq!(e.param("content-type", "boundary").as_deref(), Some("XX"));
        let parts = split_multipart(e.body, "XX").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0],
            b"Content-Type: text/x-shellscript\r\n\r\n#!/bin/sh\necho hi\n"
        );
        let p1 = parse_entity(parts[1]).unwrap();
        assert_eq!(p1.decoded_body().unwrap(), b"#cloud-config\n");
        assert_eq!(
            p1.param("content-disposition", "filename").as_deref(),
            Some("a.cfg")
        );
        assert_eq!(
            split_multipart(b"--XX\nfoo\n", "XX").unwrap_err(),
            "closing delimiter --XX-- not found"
        );
    }
}
