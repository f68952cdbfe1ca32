//! Butane YAML → an Ignition 3 document, the way Butane translates it, so a node (and
//! `harmony-agent translate`) takes the config its user wrote:
//!
//! - `variant: fcos`, versions 1.0.0–1.5.0, to the Ignition spec Butane targets
//!   ([`target_spec`]); keys go from snake_case to Ignition's camelCase;
//! - `contents.inline` / `contents.local` (files, appends, config references, CAs) become
//!   data URLs chosen as Butane's `MakeDataURL` chooses: the shortest of percent-escaped,
//!   base64 and (when the config sets no compression) gzip+base64, with `compression`
//!   written out (`""` when not compressed);
//! - `storage.trees` walk a local directory into files (mode 0755 if executable, else
//!   0644) and symlinks; `contents_local` (units, drop-ins) and `ssh_authorized_keys_local`
//!   read local files. Local paths are relative to `--files-dir` and may not leave it;
//! - `variant: harmony` (version 1.0.0) is fcos 1.5.0 plus `harmony:`, the node settings,
//!   checked and written as /etc/harmony/node.yaml (0600), as cloud-config carries them.
//!
//! Keys Butane does not know are left to the Ignition reader, which warns about them.
//! What Harmony cannot apply (`boot_device`, `with_mount_unit`) is refused by name.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{ConfigError, Problem};

type Result<T> = std::result::Result<T, ConfigError>;

/// Where `local` paths are read from (`--files-dir`); none refuses them, as Butane does.
#[derive(Debug, Clone, Default)]
pub struct TranslateOptions {
    pub files_dir: Option<PathBuf>,
}

/// Whether bytes are a Butane config: a YAML mapping (not a JSON document) with a
/// top-level `variant` key.
pub fn is_butane(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    if text.trim_start().starts_with('{') {
        return false;
    }
    text.lines().any(|l| l.starts_with("variant:"))
        && matches!(
            serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text),
            Ok(serde_yaml_ng::Value::Mapping(m)) if m.contains_key("variant")
        )
}

/// The Ignition spec version a Butane variant and version translate to.
pub fn target_spec(variant: &str, version: &str) -> Option<&'static str> {
    Some(match (variant, version) {
        ("fcos", "1.0.0") => "3.0.0",
        ("fcos", "1.1.0") => "3.1.0",
        ("fcos", "1.2.0") | ("fcos", "1.3.0") => "3.2.0",
        ("fcos", "1.4.0") => "3.3.0",
        ("fcos", "1.5.0") | ("harmony", "1.0.0") => "3.4.0",
        _ => return None,
    })
}

/// Translate a Butane config into the Ignition document Butane would write.
pub fn translate(bytes: &[u8], opts: &TranslateOptions) -> Result<Value> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_slice(bytes)
        .map_err(|e| ConfigError::new("", Problem::Syntax(format!("YAML: {e}"))))?;
    let mut doc: Value = serde_json::to_value(&yaml)
        .map_err(|e| ConfigError::new("", Problem::Shape(e.to_string())))?;
    octal_modes(&mut doc);
    let Value::Object(top) = &mut doc else {
        return Err(ConfigError::new(
            "",
            Problem::Shape("a Butane config is a mapping".into()),
        ));
    };
    let text = |k: &str| top.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (variant, version) = (text("variant"), text("version"));
    let spec = target_spec(&variant, &version).ok_or_else(|| {
        ConfigError::new(
            "version",
            Problem::Butane(format!(
                "unsupported Butane variant {variant:?} version {version:?} (supported: fcos 1.0.0-1.5.0, harmony 1.0.0)"
            )),
        )
    })?;
    let level = minor(&version);
    top.remove("variant");
    top.remove("version");
    if top.contains_key("boot_device") {
        return Err(not_supported(
            "boot_device",
            "boot disk layout (LUKS, mirroring)",
        ));
    }
    let settings = if variant == "harmony" {
        top.remove("harmony")
    } else {
        None
    };
    let t = Translator {
        opts,
        fcos_minor: if variant == "harmony" { 5 } else { level },
    };
    t.resources(&mut doc)?;
    t.local_unit_contents(&mut doc)?;
    t.local_ssh_keys(&mut doc)?;
    t.trees(&mut doc)?;
    if let Some(fs) = doc
        .pointer("/storage/filesystems")
        .and_then(Value::as_array)
    {
        if let Some(i) = fs.iter().position(|f| f.get("with_mount_unit").is_some()) {
            return Err(not_supported(
                &format!("storage.filesystems[{i}].with_mount_unit"),
                "filesystems and mount units",
            ));
        }
    }
    let mut doc = camel_keys(doc);
    if let Some(s) = settings {
        node_settings_file(&mut doc, &s)?;
    }
    let ign = doc.as_object_mut().map(|o| {
        o.entry("ignition")
            .or_insert_with(|| Value::Object(Map::new()))
    });
    if let Some(Value::Object(ign)) = ign {
        ign.insert("version".into(), Value::from(spec));
    }
    Ok(doc)
}

/// `mode: 0644` is octal to Butane (Go's yaml.v3 reads a leading 0 so); our YAML reader
/// keeps such a scalar as the string "0644".
fn octal_modes(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if k == "mode" => {
                        let digits = s.strip_prefix('0').unwrap_or("x");
                        if digits.chars().all(|c| c.is_digit(8)) {
                            if let Ok(n) =
                                i64::from_str_radix(if digits.is_empty() { "0" } else { digits }, 8)
                            {
                                *child = Value::from(n);
                            }
                        }
                    }
                    _ => octal_modes(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(octal_modes),
        _ => {}
    }
}

fn minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

fn not_supported(path: &str, what: &str) -> ConfigError {
    ConfigError::new(path, Problem::NotSupportedYet(what.to_string()))
}

struct Translator<'a> {
    opts: &'a TranslateOptions,
    /// fcos 1.N's N: which Butane-only fields this config may use.
    fcos_minor: u32,
}

impl Translator<'_> {
    /// A local path under `--files-dir`, refusing one that leaves it.
    fn local_path(&self, json_path: &str, rel: &str) -> Result<PathBuf> {
        let dir = self.opts.files_dir.as_ref().ok_or_else(|| {
            ConfigError::new(
                json_path,
                Problem::Butane("local files need --files-dir".into()),
            )
        })?;
        let rel_path = Path::new(rel);
        if rel_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(ConfigError::new(
                json_path,
                Problem::Butane(format!("{rel:?} is not a relative path inside --files-dir")),
            ));
        }
        Ok(dir.join(rel_path))
    }

    fn read_local(&self, json_path: &str, rel: &str) -> Result<Vec<u8>> {
        let p = self.local_path(json_path, rel)?;
        std::fs::read(&p).map_err(|e| {
            ConfigError::new(
                json_path,
                Problem::Butane(format!("reading {}: {e}", p.display())),
            )
        })
    }

    fn needs(&self, json_path: &str, since_minor: u32) -> Result<()> {
        if self.fcos_minor < since_minor {
            return Err(ConfigError::new(
                json_path,
                Problem::Butane(format!(
                    "needs variant fcos version 1.{since_minor}.0 or later"
                )),
            ));
        }
        Ok(())
    }

    /// Every resource: `inline` / `local` → `source` + `compression`.
    fn resources(&self, doc: &mut Value) -> Result<()> {
        for pattern in [
            &["storage", "files", "*", "contents"][..],
            &["storage", "files", "*", "append", "*"],
            &["ignition", "config", "merge", "*"],
            &["ignition", "config", "replace"],
            &[
                "ignition",
                "security",
                "tls",
                "certificate_authorities",
                "*",
            ],
            &["storage", "luks", "*", "key_file"],
        ] {
            visit(doc, pattern, String::new(), &mut |p, r| self.resource(p, r))?;
        }
        Ok(())
    }

    fn resource(&self, p: &str, r: &mut Value) -> Result<()> {
        let Value::Object(m) = r else { return Ok(()) };
        let present = |m: &Map<String, Value>, k: &str| m.get(k).is_some_and(|v| !v.is_null());
        let given: Vec<&str> = ["source", "inline", "local"]
            .into_iter()
            .filter(|k| present(m, k))
            .collect();
        if given.len() > 1 {
            return Err(ConfigError::new(
                p,
                Problem::Butane(format!("{} are mutually exclusive", given.join(" and "))),
            ));
        }
        let contents = match (m.remove("inline"), m.remove("local")) {
            (Some(Value::String(s)), _) => s.into_bytes(),
            (_, Some(Value::String(rel))) => {
                let lp = format!("{p}.local");
                self.needs(&lp, 1)?;
                self.read_local(&lp, &rel)?
            }
            (Some(Value::Null) | None, Some(Value::Null) | None) => return Ok(()),
            _ => {
                return Err(ConfigError::new(
                    p,
                    Problem::Shape("inline and local are strings".into()),
                ))
            }
        };
        let current = m.get("compression").and_then(Value::as_str).unwrap_or("");
        let (source, compression) = make_data_url(&contents, current);
        m.insert("source".into(), Value::from(source));
        if let Some(c) = compression {
            m.insert("compression".into(), Value::from(c));
        }
        Ok(())
    }

    /// `contents_local` of units and drop-ins → `contents`.
    fn local_unit_contents(&self, doc: &mut Value) -> Result<()> {
        for pattern in [
            &["systemd", "units", "*"][..],
            &["systemd", "units", "*", "dropins", "*"],
        ] {
            visit(doc, pattern, String::new(), &mut |p, u| {
                let Some(m) = u.as_object_mut() else {
                    return Ok(());
                };
                let Some(rel) = m.remove("contents_local") else {
                    return Ok(());
                };
                let Some(rel) = rel.as_str().filter(|r| !r.is_empty()) else {
                    return Ok(());
                };
                let lp = format!("{p}.contents_local");
                if m.get("contents").is_some_and(|c| !c.is_null()) {
                    return Err(ConfigError::new(
                        lp,
                        Problem::Butane(
                            "contents and contents_local are mutually exclusive".into(),
                        ),
                    ));
                }
                let text = self.read_local(&lp, rel)?;
                m.insert(
                    "contents".into(),
                    Value::from(String::from_utf8_lossy(&text).into_owned()),
                );
                Ok(())
            })?;
        }
        Ok(())
    }

    /// `ssh_authorized_keys_local`: each non-empty line of each file, after the inline keys.
    fn local_ssh_keys(&self, doc: &mut Value) -> Result<()> {
        visit(
            doc,
            &["passwd", "users", "*"],
            String::new(),
            &mut |p, u| {
                let Some(m) = u.as_object_mut() else {
                    return Ok(());
                };
                let Some(Value::Array(files)) = m.remove("ssh_authorized_keys_local") else {
                    return Ok(());
                };
                let mut keys: Vec<Value> = match m.remove("ssh_authorized_keys") {
                    Some(Value::Array(k)) => k,
                    _ => Vec::new(),
                };
                for (i, f) in files.iter().enumerate() {
                    let lp = format!("{p}.ssh_authorized_keys_local[{i}]");
                    let rel = f.as_str().ok_or_else(|| {
                        ConfigError::new(&lp, Problem::Shape("a file name is a string".into()))
                    })?;
                    let text = self.read_local(&lp, rel)?;
                    keys.extend(
                        String::from_utf8_lossy(&text)
                            .split('\n')
                            .map(|l| l.strip_suffix('\r').unwrap_or(l))
                            .filter(|l| !l.is_empty())
                            .map(Value::from),
                    );
                }
                m.insert("ssh_authorized_keys".into(), Value::Array(keys));
                Ok(())
            },
        )
    }

    /// `storage.trees`: every regular file and symlink under `local`, placed under `path`
    /// (default `/`), in lexical order as Go's filepath.Walk visits them.
    fn trees(&self, doc: &mut Value) -> Result<()> {
        let Some(storage) = doc.get_mut("storage").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let Some(Value::Array(trees)) = storage.remove("trees") else {
            return Ok(());
        };
        for (i, tree) in trees.iter().enumerate() {
            let p = format!("storage.trees[{i}]");
            self.needs(&p, 1)?;
            let rel = tree.get("local").and_then(Value::as_str).unwrap_or("");
            let dest = tree
                .get("path")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .unwrap_or("/");
            let src = self.local_path(&format!("{p}.local"), rel)?;
            if !src.is_dir() {
                return Err(ConfigError::new(
                    format!("{p}.local"),
                    Problem::Butane(format!("{} is not a directory", src.display())),
                ));
            }
            let mut entries = Vec::new();
            walk(&src, &src, &mut entries).map_err(|e| ConfigError::new(&p, Problem::Butane(e)))?;
            for (rel_path, entry) in entries {
                let dest_path = join_dest(dest, &rel_path);
                place(storage, &p, &dest_path, entry)?;
            }
        }
        Ok(())
    }
}

/// A node found in a tree.
enum TreeEntry {
    File { contents: Vec<u8>, executable: bool },
    Symlink(String),
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, TreeEntry)>,
) -> std::result::Result<(), String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("reading {}: {e}", dir.display()))?;
    names.sort();
    for path in names {
        let meta =
            std::fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let rel = path
            .strip_prefix(root)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let ft = meta.file_type();
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file() {
            use std::os::unix::fs::PermissionsExt;
            let contents = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            out.push((
                rel,
                TreeEntry::File {
                    contents,
                    executable,
                },
            ));
        } else if ft.is_symlink() {
            let target =
                std::fs::read_link(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            out.push((
                rel,
                TreeEntry::Symlink(target.to_string_lossy().into_owned()),
            ));
        } else {
            return Err(format!(
                "{}: not a regular file, directory or symlink",
                path.display()
            ));
        }
    }
    Ok(())
}

fn join_dest(base: &str, rel: &str) -> String {
    format!("{}/{rel}", base.trim_end_matches('/'))
}

/// Put a tree's node into `storage`: fill a file or link the config already names at that
/// path (if it has no contents / target yet), else add one; any other node there is an
/// error, as in Butane.
fn place(storage: &mut Map<String, Value>, p: &str, path: &str, entry: TreeEntry) -> Result<()> {
    let exists = |storage: &Map<String, Value>, list: &str| {
        storage.get(list).and_then(Value::as_array).and_then(|l| {
            l.iter()
                .position(|n| n.get("path").and_then(Value::as_str) == Some(path))
        })
    };
    let clash = || {
        ConfigError::new(
            p,
            Problem::Butane(format!("{path} is already declared by the config")),
        )
    };
    let (list, other_lists) = match entry {
        TreeEntry::File { .. } => ("files", ["directories", "links"]),
        TreeEntry::Symlink(_) => ("links", ["files", "directories"]),
    };
    if other_lists.iter().any(|l| exists(storage, l).is_some()) {
        return Err(clash());
    }
    let idx = exists(storage, list);
    let nodes = storage
        .entry(list)
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(nodes) = nodes else {
        return Err(clash());
    };
    let node = match idx {
        Some(i) => &mut nodes[i],
        None => {
            nodes.push(serde_json::json!({ "path": path }));
            let last = nodes.len() - 1;
            &mut nodes[last]
        }
    };
    let Value::Object(node) = node else {
        return Err(clash());
    };
    match entry {
        TreeEntry::File {
            contents,
            executable,
        } => {
            let c = node
                .entry("contents")
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(c) = c else {
                return Err(clash());
            };
            if c.get("source").is_some_and(|s| !s.is_null()) {
                return Err(clash());
            }
            let current = c.get("compression").and_then(Value::as_str).unwrap_or("");
            let (source, compression) = make_data_url(&contents, current);
            c.insert("source".into(), Value::from(source));
            if let Some(comp) = compression {
                c.insert("compression".into(), Value::from(comp));
            }
            if node.get("mode").is_none_or(Value::is_null) {
                node.insert(
                    "mode".into(),
                    Value::from(if executable { 0o755 } else { 0o644 }),
                );
            }
        }
        TreeEntry::Symlink(target) => {
            if node.get("target").is_some_and(|t| !t.is_null()) {
                return Err(clash());
            }
            node.insert("target".into(), Value::from(target));
        }
    }
    Ok(())
}

/// Call `f` on every value at `pattern` (`*` is each element of an array).
fn visit(
    v: &mut Value,
    pattern: &[&str],
    path: String,
    f: &mut dyn FnMut(&str, &mut Value) -> Result<()>,
) -> Result<()> {
    match pattern.split_first() {
        None => f(&path, v),
        Some((&"*", rest)) => {
            if let Value::Array(items) = v {
                for (i, item) in items.iter_mut().enumerate() {
                    visit(item, rest, format!("{path}[{i}]"), f)?;
                }
            }
            Ok(())
        }
        Some((key, rest)) => match v.get_mut(*key) {
            Some(child) if !child.is_null() => {
                let p = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                visit(child, rest, p, f)
            }
            _ => Ok(()),
        },
    }
}

/// Butane's `MakeDataURL`: the shortest of percent-escaped, base64 and, when the config
/// sets no compression, gzip (best) + base64; the compression to write, `""` explicitly
/// when none (so a merged child cannot inherit a parent's), `None` when the config set one.
pub fn make_data_url(contents: &[u8], current_compression: &str) -> (String, Option<&'static str>) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut compression = current_compression.is_empty().then_some("");
    let mut opaque = format!(",{}", escape(contents));
    let plain64 = format!(";base64,{}", b64(contents));
    if plain64.len() < opaque.len() {
        opaque = plain64;
    }
    if current_compression.is_empty() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zipped = gz.write_all(contents).and_then(|()| gz.finish());
        if let Ok(zipped) = zipped {
            let gz = format!(";base64,{}", b64(&zipped));
            if gz.len() + "gzip".len() < opaque.len() {
                opaque = gz;
                compression = Some("gzip");
            }
        }
    }
    (format!("data:{opaque}"), compression)
}

/// RFC 2396 unreserved characters stay, everything else is `%XX` (the dataurl package's
/// Escape that Butane uses).
fn escape(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// snake_case → camelCase in every key (`http_headers` → `httpHeaders`).
fn camel_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (camel(&k), camel_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(camel_keys).collect()),
        other => other,
    }
}

fn camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `harmony:` → /etc/harmony/node.yaml (0600: it holds the bootstrap token), checked first.
fn node_settings_file(doc: &mut Value, settings: &Value) -> Result<()> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::to_value(settings)
        .map_err(|e| ConfigError::new("harmony", Problem::Shape(e.to_string())))?;
    crate::node_settings::NodeSettings::from_yaml_value(&yaml)
        .map_err(|e| ConfigError::new("", Problem::Butane(e.to_string())))?;
    let text = serde_yaml_ng::to_string(&yaml)
        .map_err(|e| ConfigError::new("harmony", Problem::Shape(e.to_string())))?;
    let (source, compression) = make_data_url(text.as_bytes(), "");
    let file = serde_json::json!({
        "path": crate::node_settings::NODE_YAML_PATH,
        "overwrite": true,
        "mode": 0o600,
        "contents": {"source": source, "compression": compression.unwrap_or("")},
    });
    let Value::Object(top) = doc else {
        return Ok(());
    };
    let storage = top
        .entry("storage")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(storage) = storage else {
        return Err(ConfigError::new(
            "storage",
            Problem::Shape("storage is a mapping".into()),
        ));
    };
    match storage
        .entry("files")
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(files) => files.push(file),
        _ => {
            return Err(ConfigError::new(
                "storage.files",
                Problem::Shape("files is a list".into()),
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
