//! `write_files`: each entry decoded as cloud-init's `extract_contents` does
//! (base64 then gzip for `gz+base64`), with its permissions (default 0644), owner
//! (default root:root), append and defer.

use base64::Engine;
use serde_yaml_ng::{Mapping, Value};

use super::error::{CloudConfigError, CloudProblem};
use super::yaml_value::{bool_of, bytes_of, mode_of, string_of, wrong};
use crate::limits::{self, ConfigBudget, GunzipError, OverBudget};
use crate::{ConfigWarning, Contents, FileEntry, Owner};

/// One entry, and whether cloud-init would write it late (after users exist).
pub struct WriteFile {
    pub entry: FileEntry,
    pub defer: bool,
}

pub fn parse(
    v: &Value,
    path: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<WriteFile>, CloudConfigError> {
    let Value::Sequence(items) = v else {
        return Err(wrong(path, "a list", v));
    };
    let mut budget = ConfigBudget::default();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = format!("{path}[{i}]");
            let Value::Mapping(m) = item else {
                return Err(wrong(&p, "a mapping", item));
            };
            let w = entry(m, &p, warnings)?;
            for c in w.entry.contents.iter().chain(&w.entry.append) {
                budget.take(c).map_err(|over| {
                    CloudConfigError::new(
                        format!("{p}.content"),
                        match over {
                            OverBudget::Written(cap) => CloudProblem::ConfigTooLarge(cap),
                            OverBudget::Held(cap) => CloudProblem::ConfigHeldTooLarge(cap),
                        },
                    )
                })?;
            }
            Ok(w)
        })
        .collect()
}

fn entry(
    m: &Mapping,
    p: &str,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<WriteFile, CloudConfigError> {
    let mut file_path = None;
    let mut content = None;
    let mut encoding = "text/plain".to_string();
    let mut mode = 0o644;
    let mut owner = "root:root".to_string();
    let mut append = false;
    let mut defer = false;
    for (k, v) in m {
        let key = string_of(k, p)?;
        let kp = format!("{p}.{key}");
        match key.as_str() {
            "path" => file_path = Some(string_of(v, &kp)?),
            "content" => content = Some((bytes_of(v, &kp)?, kp)),
            "encoding" => encoding = string_of(v, &kp)?,
            "permissions" => mode = mode_of(v, &kp)?,
            "owner" => owner = string_of(v, &kp)?,
            "append" => append = bool_of(v, &kp)?,
            "defer" => defer = bool_of(v, &kp)?,
            "source" => {
                return Err(CloudConfigError::new(
                    kp,
                    CloudProblem::NotSupported(
                        "contents from a URL; put them in content".to_string(),
                    ),
                ))
            }
            _ => warnings.push(ConfigWarning::new(kp, "unknown key ignored")),
        }
    }
    let file_path = file_path
        .ok_or_else(|| CloudConfigError::new(format!("{p}.path"), CloudProblem::Missing))?;
    if !file_path.starts_with('/') {
        return Err(CloudConfigError::new(
            format!("{p}.path"),
            CloudProblem::RelativePath(file_path),
        ));
    }
    // "/", "/..", "//": no file can be written there (cloud-init fails on it half-way).
    let path = normalise(&file_path);
    if path == "/" {
        return Err(CloudConfigError::new(
            format!("{p}.path"),
            CloudProblem::RootPath(file_path),
        ));
    }
    let steps = encoding_steps(&encoding).ok_or_else(|| {
        CloudConfigError::new(
            format!("{p}.encoding"),
            CloudProblem::UnknownEncoding(encoding.clone()),
        )
    })?;
    let data = match content {
        Some((raw, kp)) => decode(raw, steps, &kp)?,
        None => Contents::default(),
    };
    let (user, group) = owner_of(&owner, &format!("{p}.owner"))?;
    let entry = FileEntry {
        path,
        overwrite: !append,
        contents: (!append).then(|| data.clone()),
        append: if append { vec![data] } else { Vec::new() },
        mode: Some(mode),
        user: Some(user),
        group: Some(group),
    };
    Ok(WriteFile { entry, defer })
}

#[derive(Clone, Copy)]
enum Step {
    Base64,
    Gunzip,
}

/// cloud-init's `canonicalize_extraction`.
fn encoding_steps(encoding: &str) -> Option<&'static [Step]> {
    Some(match encoding.trim().to_ascii_lowercase().as_str() {
        "gz" | "gzip" => &[Step::Gunzip],
        "gz+base64" | "gzip+base64" | "gz+b64" | "gzip+b64" => &[Step::Base64, Step::Gunzip],
        "b64" | "base64" => &[Step::Base64],
        "text/plain" | "" => &[],
        _ => return None,
    })
}

/// The bytes `content` stands for; gzip stays compressed until the file is written
/// ([`Contents`]).
fn decode(mut data: Vec<u8>, steps: &[Step], path: &str) -> Result<Contents, CloudConfigError> {
    for step in steps {
        match step {
            Step::Base64 => {
                let compact: Vec<u8> = data
                    .into_iter()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                data = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .map_err(|e| CloudConfigError::new(path, CloudProblem::Base64(e.to_string())))?
            }
            Step::Gunzip => {
                // `content: !!binary …` reaches us as base64 text (see yaml_value).
                if !data.starts_with(&[0x1f, 0x8b]) {
                    let compact: Vec<u8> = data
                        .iter()
                        .copied()
                        .filter(|b| !b.is_ascii_whitespace())
                        .collect();
                    if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(compact) {
                        data = raw;
                    }
                }
                // Gunzip is the last step of every encoding.
                return Contents::gunzip(data, limits::MAX_FILE_BYTES).map_err(|e| {
                    CloudConfigError::new(
                        path,
                        match e {
                            GunzipError::Invalid(e) => CloudProblem::Gzip(e),
                            GunzipError::TooLarge(cap) => CloudProblem::DecompressedTooLarge(cap),
                        },
                    )
                });
            }
        }
    }
    if data.len() as u64 > limits::MAX_FILE_BYTES {
        return Err(CloudConfigError::new(
            path,
            CloudProblem::TooLarge(limits::MAX_FILE_BYTES),
        ));
    }
    Ok(data.into())
}

/// `user`, `user:group` or `:group`… as cloud-init's `chownbyname` reads it; a number
/// stays a name (cloud-init resolves names only), except that digits are taken as ids.
fn owner_of(owner: &str, path: &str) -> Result<(Owner, Owner), CloudConfigError> {
    let bad = || CloudConfigError::new(path, CloudProblem::Owner(owner.to_string()));
    let (u, g) = owner.split_once(':').unwrap_or((owner, "root"));
    let one = |s: &str| -> Result<Owner, CloudConfigError> {
        let s = s.trim();
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == ':') {
            return Err(bad());
        }
        Ok(match s.parse::<u32>() {
            Ok(id) => Owner::Id(id),
            Err(_) => Owner::Name(s.to_string()),
        })
    };
    Ok((one(u)?, one(if g.is_empty() { "root" } else { g })?))
}

/// Collapse `//`, `.` and `..` (cloud-init writes through the OS, which does the same).
fn normalise(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(yaml: &str) -> Result<WriteFile, CloudConfigError> {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let mut w = Vec::new();
        parse(&v, "write_files", &mut w).map(|mut v| v.remove(0))
    }

    #[test]
    fn encodings_and_errors() {
        // "hello\n" gzipped then base64'd by `gzip -n | base64`.
        let f = one("- {path: /a//b/../c, encoding: gz+b64, content: H4sIAAAAAAAAA8tIzcnJ5wIAIDA6NgYAAAA=, owner: 'app:', permissions: '0600'}").unwrap();
        assert_eq!(f.entry.path, "/a/c");
        assert_eq!(
            f.entry.contents,
            Some(crate::Contents::from(&b"hello\n"[..]))
        );
        assert_eq!(f.entry.mode, Some(0o600));
        assert_eq!(f.entry.user, Some(Owner::Name("app".into())));
        assert_eq!(f.entry.group, Some(Owner::Name("root".into())));
        let v: Value = serde_yaml_ng::from_str(
            "- {path: /x}\n- {path: /y}\n- {path: /z, encoding: rot13, content: x}",
        )
        .unwrap();
        assert_eq!(
            parse(&v, "write_files", &mut Vec::new()).err().unwrap().to_string(),
            "write_files[2].encoding: unknown encoding \"rot13\" (known: b64, base64, gz, gzip, gz+base64, gzip+base64, gz+b64, gzip+b64, text/plain)"
        );
        assert_eq!(
            one("- {path: etc/x}").err().unwrap().to_string(),
            "write_files[0].path: path \"etc/x\" is not absolute"
        );
        assert_eq!(
            one("- {path: /etc/.., content: x}")
                .err()
                .unwrap()
                .to_string(),
            "write_files[0].path: path \"/etc/..\" is the root directory itself, not a file in it"
        );
        assert_eq!(
            one("- {content: x}").err().unwrap().to_string(),
            "write_files[0].path: is required"
        );
        assert!(one("- {path: /x, encoding: b64, content: '!!'}")
            .err()
            .unwrap()
            .to_string()
            .starts_with("write_files[0].content: invalid base64"));
        let g = one(
            "- {path: /g, encoding: gzip, content: !!binary H4sIAAAAAAAAA8tIzcnJ5wIAIDA6NgYAAAA=}",
        )
        .unwrap();
        assert_eq!(
            g.entry.contents,
            Some(crate::Contents::from(&b"hello\n"[..]))
        );
        let a = one("- {path: /x, content: more, append: true, defer: yes}").unwrap();
        assert!(a.defer && !a.entry.overwrite && a.entry.contents.is_none());
        assert_eq!(a.entry.append, [crate::Contents::from("more")]);
    }
}
