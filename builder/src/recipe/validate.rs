//! From the document as written to a checked `Recipe`, collecting every problem.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use super::locate::{FieldLocations, Location};
use super::model::{RecipeDoc, DEFAULT_BOOT_MODULES, DEFAULT_CMDLINE};
use super::{
    DirectoryItem, FileContent, FileItem, Hardening, LinkItem, Output, Recipe, RecipeError,
    RecipeErrors,
};
use crate::kubernetes::KubernetesVersion;
use crate::oci::reference::ImageRef;

pub(super) struct Checker<'a> {
    label: &'a str,
    /// The recipe's directory: relative paths (keys) resolve against it.
    pub(super) dir: &'a Path,
    locations: &'a FieldLocations,
    errors: Vec<RecipeError>,
}

impl Checker<'_> {
    pub(super) fn fail(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(RecipeError {
            file: self.label.to_string(),
            line: self.locations.line_of(field),
            field: field.to_string(),
            problem: problem.into(),
        });
    }

    /// Where a field stands in the recipe text.
    pub(super) fn location(&self, field: &str) -> Option<&Location> {
        self.locations.get(field)
    }

    /// An absolute path in the image, normalised; `..` and the root itself are refused.
    fn image_path(&mut self, field: &str, path: &str) -> Option<String> {
        if !path.starts_with('/') {
            self.fail(
                field,
                format!("`{path}` is not absolute (paths in the image start with /)"),
            );
            return None;
        }
        if path.split('/').any(|c| c == "..") {
            self.fail(field, format!("`{path}` contains `..`"));
            return None;
        }
        let norm: Vec<&str> = path
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if norm.is_empty() {
            self.fail(field, "the root directory itself cannot be replaced");
            return None;
        }
        Some(format!("/{}", norm.join("/")))
    }

    /// Modes are octal. YAML 1.2 reads a plain `0644` as the decimal 644, so we read the
    /// text as written: `"0644"`, `0644` and `0o644` are octal; a bare `420` is refused
    /// rather than guessed.
    fn mode(&mut self, field: &str, value: &Option<serde_yaml_ng::Value>) -> Option<u32> {
        value.as_ref()?;
        let raw = self.locations.get(field).and_then(|l| l.raw.clone());
        let Some(raw) = raw else {
            self.fail(field, "expected an octal mode such as \"0644\"");
            return None;
        };
        let digits = raw
            .strip_prefix("0o")
            .or_else(|| raw.strip_prefix('0').filter(|d| !d.is_empty()));
        let digits = match digits {
            Some(d) => d,
            None if raw == "0" => "0",
            None => {
                self.fail(
                    field,
                    format!(
                        "mode `{raw}` must be written in octal with a leading 0, e.g. \"0644\""
                    ),
                );
                return None;
            }
        };
        match u32::from_str_radix(digits, 8) {
            Ok(m) if m <= 0o7777 => Some(m),
            Ok(_) => {
                self.fail(field, format!("mode `{raw}` is larger than 07777"));
                None
            }
            Err(_) => {
                self.fail(field, format!("mode `{raw}` is not an octal number"));
                None
            }
        }
    }

    pub(super) fn image_ref(&mut self, field: &str, text: &str) -> Option<ImageRef> {
        match ImageRef::from_str(text) {
            Ok(r) => Some(r),
            Err(e) => {
                self.fail(field, e.to_string());
                None
            }
        }
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

pub(super) fn validate(
    doc: RecipeDoc,
    text: &str,
    label: &str,
    dir: &Path,
    locations: &FieldLocations,
) -> Result<Recipe, RecipeErrors> {
    let mut c = Checker {
        label,
        dir,
        locations,
        errors: Vec::new(),
    };

    if !is_name(&doc.name) {
        c.fail(
            "name",
            format!(
                "`{}` is not a valid name (lowercase letters, digits, . _ -)",
                doc.name
            ),
        );
    }
    if doc.version.trim().is_empty() || doc.version.chars().any(char::is_whitespace) {
        c.fail("version", "must be a non-empty word, e.g. 1.0.0");
    }
    let base_field = match &doc.base {
        super::model::BaseDoc::Reference(_) => "base",
        super::model::BaseDoc::Verified { .. } => "base.image",
    };
    let base = c.image_ref(base_field, doc.base.image());
    let base_verify = c.signature_key("base.verify.key", doc.base.verify(), base.as_ref());
    let kernel_from = doc
        .kernel
        .from
        .as_deref()
        .and_then(|f| c.image_ref("kernel.from", f));

    let cmdline: Vec<String> = doc
        .kernel
        .cmdline
        .clone()
        .unwrap_or_else(|| DEFAULT_CMDLINE.iter().map(|s| s.to_string()).collect());
    super::cmdline::check(&mut c, &cmdline);
    let boot_modules: Vec<String> = doc
        .kernel
        .boot_modules
        .clone()
        .unwrap_or_else(|| DEFAULT_BOOT_MODULES.iter().map(|s| s.to_string()).collect());
    for (i, m) in boot_modules.iter().enumerate() {
        if m.is_empty()
            || !m
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        {
            c.fail(
                &format!("kernel.boot_modules[{i}]"),
                format!("`{m}` is not a module name"),
            );
        }
    }

    // Every path may be claimed once across files, directories and links.
    let mut claimed: HashMap<String, String> = HashMap::new();
    let mut claim = |c: &mut Checker, field: &str, path: &str| {
        if let Some(first) = claimed.get(path) {
            c.fail(field, format!("`{path}` is already given by {first}"));
        } else {
            claimed.insert(path.to_string(), field.to_string());
        }
    };

    let mut files = Vec::new();
    for (i, f) in doc.files.iter().enumerate() {
        let at = format!("files[{i}]");
        let path = c.image_path(&format!("{at}.path"), &f.path);
        if let Some(p) = &path {
            claim(&mut c, &format!("{at}.path"), p);
        }
        let mode = c.mode(&format!("{at}.mode"), &f.mode);
        let content = match (&f.contents, &f.source) {
            (Some(text), None) => Some(FileContent::Inline(text.clone())),
            (None, Some(src)) => {
                let host = dir.join(src);
                if host.exists() {
                    Some(FileContent::Host(host))
                } else {
                    c.fail(
                        &format!("{at}.source"),
                        format!("{} does not exist", host.display()),
                    );
                    None
                }
            }
            (Some(_), Some(_)) => {
                c.fail(&at, "give either `contents` or `source`, not both");
                None
            }
            (None, None) => {
                c.fail(
                    &at,
                    "needs `contents` (inline text) or `source` (a file on the build host)",
                );
                None
            }
        };
        if let (Some(path), Some(content)) = (path, content) {
            files.push(FileItem {
                path,
                content,
                mode,
                uid: f.uid.unwrap_or(0),
                gid: f.gid.unwrap_or(0),
            });
        }
    }

    let mut directories = Vec::new();
    for (i, d) in doc.directories.iter().enumerate() {
        let at = format!("directories[{i}]");
        let path = c.image_path(&format!("{at}.path"), &d.path);
        if let Some(p) = &path {
            claim(&mut c, &format!("{at}.path"), p);
        }
        let mode = c.mode(&format!("{at}.mode"), &d.mode).unwrap_or(0o755);
        if let Some(path) = path {
            directories.push(DirectoryItem {
                path,
                mode,
                uid: d.uid.unwrap_or(0),
                gid: d.gid.unwrap_or(0),
            });
        }
    }

    let mut links = Vec::new();
    for (i, l) in doc.links.iter().enumerate() {
        let at = format!("links[{i}]");
        let path = c.image_path(&format!("{at}.path"), &l.path);
        if let Some(p) = &path {
            claim(&mut c, &format!("{at}.path"), p);
        }
        if l.target.is_empty() {
            c.fail(&format!("{at}.target"), "must not be empty");
        } else if let Some(path) = path {
            links.push(LinkItem {
                path,
                target: l.target.clone(),
            });
        }
    }

    for (i, p) in doc.packages.iter().enumerate() {
        if p.is_empty()
            || p.starts_with('-')
            || p.chars()
                .any(|ch| ch.is_whitespace() || "'\"$`;&|<>\\".contains(ch))
        {
            c.fail(
                &format!("packages[{i}]"),
                format!("`{p}` is not a package name (no spaces, quotes, shell characters or leading -)"),
            );
        }
    }
    for (i, r) in doc.run.iter().enumerate() {
        if r.trim().is_empty() {
            c.fail(&format!("run[{i}]"), "must not be empty");
        }
    }

    let hardening = doc.hardening.as_ref().map(|h| {
        if h.profile != crate::harden::PROFILE_CIS {
            c.fail(
                "hardening.profile",
                format!(
                    "unknown profile `{}` (known: {})",
                    h.profile,
                    crate::harden::PROFILE_CIS
                ),
            );
        }
        for (i, id) in h.exclude.iter().enumerate() {
            let field = format!("hardening.exclude[{i}]");
            if crate::harden::rule(id).is_none() {
                c.fail(
                    &field,
                    format!(
                        "unknown rule `{id}` (rules: {})",
                        crate::harden::rule_ids().join(", ")
                    ),
                );
            } else if h.exclude[..i].contains(id) {
                c.fail(&field, format!("`{id}` is listed twice"));
            }
        }
        Hardening {
            profile: h.profile.clone(),
            exclude: h.exclude.clone(),
        }
    });
    let components = super::components::check(&mut c, &doc.components);
    let kubernetes = doc.kubernetes.as_ref().and_then(|k| {
        // As written: an unquoted `1.30` is the number 1.3 to YAML.
        let raw = c
            .location("kubernetes.version")
            .and_then(|l| l.raw.clone())
            .or_else(|| k.version.as_str().map(String::from));
        let Some(raw) = raw else {
            c.fail(
                "kubernetes.version",
                "expected a minor version such as \"1.31\"",
            );
            return None;
        };
        KubernetesVersion::parse(&raw)
            .map_err(|problem| c.fail("kubernetes.version", problem))
            .ok()
    });

    let mut outputs = Vec::new();
    let wanted = doc
        .outputs
        .clone()
        .unwrap_or_else(|| Output::ALL.iter().map(|(n, _)| n.to_string()).collect());
    for (i, name) in wanted.iter().enumerate() {
        match Output::ALL.iter().find(|(n, _)| n == name) {
            Some((_, o)) if !outputs.contains(o) => outputs.push(o.clone()),
            Some(_) => c.fail(
                &format!("outputs[{i}]"),
                format!("`{name}` is listed twice"),
            ),
            None => {
                let known: Vec<&str> = Output::ALL.iter().map(|(n, _)| *n).collect();
                c.fail(
                    &format!("outputs[{i}]"),
                    format!("unknown output `{name}` (known: {})", known.join(", ")),
                );
            }
        }
    }
    if outputs.contains(&Output::Vaquero) && !outputs.contains(&Output::Pxe) {
        c.fail(
            "outputs",
            "`vaquero` serves the PXE boot files: list `pxe` too",
        );
    }
    if outputs.is_empty() && c.errors.is_empty() {
        c.fail("outputs", "at least one output is needed");
    }
    // The converted disks are made from disk.raw.
    if !outputs.contains(&Output::Disk) {
        for (i, name) in wanted.iter().enumerate() {
            if matches!(name.as_str(), "qcow2" | "vmdk" | "ova") {
                c.fail(
                    &format!("outputs[{i}]"),
                    format!("`{name}` is converted from the disk image: add `disk` to outputs"),
                );
            }
        }
    }

    let secure_boot = super::secure_boot::check(&mut c, doc.secure_boot.as_ref(), dir, &outputs);

    if !c.errors.is_empty() {
        return Err(RecipeErrors(c.errors));
    }
    Ok(Recipe {
        label: label.to_string(),
        text: text.to_string(),
        dir: dir.to_path_buf(),
        name: doc.name,
        version: doc.version,
        base: base.expect("checked above"),
        base_verify,
        kernel_from,
        cmdline,
        boot_modules,
        packages: doc.packages.clone(),
        run: doc.run.clone(),
        files,
        directories,
        links,
        agent: doc.agent.enabled,
        kubernetes,
        hardening,
        components,
        secure_boot,
        outputs,
    })
}
