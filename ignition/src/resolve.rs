//! A validated Ignition document → `NodeConfig`: contents fetched (data URLs inline,
//! anything else through the `Fetcher`), hash-checked and decompressed.

use crate::abs_path;
use crate::error::{ConfigError, Problem};
use crate::fetch::Fetcher;
use crate::hash::ExpectedHash;
use crate::limits::{self, ConfigBudget, GunzipError};
use crate::node_config::*;
use crate::spec::{self, Config};
use crate::{Contents, SpecVersion};

type Result<T> = std::result::Result<T, ConfigError>;

/// Call only on a config that passed `validate`: paths, ids and modes are known good,
/// and are converted again here without panicking in case they are not.
pub fn resolve(cfg: &Config, fetcher: &dyn Fetcher) -> Result<NodeConfig> {
    let mut out = NodeConfig::default();
    // Specs before 3.4.0 ignore setuid/setgid/sticky, and upstream keeps it that way so
    // old configs keep their meaning (coreos/ignition#1301): only 3.4.0+ applies them.
    let mode_mask = match cfg.ignition.version.as_deref().map(SpecVersion::parse) {
        Some(Ok(v)) if v >= SpecVersion::V3_4 => 0o7777,
        _ => 0o777,
    };
    let spec_mode = |p: &str, m: Option<i64>| mode(p, m).map(|m| m.map(|m| m & mode_mask));
    if let Some(storage) = &cfg.storage {
        let mut budget = ConfigBudget::default();
        let mut file_resource = |p: &str, r: &spec::Resource| -> Result<Contents> {
            let data = file_contents(p, r, fetcher)?;
            budget
                .take(&data)
                .map_err(|over| ConfigError::new(p, over.problem()))?;
            Ok(data)
        };
        for (i, f) in storage.files.iter().flatten().enumerate() {
            let p = format!("storage.files[{i}]");
            let contents = match &f.contents {
                Some(r) => Some(file_resource(&format!("{p}.contents"), r)?),
                None => None,
            };
            let mut append = Vec::new();
            for (j, r) in f.append.iter().flatten().enumerate() {
                append.push(file_resource(&format!("{p}.append[{j}]"), r)?);
            }
            out.files.push(FileEntry {
                path: path(&p, &f.path)?,
                overwrite: f.overwrite.unwrap_or(false),
                contents,
                append,
                mode: spec_mode(&p, f.mode)?,
                user: owner(&format!("{p}.user"), &f.user)?,
                group: owner(&format!("{p}.group"), &f.group)?,
            });
        }
        for (i, d) in storage.directories.iter().flatten().enumerate() {
            let p = format!("storage.directories[{i}]");
            out.directories.push(DirectoryEntry {
                path: path(&p, &d.path)?,
                overwrite: d.overwrite.unwrap_or(false),
                mode: spec_mode(&p, d.mode)?,
                user: owner(&format!("{p}.user"), &d.user)?,
                group: owner(&format!("{p}.group"), &d.group)?,
            });
        }
        for (i, l) in storage.links.iter().flatten().enumerate() {
            let p = format!("storage.links[{i}]");
            out.links.push(LinkEntry {
                path: path(&p, &l.path)?,
                overwrite: l.overwrite.unwrap_or(false),
                target: l.target.clone().unwrap_or_default(),
                hard: l.hard.unwrap_or(false),
                user: owner(&format!("{p}.user"), &l.user)?,
                group: owner(&format!("{p}.group"), &l.group)?,
            });
        }
    }
    if let Some(systemd) = &cfg.systemd {
        for u in systemd.units.iter().flatten() {
            out.units.push(UnitEntry {
                name: u.name.clone(),
                enabled: u.enabled,
                mask: u.mask.unwrap_or(false),
                // Empty contents write nothing; a masked unit is only its link.
                contents: u
                    .contents
                    .clone()
                    .filter(|c| !c.is_empty() && u.mask != Some(true)),
                dropins: u
                    .dropins
                    .iter()
                    .flatten()
                    .map(|d| DropinEntry {
                        name: d.name.clone(),
                        // An empty drop-in is still written, as Ignition writes it.
                        contents: d.contents.clone(),
                    })
                    .collect(),
            });
        }
    }
    if let Some(passwd) = &cfg.passwd {
        for (i, u) in passwd.users.iter().flatten().enumerate() {
            out.users.push(UserEntry {
                name: u.name.clone(),
                uid: id(&format!("passwd.users[{i}].uid"), u.uid)?,
                password_hash: u.password_hash.clone(),
                ssh_authorized_keys: u.ssh_authorized_keys.clone().unwrap_or_default(),
                gecos: u.gecos.clone(),
                home_dir: u.home_dir.clone(),
                no_create_home: u.no_create_home.unwrap_or(false),
                primary_group: u.primary_group.clone(),
                groups: u.groups.clone().unwrap_or_default(),
                no_user_group: u.no_user_group.unwrap_or(false),
                no_log_init: u.no_log_init.unwrap_or(false),
                shell: u.shell.clone(),
                system: u.system.unwrap_or(false),
                should_exist: u.should_exist.unwrap_or(true),
                style: AccountStyle::Ignition,
            });
        }
        for (i, g) in passwd.groups.iter().flatten().enumerate() {
            out.groups.push(GroupEntry {
                name: g.name.clone(),
                gid: id(&format!("passwd.groups[{i}].gid"), g.gid)?,
                password_hash: g.password_hash.clone(),
                system: g.system.unwrap_or(false),
                should_exist: g.should_exist.unwrap_or(true),
            });
        }
    }
    Ok(out)
}

fn path(p: &str, raw: &str) -> Result<String> {
    abs_path::normalize(raw).ok_or_else(|| {
        ConfigError::new(format!("{p}.path"), Problem::RelativePath(raw.to_string()))
    })
}

fn mode(p: &str, m: Option<i64>) -> Result<Option<u32>> {
    m.map(|m| {
        u32::try_from(m)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| ConfigError::new(format!("{p}.mode"), Problem::ModeOutOfRange(m)))
    })
    .transpose()
}

fn id(p: &str, n: Option<i64>) -> Result<Option<u32>> {
    n.map(|n| u32::try_from(n).map_err(|_| ConfigError::new(p, Problem::IdOutOfRange(n))))
        .transpose()
}

fn owner(p: &str, o: &Option<spec::NodeUser>) -> Result<Option<Owner>> {
    let Some(o) = o else { return Ok(None) };
    if let Some(uid) = id(&format!("{p}.id"), o.id)? {
        return Ok(Some(Owner::Id(uid)));
    }
    Ok(o.name.clone().filter(|n| !n.is_empty()).map(Owner::Name))
}

/// The bytes a resource stands for, in memory: for config documents. An absent or empty
/// source is empty. The hash describes the decompressed contents, as Ignition's spec
/// says. More than `cap` bytes, before or after decompression, is an error naming `p`.
pub(crate) fn resource(
    p: &str,
    r: &spec::Resource,
    cap: u64,
    fetcher: &dyn Fetcher,
) -> Result<Vec<u8>> {
    let raw = source_bytes(p, r, cap, fetcher)?;
    let data = match r.compression.as_deref() {
        Some("gzip") => limits::gunzip(&raw, cap).map_err(|e| gunzip_error(p, e))?,
        _ if raw.len() as u64 > cap => {
            return Err(ConfigError::new(p, Problem::TooLarge(cap)));
        }
        _ => raw,
    };
    if let Some(h) = expected_hash(p, r)? {
        h.verify(&data)
            .map_err(|e| ConfigError::new(format!("{p}.verification.hash"), e))?;
    }
    Ok(data)
}

/// A file's contents: as [`resource`], but gzip stays compressed until the agent writes
/// the file ([`Contents`]), so a large file never sits inflated in memory.
fn file_contents(p: &str, r: &spec::Resource, fetcher: &dyn Fetcher) -> Result<Contents> {
    let cap = limits::MAX_FILE_BYTES;
    let raw = source_bytes(p, r, cap, fetcher)?;
    let data = match r.compression.as_deref() {
        Some("gzip") => Contents::gunzip(raw, cap).map_err(|e| gunzip_error(p, e))?,
        _ if raw.len() as u64 > cap => {
            return Err(ConfigError::new(p, Problem::TooLarge(cap)));
        }
        _ => Contents::from(raw),
    };
    if let Some(h) = expected_hash(p, r)? {
        h.verify_contents(&data)
            .map_err(|e| ConfigError::new(format!("{p}.verification.hash"), e))?;
    }
    Ok(data)
}

/// The source's bytes as given (data URL decoded) or fetched, before decompression; a
/// fetch stops past `cap` bytes (a gzip body is never larger than what it inflates to,
/// but for a few bytes of framing on incompressible data).
fn source_bytes(p: &str, r: &spec::Resource, cap: u64, fetcher: &dyn Fetcher) -> Result<Vec<u8>> {
    let source = r.source.as_deref().unwrap_or("");
    if source.is_empty() {
        Ok(Vec::new())
    } else if source.starts_with("data:") {
        crate::data_url::decode(source)
            .map_err(|e| ConfigError::new(format!("{p}.source"), Problem::DataUrl(e)))
    } else {
        let headers = crate::http_headers::pairs(&format!("{p}.httpHeaders"), &r.http_headers)?;
        fetcher
            .fetch_at_most(source, &headers, cap)
            .map_err(|reason| {
                ConfigError::new(
                    format!("{p}.source"),
                    Problem::Fetch {
                        url: source.to_string(),
                        reason,
                    },
                )
            })
    }
}

fn gunzip_error(p: &str, e: GunzipError) -> ConfigError {
    match e {
        GunzipError::Invalid(e) => ConfigError::new(format!("{p}.source"), Problem::Gzip(e)),
        GunzipError::TooLarge(cap) => ConfigError::new(p, Problem::DecompressedTooLarge(cap)),
    }
}

fn expected_hash(p: &str, r: &spec::Resource) -> Result<Option<ExpectedHash>> {
    r.verification
        .as_ref()
        .and_then(|v| v.hash.as_deref())
        .map(|h| {
            ExpectedHash::parse(h)
                .map_err(|e| ConfigError::new(format!("{p}.verification.hash"), e))
        })
        .transpose()
}
