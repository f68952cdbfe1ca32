//! Upstream Ignition's validation rules (where they apply), plus Harmony's stricter ones,
//! run on the document before anything is fetched or decoded. Checks go in document
//! order and the first failure is returned, so the same config always gives the same error.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::abs_path;
use crate::error::{ConfigError, Problem};
use crate::node_config::ConfigWarning;
use crate::spec::{self, Config};
use crate::systemd_unit;
use crate::version::SpecVersion;

type Result<T = ()> = std::result::Result<T, ConfigError>;

const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];
const REMOTE_SCHEMES: &[&str] = &["http", "https", "tftp", "s3", "gs", "arn"];
/// Where a unit's contents and drop-ins land; files there would fight with the unit.
pub const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";

/// Fields of a later spec never get here: [`crate::lenient`] left them unused. What
/// Ignition accepts with a warning is added to `warnings`.
pub fn validate(cfg: &Config, version: SpecVersion, warnings: &mut Vec<ConfigWarning>) -> Result {
    let at = |path: &str, p: Problem| ConfigError::new(path, p);
    crate::merge::check_references(&cfg.ignition.config, version)?;
    check_certificate_authorities(&cfg.ignition.security, version)?;
    check_proxy(&cfg.ignition.proxy, warnings)?;
    not_yet("kernelArguments", &cfg.kernel_arguments, "kernel arguments")?;

    let mut nodes = NodeTable::default();
    if let Some(storage) = &cfg.storage {
        not_yet("storage.disks", &storage.disks, "disk partitioning")?;
        not_yet("storage.raid", &storage.raid, "RAID")?;
        not_yet("storage.filesystems", &storage.filesystems, "filesystems")?;
        not_yet("storage.luks", &storage.luks, "LUKS")?;
        for (i, f) in storage.files.iter().flatten().enumerate() {
            let p = format!("storage.files[{i}]");
            nodes.add(&p, &f.path, NodeKind::File)?;
            check_owner(&p, &f.user, &f.group)?;
            check_mode(&p, f.mode)?;
            if f.overwrite == Some(true)
                && f.contents
                    .as_ref()
                    .and_then(|c| c.source.as_ref())
                    .is_none()
            {
                return Err(at(
                    &format!("{p}.overwrite"),
                    Problem::OverwriteWithoutSource,
                ));
            }
            if let Some(c) = &f.contents {
                check_resource(&format!("{p}.contents"), c, version)?;
            }
            for (j, a) in f.append.iter().flatten().enumerate() {
                check_resource(&format!("{p}.append[{j}]"), a, version)?;
            }
        }
        for (i, d) in storage.directories.iter().flatten().enumerate() {
            let p = format!("storage.directories[{i}]");
            nodes.add(&p, &d.path, NodeKind::Directory)?;
            check_owner(&p, &d.user, &d.group)?;
            check_mode(&p, d.mode)?;
        }
        for (i, l) in storage.links.iter().flatten().enumerate() {
            let p = format!("storage.links[{i}]");
            nodes.add(&p, &l.path, NodeKind::Link)?;
            check_owner(&p, &l.user, &l.group)?;
            let target = l.target.as_deref().unwrap_or("");
            if target.is_empty() {
                return Err(at(&format!("{p}.target"), Problem::LinkTargetRequired));
            }
            if l.hard == Some(true) && !target.starts_with('/') {
                return Err(at(
                    &format!("{p}.target"),
                    Problem::HardLinkTargetRelative(target.to_string()),
                ));
            }
        }
        nodes.check_parents()?;
    }

    if let Some(systemd) = &cfg.systemd {
        let mut names = BTreeMap::new();
        for (i, u) in systemd.units.iter().flatten().enumerate() {
            let p = format!("systemd.units[{i}]");
            check_unit(&p, u, warnings)?;
            if names.insert(u.name.clone(), ()).is_some() {
                return Err(at(
                    &format!("{p}.name"),
                    Problem::DuplicateName(u.name.clone()),
                ));
            }
            nodes.check_unit_paths(u)?;
        }
    }

    if let Some(passwd) = &cfg.passwd {
        let mut names = BTreeMap::new();
        for (i, u) in passwd.users.iter().flatten().enumerate() {
            let p = format!("passwd.users[{i}]");
            check_account_name(&format!("{p}.name"), &u.name, &mut names)?;
            check_id(&format!("{p}.uid"), u.uid)?;
            if let Some(home) = &u.home_dir {
                if !home.starts_with('/') {
                    return Err(at(
                        &format!("{p}.homeDir"),
                        Problem::RelativePath(home.clone()),
                    ));
                }
            }
        }
        let mut names = BTreeMap::new();
        for (i, g) in passwd.groups.iter().flatten().enumerate() {
            let p = format!("passwd.groups[{i}]");
            check_account_name(&format!("{p}.name"), &g.name, &mut names)?;
            check_id(&format!("{p}.gid"), g.gid)?;
        }
    }
    Ok(())
}

/// A section Harmony cannot apply yet may be present only when it says nothing.
fn not_yet(path: &str, v: &Option<Value>, what: &str) -> Result {
    match v {
        Some(v) if !is_empty(v) => Err(ConfigError::new(
            path,
            Problem::NotSupportedYet(what.to_string()),
        )),
        _ => Ok(()),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().all(is_empty),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

fn check_mode(p: &str, mode: Option<i64>) -> Result {
    match mode {
        Some(m) if !(0..=0o7777).contains(&m) => Err(ConfigError::new(
            format!("{p}.mode"),
            Problem::ModeOutOfRange(m),
        )),
        _ => Ok(()),
    }
}

fn check_id(p: &str, id: Option<i64>) -> Result {
    match id {
        Some(n) if u32::try_from(n).is_err() => Err(ConfigError::new(p, Problem::IdOutOfRange(n))),
        _ => Ok(()),
    }
}

fn check_owner(p: &str, user: &Option<spec::NodeUser>, group: &Option<spec::NodeUser>) -> Result {
    for (field, owner) in [("user", user), ("group", group)] {
        if let Some(o) = owner {
            let fp = format!("{p}.{field}");
            check_id(&format!("{fp}.id"), o.id)?;
            if o.id.is_some() && o.name.as_deref().is_some_and(|n| !n.is_empty()) {
                return Err(ConfigError::new(fp, Problem::IdAndName));
            }
        }
    }
    Ok(())
}

/// `ignition.security.tls.certificateAuthorities`: each a resource with a source, sources
/// unique (the merge key).
fn check_certificate_authorities(
    security: &Option<spec::Security>,
    version: SpecVersion,
) -> Result {
    let cas = security
        .as_ref()
        .and_then(|s| s.tls.as_ref())
        .and_then(|t| t.certificate_authorities.as_deref())
        .unwrap_or_default();
    check_resource_list("ignition.security.tls.certificateAuthorities", cas, version)
}

/// A list of resources merged by source (certificate authorities, `ignition.config.merge`):
/// each needs a source, sources are unique, and each is a valid resource.
pub(crate) fn check_resource_list(
    list_path: &str,
    resources: &[spec::Resource],
    version: SpecVersion,
) -> Result {
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in resources.iter().enumerate() {
        let p = format!("{list_path}[{i}]");
        let source = r.source.as_deref().unwrap_or("");
        if source.is_empty() {
            return Err(ConfigError::new(
                format!("{p}.source"),
                Problem::SourceRequired,
            ));
        }
        if !seen.insert(source) {
            return Err(ConfigError::new(
                format!("{p}.source"),
                Problem::DuplicateSource(source.to_string()),
            ));
        }
        check_resource(&p, r, version)?;
    }
    Ok(())
}

/// `ignition.proxy`: proxies are http or https URLs, as upstream checks; a plaintext proxy
/// for https sources is allowed with upstream's warning.
fn check_proxy(proxy: &Option<spec::Proxy>, warnings: &mut Vec<ConfigWarning>) -> Result {
    let Some(proxy) = proxy else { return Ok(()) };
    for (field, value) in [
        ("httpProxy", &proxy.http_proxy),
        ("httpsProxy", &proxy.https_proxy),
    ] {
        let Some(url) = value.as_deref().filter(|u| !u.is_empty()) else {
            continue;
        };
        let p = format!("ignition.proxy.{field}");
        match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("https") => {}
            Some("http") if field == "httpsProxy" => warnings.push(ConfigWarning::new(
                p,
                "insecure plaintext HTTP proxy specified for HTTPS resources",
            )),
            Some("http") => {}
            _ => return Err(ConfigError::new(p, Problem::InvalidProxy(url.to_string()))),
        }
    }
    Ok(())
}

pub(crate) fn check_resource(p: &str, r: &spec::Resource, version: SpecVersion) -> Result {
    crate::http_headers::check(
        &format!("{p}.httpHeaders"),
        &r.http_headers,
        r.source.as_deref(),
    )?;
    if let Some(src) = r.source.as_deref().filter(|s| !s.is_empty()) {
        let scheme = src.split_once(':').map(|(s, _)| s);
        match scheme {
            Some("data") => {}
            Some(s) if REMOTE_SCHEMES.contains(&s) => {}
            Some(s) => {
                return Err(ConfigError::new(
                    format!("{p}.source"),
                    Problem::UnsupportedScheme(s.to_string()),
                ))
            }
            None => {
                return Err(ConfigError::new(
                    format!("{p}.source"),
                    Problem::UnsupportedScheme(String::new()),
                ))
            }
        }
    }
    match r.compression.as_deref() {
        None | Some("") | Some("gzip") => {}
        Some(other) => {
            return Err(ConfigError::new(
                format!("{p}.compression"),
                Problem::UnsupportedCompression(other.to_string()),
            ))
        }
    }
    if let Some(h) = r.verification.as_ref().and_then(|v| v.hash.as_deref()) {
        let expected = crate::hash::ExpectedHash::parse(h)
            .map_err(|e| ConfigError::new(format!("{p}.verification.hash"), e))?;
        // Spec 3.0.0 knows sha512 only; sha256 came with 3.1.0.
        if matches!(expected, crate::hash::ExpectedHash::Sha256(_)) {
            version
                .require(SpecVersion::V3_1)
                .map_err(|e| ConfigError::new(format!("{p}.verification.hash"), e))?;
        }
    }
    Ok(())
}

fn check_unit(p: &str, u: &spec::Unit, warnings: &mut Vec<ConfigWarning>) -> Result {
    let at = |field: &str, prob: Problem| ConfigError::new(format!("{p}.{field}"), prob);
    if u.name.contains('/') {
        return Err(at("name", Problem::UnitNameWithSlash(u.name.clone())));
    }
    if !UNIT_SUFFIXES
        .iter()
        .any(|s| u.name.ends_with(s) && u.name.len() > s.len())
    {
        return Err(at("name", Problem::UnitSuffix(u.name.clone())));
    }
    let contents = u.contents.as_deref().filter(|c| !c.is_empty());
    let parsed = match contents {
        Some(c) => Some(systemd_unit::parse(c).map_err(|e| at("contents", e))?),
        None => None,
    };
    // Ignition 2.14 accepts these, masking wins over contents and writes the preset line;
    // the report says what was not done.
    let masked = u.mask == Some(true);
    let warn = |field: &str, message: String| ConfigWarning::new(format!("{p}.{field}"), message);
    if masked && contents.is_some() {
        warnings.push(warn(
            "contents",
            format!("unit {:?} is masked: its contents are not written, the unit is a link to /dev/null", u.name),
        ));
    }
    if masked && u.enabled == Some(true) {
        warnings.push(warn(
            "enabled",
            format!("unit {:?} is masked: enabling it is written to the preset file only, systemd will not start it", u.name),
        ));
    }
    if let (Some(true), Some(unit)) = (u.enabled, &parsed) {
        let info = unit.install_info();
        if !info.has_links() && info.also.is_empty() {
            // Ignition 2.14's own words.
            warnings.push(warn(
                "contents",
                format!(
                    "unit {:?} is enabled, but has no install section so enable does nothing",
                    u.name
                ),
            ));
        }
    }
    let mut names = BTreeMap::new();
    for (j, d) in u.dropins.iter().flatten().enumerate() {
        let dp = format!("{p}.dropins[{j}]");
        if !d.name.ends_with(".conf") || d.name.len() == 5 || d.name.contains('/') {
            return Err(ConfigError::new(
                format!("{dp}.name"),
                Problem::DropinSuffix(d.name.clone()),
            ));
        }
        if names.insert(d.name.clone(), ()).is_some() {
            return Err(ConfigError::new(
                format!("{dp}.name"),
                Problem::DuplicateName(d.name.clone()),
            ));
        }
        if let Some(c) = d.contents.as_deref().filter(|c| !c.is_empty()) {
            systemd_unit::parse(c).map_err(|e| ConfigError::new(format!("{dp}.contents"), e))?;
        }
    }
    Ok(())
}

fn check_account_name(p: &str, name: &str, seen: &mut BTreeMap<String, ()>) -> Result {
    if name.is_empty() {
        return Err(ConfigError::new(p, Problem::EmptyName));
    }
    if name.contains([':', '\n', '/']) || name.chars().any(char::is_whitespace) {
        return Err(ConfigError::new(
            p,
            Problem::InvalidName(name.to_string(), "no ':', '/', or whitespace allowed"),
        ));
    }
    if seen.insert(name.to_string(), ()).is_some() {
        return Err(ConfigError::new(
            p,
            Problem::DuplicateName(name.to_string()),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeKind {
    File,
    Directory,
    Link,
}

/// Every storage node by normalised path, with the JSON path that declared it.
#[derive(Default)]
struct NodeTable {
    by_path: BTreeMap<String, (String, NodeKind)>,
    order: Vec<(String, String)>,
}

impl NodeTable {
    fn add(&mut self, json_path: &str, path: &str, kind: NodeKind) -> Result {
        let field = format!("{json_path}.path");
        let norm = abs_path::normalize(path)
            .ok_or_else(|| ConfigError::new(&field, Problem::RelativePath(path.to_string())))?;
        // Upstream refuses `//`, `.`, `..` and a trailing `/` (path.Clean(p) != p).
        if norm != path {
            return Err(ConfigError::new(
                &field,
                Problem::DirtyPath(path.to_string(), norm),
            ));
        }
        // Upstream accepts "/" (path.Clean leaves it alone) and then chmods or chowns the
        // root, or fails writing a file there: a node at "/" is refused, merged or not.
        if norm == "/" {
            return Err(ConfigError::new(&field, Problem::RootPath));
        }
        if let Some((first, _)) = self.by_path.get(&norm) {
            return Err(ConfigError::new(
                field,
                Problem::DuplicatePath {
                    path: norm,
                    first: first.clone(),
                },
            ));
        }
        self.by_path
            .insert(norm.clone(), (json_path.to_string(), kind));
        self.order.push((json_path.to_string(), norm));
        Ok(())
    }

    /// A node cannot live under a file or a link the same config declares.
    fn check_parents(&self) -> Result {
        for (json_path, path) in &self.order {
            for anc in abs_path::ancestors(path) {
                if let Some((other, kind)) = self.by_path.get(anc) {
                    if *kind != NodeKind::Directory {
                        return Err(ConfigError::new(
                            format!("{json_path}.path"),
                            Problem::UnderNonDirectory {
                                path: path.clone(),
                                other: other.clone(),
                            },
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A unit writes its file (or its mask link) and its drop-ins; a storage node at one
    /// of those paths would race with it.
    fn check_unit_paths(&self, u: &spec::Unit) -> Result {
        let mut written = Vec::new();
        if u.contents.as_deref().is_some_and(|c| !c.is_empty()) || u.mask == Some(true) {
            written.push(format!("{SYSTEM_UNIT_DIR}/{}", u.name));
        }
        // A drop-in with contents, even empty ones, is written (as Ignition does).
        for d in u.dropins.iter().flatten() {
            if d.contents.is_some() {
                written.push(format!("{SYSTEM_UNIT_DIR}/{}.d/{}", u.name, d.name));
            }
        }
        for w in written {
            if let Some((json_path, _)) = self.by_path.get(&w) {
                return Err(ConfigError::new(
                    format!("{json_path}.path"),
                    Problem::ConflictsWithUnit {
                        path: w.clone(),
                        unit: u.name.clone(),
                    },
                ));
            }
        }
        Ok(())
    }
}
