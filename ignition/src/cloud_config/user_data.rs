//! User-data as cloud-init reads it: gzip undone, MIME multipart walked, and each part
//! typed by its Content-Type or its first line (`#cloud-config`, `#!`,
//! `#cloud-boothook`, …), with cloud-init's part names (`part-001`, or the part's
//! filename).

use super::error::{CloudConfigError, CloudProblem};
use super::mime;
use crate::limits::{self, GunzipError};
use crate::ConfigWarning;

/// Multipart parts nested deeper than this are refused (each level is a stack frame).
pub const MAX_MIME_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    CloudConfig {
        name: String,
        text: String,
    },
    /// A `#!` script, run once in the final stage.
    Script {
        name: String,
        bytes: Vec<u8>,
    },
    /// A `#cloud-boothook`, run early, before files are written.
    Boothook {
        name: String,
        bytes: Vec<u8>,
    },
}

pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Split user-data into its parts, in document order. Parts cloud-init would ignore
/// (plain text) become warnings.
pub fn parts(bytes: &[u8]) -> Result<(Vec<Part>, Vec<ConfigWarning>), CloudConfigError> {
    parts_of(bytes, "user-data")
}

/// [`parts`] of a document named `root` in errors (`user-data`, `vendor-data`).
pub fn parts_of(
    bytes: &[u8],
    root: &str,
) -> Result<(Vec<Part>, Vec<ConfigWarning>), CloudConfigError> {
    let owned;
    let bytes = if is_gzip(bytes) {
        owned = limits::gunzip(bytes, limits::MAX_DOCUMENT_BYTES).map_err(|e| {
            CloudConfigError::new(
                root,
                match e {
                    GunzipError::Invalid(e) => CloudProblem::Gzip(e),
                    GunzipError::TooLarge(cap) => CloudProblem::DecompressedTooLarge(cap),
                },
            )
        })?;
        &owned[..]
    } else {
        bytes
    };
    let mut walk = Walk::default();
    if starts_like_mime(bytes) {
        walk.entity(bytes, root, 0)?;
    } else {
        walk.typed_by_content(bytes, None, root)?;
    }
    Ok((walk.parts, walk.warnings))
}

fn starts_like_mime(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(64)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.starts_with("content-type:") || head.starts_with("mime-version:")
}

#[derive(Default)]
struct Walk {
    count: usize,
    parts: Vec<Part>,
    warnings: Vec<ConfigWarning>,
}

impl Walk {
    fn next_name(&mut self, filename: Option<String>) -> String {
        self.count += 1;
        filename.unwrap_or_else(|| format!("part-{:03}", self.count))
    }

    /// `depth`: how many multiparts enclose this entity.
    fn entity(&mut self, msg: &[u8], path: &str, depth: usize) -> Result<(), CloudConfigError> {
        let mime_err = |m: String| CloudConfigError::new(path, CloudProblem::Mime(m));
        let e = mime::parse_entity(msg).map_err(mime_err)?;
        let media = e.media_type();
        if media.starts_with("multipart/") {
            if depth >= MAX_MIME_DEPTH {
                return Err(mime_err(format!(
                    "multipart nested deeper than {MAX_MIME_DEPTH} levels"
                )));
            }
            let boundary = e
                .param("content-type", "boundary")
                .ok_or_else(|| mime_err(format!("{media} without a boundary parameter")))?;
            for (i, part) in mime::split_multipart(e.body, &boundary)
                .map_err(mime_err)?
                .into_iter()
                .enumerate()
            {
                self.entity(part, &format!("{path}.parts[{i}]"), depth + 1)?;
            }
            return Ok(());
        }
        let body = e.decoded_body().map_err(mime_err)?;
        let filename = e.param("content-disposition", "filename");
        self.typed(&media, &body, filename, path)
    }

    fn typed(
        &mut self,
        media: &str,
        body: &[u8],
        filename: Option<String>,
        path: &str,
    ) -> Result<(), CloudConfigError> {
        let err = |p: CloudProblem| CloudConfigError::new(path, p);
        match media {
            "text/cloud-config" => self.cloud_config(body, filename, path),
            "text/x-shellscript"
            | "text/x-shellscript-per-instance"
            | "text/x-shellscript-per-once" => {
                let name = self.next_name(filename);
                self.parts.push(Part::Script {
                    name,
                    bytes: body.to_vec(),
                });
                Ok(())
            }
            "text/cloud-boothook" => {
                let name = self.next_name(filename);
                self.parts.push(Part::Boothook {
                    name,
                    bytes: strip_first_line_if(body, "#cloud-boothook"),
                });
                Ok(())
            }
            "text/jinja2" => Err(err(CloudProblem::Jinja)),
            "text/x-include-url" | "text/x-include-once-url" => Err(err(
                CloudProblem::UnsupportedUserData("#include (text/x-include-url)"),
            )),
            "text/cloud-config-archive" => Err(err(CloudProblem::UnsupportedUserData(
                "#cloud-config-archive",
            ))),
            "text/part-handler" => Err(err(CloudProblem::UnsupportedUserData("#part-handler"))),
            "text/cloud-config-jsonp" => Err(err(CloudProblem::UnsupportedUserData(
                "#cloud-config-jsonp",
            ))),
            "text/x-shellscript-per-boot" => Err(err(CloudProblem::UnsupportedUserData(
                "per-boot script (harmony-agent runs at first boot only)",
            ))),
            "text/plain" | "text/x-not-multipart" => self.typed_by_content(body, filename, path),
            other => {
                self.warnings.push(ConfigWarning::new(
                    path,
                    format!("MIME part of type {other} ignored, as cloud-init does"),
                ));
                Ok(())
            }
        }
    }

    /// cloud-init's `type_from_starts_with`: the first line says what a part is.
    fn typed_by_content(
        &mut self,
        body: &[u8],
        filename: Option<String>,
        path: &str,
    ) -> Result<(), CloudConfigError> {
        const PREFIXES: [(&str, &str); 9] = [
            ("#include-once", "text/x-include-once-url"),
            ("#include", "text/x-include-url"),
            ("## template: jinja", "text/jinja2"),
            ("#cloud-config-archive", "text/cloud-config-archive"),
            ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
            ("#cloud-config", "text/cloud-config"),
            ("#cloud-boothook", "text/cloud-boothook"),
            ("#part-handler", "text/part-handler"),
            ("#!", "text/x-shellscript"),
        ];
        let head = &body[..body.len().min(64)];
        let lower = String::from_utf8_lossy(head).to_ascii_lowercase();
        if let Some((_, media)) = PREFIXES.iter().find(|(p, _)| lower.starts_with(p)) {
            return self.typed(media, body, filename, path);
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        self.warnings.push(ConfigWarning::new(
            path,
            "user-data starts with none of #cloud-config, #!, #cloud-boothook or a MIME header: ignored, as cloud-init does",
        ));
        Ok(())
    }

    fn cloud_config(
        &mut self,
        body: &[u8],
        filename: Option<String>,
        path: &str,
    ) -> Result<(), CloudConfigError> {
        let name = self.next_name(filename);
        let text = String::from_utf8(body.to_vec()).map_err(|e| {
            CloudConfigError::new(path, CloudProblem::Yaml(format!("not UTF-8: {e}")))
        })?;
        self.parts.push(Part::CloudConfig { name, text });
        Ok(())
    }
}

fn strip_first_line_if(body: &[u8], marker: &str) -> Vec<u8> {
    if body.starts_with(marker.as_bytes()) {
        let nl = body
            .iter()
            .position(|&b| b == b'\n')
            .map_or(body.len(), |n| n + 1);
        body[nl..].to_vec()
    } else {
        body.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_script_boothook_and_plain_text() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"#!/bin/sh\necho hi\n").unwrap();
        let (p, w) = parts(&gz.finish().unwrap()).unwrap();
        assert_eq!(
            p,
            [Part::Script {
                name: "part-001".into(),
                bytes: b"#!/bin/sh\necho hi\n".to_vec()
            }]
        );
        assert!(w.is_empty());
        let (p, _) = parts(b"#cloud-boothook\necho early\n").unwrap();
        assert_eq!(
            p,
            [Part::Boothook {
                name: "part-001".into(),
                bytes: b"echo early\n".to_vec()
            }]
        );
        let (p, w) = parts(b"hello\n").unwrap();
        assert!(p.is_empty());
        assert_eq!(w.len(), 1);
        assert_eq!(
            parts(b"## template: jinja\n#cloud-config\n").unwrap_err().to_string(),
            "user-data: Jinja templates (text/jinja2, \"## template: jinja\") are not supported: render the template before handing it to the node"
        );
        assert!(parts(&[0x1f, 0x8b, 0, 1])
            .unwrap_err()
            .to_string()
            .starts_with("user-data: invalid gzip data"));
    }

    /// Multipart inside multipart, `levels` deep, with a script at the bottom.
    fn nested_multipart(levels: usize) -> Vec<u8> {
        let mut msg = b"Content-Type: text/x-shellscript\n\n#!/bin/sh\necho deep\n".to_vec();
        for i in 0..levels {
            let mut outer = format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\nMIME-Version: 1.0\n\n--b{i}\n"
            )
            .into_bytes();
            outer.extend_from_slice(&msg);
            outer.extend_from_slice(format!("\n--b{i}--\n").as_bytes());
            msg = outer;
        }
        msg
    }

    #[test]
    fn deeply_nested_multipart_is_refused_not_a_stack_overflow() {
        let (p, _) = parts(&nested_multipart(MAX_MIME_DEPTH)).unwrap();
        assert_eq!(p.len(), 1);
        // A small stack, as a thread on a node may have: 5,000 levels overflowed it.
        let bomb = nested_multipart(5_000);
        let err = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || parts(&bomb).map(|_| ()))
            .unwrap()
            .join()
            .unwrap()
            .unwrap_err();
        let deepest = format!("user-data{}", ".parts[0]".repeat(MAX_MIME_DEPTH));
        assert_eq!(
            err.to_string(),
            format!(
                "{deepest}: invalid MIME user-data: multipart nested deeper than {MAX_MIME_DEPTH} levels"
            )
        );
    }
}
