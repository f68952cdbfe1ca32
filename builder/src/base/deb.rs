//! Reading a Debian package without dpkg: the `ar` container, the control file, and the
//! data tar (xz, zstd, gzip or plain) streamed onto a Tree.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::tree::unpack::{apply_layer, LayerStats, UnpackError};
use crate::tree::Tree;

/// The control fields we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebControl {
    pub package: String,
    pub version: String,
    /// The first alternative of each `Depends` item, without version or arch qualifiers.
    pub depends: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DebError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {problem}", path.display())]
    Format { path: PathBuf, problem: String },
    #[error("{}: data.tar: {source}", path.display())]
    Data {
        path: PathBuf,
        #[source]
        source: UnpackError,
    },
}

/// Read the control file and apply the data tar onto `tree`.
pub fn unpack_deb(path: &Path, tree: &mut Tree) -> Result<(DebControl, LayerStats), DebError> {
    let io_err = |source| DebError::Io {
        path: path.to_path_buf(),
        source,
    };
    let format = |problem: String| DebError::Format {
        path: path.to_path_buf(),
        problem,
    };
    let file = File::open(path).map_err(io_err)?;
    let mut archive = ar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut control = None;
    let mut stats = None;
    while let Some(entry) = archive.next_entry() {
        let entry = entry.map_err(io_err)?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        if let Some(ext) = name.strip_prefix("control.tar") {
            let mut tar = tar::Archive::new(
                decompress(ext, entry).map_err(|p| format(format!("{name}: {p}")))?,
            );
            for item in tar.entries().map_err(io_err)? {
                let mut item = item.map_err(io_err)?;
                if item.path_bytes().as_ref() == b"./control"
                    || item.path_bytes().as_ref() == b"control"
                {
                    let mut text = String::new();
                    item.read_to_string(&mut text).map_err(io_err)?;
                    control =
                        Some(parse_control(&text).map_err(|p| format(format!("control: {p}")))?);
                    break;
                }
            }
        } else if let Some(ext) = name.strip_prefix("data.tar") {
            let reader = decompress(ext, entry).map_err(|p| format(format!("{name}: {p}")))?;
            let applied = apply_layer(tree, reader).map_err(|source| DebError::Data {
                path: path.to_path_buf(),
                source,
            })?;
            stats = Some(applied);
        }
    }
    let control = control.ok_or_else(|| format("no control file in control.tar".into()))?;
    let stats = stats.ok_or_else(|| format("no data.tar member".into()))?;
    Ok((control, stats))
}

fn decompress<'a>(ext: &str, r: impl Read + 'a) -> Result<Box<dyn Read + 'a>, String> {
    Ok(match ext {
        "" => Box::new(r),
        ".xz" => Box::new(xz2::read::XzDecoder::new(r)),
        ".zst" => Box::new(zstd::stream::read::Decoder::new(r).map_err(|e| e.to_string())?),
        ".gz" => Box::new(flate2::read::GzDecoder::new(r)),
        other => return Err(format!("unsupported compression {other:?}")),
    })
}

/// Parse a control paragraph (continuation lines start with a space).
pub fn parse_control(text: &str) -> Result<DebControl, String> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let package = get("Package").ok_or("no Package field")?;
    let version = get("Version").ok_or("no Version field")?;
    let depends = get("Depends")
        .map(|d| {
            d.split(',')
                .filter_map(|item| {
                    let first = item.split('|').next()?.trim();
                    let name = first
                        .split(|c: char| c.is_whitespace() || c == '(' || c == ':')
                        .next()?;
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DebControl {
        package,
        version,
        depends,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_fields_and_first_alternatives() {
        let c = parse_control(
            "Package: linux-image-cloud-amd64\nVersion: 6.1.192-2\nDepends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2),\n foo:any | bar, baz\nDescription: x\n",
        )
        .unwrap();
        assert_eq!(c.package, "linux-image-cloud-amd64");
        assert_eq!(c.version, "6.1.192-2");
        assert_eq!(
            c.depends,
            vec!["linux-image-6.1.0-56-cloud-amd64", "foo", "baz"]
        );
        assert!(parse_control("Version: 1\n")
            .unwrap_err()
            .contains("Package"));
    }

    /// Build a .deb in memory: ar with debian-binary, control.tar.gz, data.tar.xz.
    pub(crate) fn make_deb(
        dir: &Path,
        name: &str,
        control: &str,
        files: &[(&str, &[u8])],
    ) -> PathBuf {
        fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            for (path, data) in files {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o755);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(1);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            b.into_inner().unwrap()
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        io::Write::write_all(&mut gz, &tar_of(&[("./control", control.as_bytes())])).unwrap();
        let control_tar = gz.finish().unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 1);
        io::Write::write_all(&mut xz, &tar_of(files)).unwrap();
        let data_tar = xz.finish().unwrap();
        let path = dir.join(name);
        let mut ar = ar::Builder::new(File::create(&path).unwrap());
        for (member, bytes) in [
            ("debian-binary", &b"2.0\n"[..]),
            ("control.tar.gz", &control_tar[..]),
            ("data.tar.xz", &data_tar[..]),
        ] {
            ar.append(
                &ar::Header::new(member.as_bytes().to_vec(), bytes.len() as u64),
                bytes,
            )
            .unwrap();
        }
        path
    }

    #[test]
    fn unpacks_control_and_data() {
        let dir = tempfile::tempdir().unwrap();
        let deb = make_deb(
            dir.path(),
            "x.deb",
            "Package: x\nVersion: 1.0\n",
            &[("./bin/x", b"#!/bin/sh\n")],
        );
        let mut tree = Tree::new();
        let (control, stats) = unpack_deb(&deb, &mut tree).unwrap();
        assert_eq!(
            (control.package.as_str(), control.version.as_str()),
            ("x", "1.0")
        );
        assert_eq!(stats.entries, 1);
        assert!(tree.get("bin/x").is_some());
        let err = unpack_deb(&dir.path().join("missing.deb"), &mut tree).unwrap_err();
        assert!(err.to_string().contains("missing.deb"), "{err}");
    }
}
