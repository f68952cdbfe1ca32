//! cloud-init user-data → [`NodeConfig`], the model the Ignition path produces.
//!
//! User-data may be gzip-compressed, MIME multipart, `#cloud-config` YAML, `#!` scripts
//! or `#cloud-boothook`s ([`user_data`]); cloud-config parts are merged with cloud-init's
//! default rule ([`merge`]) and translated in cloud-init's module order: bootcmd (early
//! command), write_files, hostname and /etc/hosts, users and groups (sudoers drop-in),
//! ntp, `harmony:` node settings (as /etc/harmony/node.yaml), deferred write_files, then runcmd and the scripts (late commands, by name, as
//! cloud-init's scripts_user runs them). Keys with no place on an immutable image and
//! unknown keys become [`ConfigWarning`]s. Errors name the key path:
//! `write_files[2].encoding: unknown encoding "rot13" …`.

mod commands;
pub mod error;
mod hostname;
mod keys;
mod merge;
pub mod meta_data;
mod mime;
mod ntp;
mod user_data;
mod users;
mod vendor_data;
mod write_files;
mod yaml_value;

pub use error::{CloudConfigError, CloudProblem};
pub use meta_data::MetaData;
pub use users::{DEFAULT_USER, SUDOERS_FILE};

use crate::{CommandEntry, CommandStage, ConfigWarning, FileEntry, NodeConfig};
use user_data::Part;

/// Whether bytes are cloud-init user-data rather than an Ignition document: gzip, a
/// MIME message, or a first line cloud-init recognises.
pub fn is_user_data(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]).to_ascii_lowercase();
    user_data::is_gzip(bytes)
        || [
            "#cloud-config",
            "#cloud-boothook",
            "#!",
            "#include",
            "#part-handler",
            "## template: jinja",
            "content-type:",
            "mime-version:",
        ]
        .iter()
        .any(|p| head.starts_with(p))
}

/// Translate user-data (with the datasource's meta-data) into a node config.
pub fn node_config(user_data: &[u8], meta: &MetaData) -> Result<NodeConfig, CloudConfigError> {
    node_config_with_vendor_data(user_data, None, meta)
}

/// [`node_config`] with the datasource's vendor-data (VMware `guestinfo.vendordata`),
/// consumed as cloud-init consumes it: its cloud-config lies under the user-data's (a
/// top-level key of the user-data replaces the vendor's), its boothooks and scripts run
/// before the user's (cloud-init's scripts_vendor precedes scripts_user), and none of it
/// is used when the user-data says `vendor_data: {enabled: false}`.
pub fn node_config_with_vendor_data(
    user_data: &[u8],
    vendor: Option<&[u8]>,
    meta: &MetaData,
) -> Result<NodeConfig, CloudConfigError> {
    let (parts, mut warnings) = user_data::parts(user_data)?;
    let env: Vec<(String, String)> = meta
        .instance_id
        .iter()
        .map(|id| ("INSTANCE_ID".to_string(), id.clone()))
        .collect();
    let mut user = Split::of(parts, &env);
    let vendor = match vendor {
        Some(bytes) => {
            let user_cfg = merge::merge_parts(&user.configs, &mut Vec::new())?;
            if vendor_data::enabled(&user_cfg, &mut warnings) {
                let (parts, vendor_warnings) = user_data::parts_of(bytes, "vendor-data")?;
                warnings.extend(vendor_warnings);
                let mut v = Split::of(parts, &env);
                for c in v.early.iter_mut().chain(v.late.iter_mut()) {
                    c.name = format!("vendor-data/{}", c.name);
                }
                v
            } else {
                Split::default()
            }
        }
        None => Split::default(),
    };
    let configs: Vec<(String, String)> = vendor
        .configs
        .into_iter()
        .map(|(name, text)| (format!("vendor-data/{name}"), text))
        .chain(user.configs)
        .collect();
    let mut early: Vec<CommandEntry> = vendor.early.into_iter().chain(user.early).collect();
    let mut late = std::mem::take(&mut user.late);
    let cfg = merge::merge_parts(&configs, &mut warnings)?;
    let mut out = NodeConfig::default();
    for (k, _) in &cfg {
        let key = yaml_value::string_of(k, "")?;
        if !keys::TRANSLATED.contains(&key.as_str()) {
            let message = keys::warning_for(&key);
            warnings.push(ConfigWarning::new(key, message));
        }
    }
    if let Some(v) = cfg.get("bootcmd") {
        early.insert(
            0,
            CommandEntry {
                name: "bootcmd".to_string(),
                stage: CommandStage::Early,
                script: commands::shellify(v, "bootcmd")?,
                env: env.clone(),
            },
        );
    }
    let written = match cfg.get("write_files") {
        Some(v) => write_files::parse(v, "write_files", &mut warnings)?,
        None => Vec::new(),
    };
    let (deferred, now): (Vec<_>, Vec<_>) = written.into_iter().partition(|w| w.defer);
    for w in now {
        put_file(&mut out.files, w.entry);
    }
    for f in hostname::files(&cfg, meta, &mut warnings)? {
        put_file(&mut out.files, f);
    }
    let accounts = users::parse(&cfg, &mut warnings)?;
    out.users = accounts.users;
    out.groups = accounts.groups;
    if let Some(f) = accounts.sudoers {
        put_file(&mut out.files, f);
    }
    if let Some(v) = cfg.get("ntp") {
        for f in ntp::files(v, &mut warnings)? {
            put_file(&mut out.files, f);
        }
    }
    if let Some(v) = cfg.get("harmony") {
        put_file(&mut out.files, node_settings_file(v)?);
    }
    for w in deferred {
        put_file(&mut out.files, w.entry);
    }
    if let Some(v) = cfg.get("runcmd") {
        late.push(CommandEntry {
            name: "runcmd".to_string(),
            stage: CommandStage::Late,
            script: commands::shellify(v, "runcmd")?,
            env: Vec::new(),
        });
    }
    // scripts_user runs the instance's scripts directory (user scripts and runcmd) sorted,
    // after scripts_vendor has run the vendor's, sorted too.
    late.sort_by(|a, b| a.name.cmp(&b.name));
    let mut vendor_late = vendor.late;
    vendor_late.sort_by(|a, b| a.name.cmp(&b.name));
    out.commands = early.into_iter().chain(vendor_late).chain(late).collect();
    out.warnings = warnings;
    Ok(out)
}

/// One document's parts by what runs them: cloud-config (merged later), boothooks
/// (early commands, with the instance id) and scripts (late commands).
#[derive(Default)]
struct Split {
    configs: Vec<(String, String)>,
    early: Vec<CommandEntry>,
    late: Vec<CommandEntry>,
}

impl Split {
    fn of(parts: Vec<Part>, env: &[(String, String)]) -> Split {
        let mut s = Split::default();
        for part in parts {
            match part {
                Part::CloudConfig { name, text } => s.configs.push((name, text)),
                Part::Boothook { name, bytes } => s.early.push(CommandEntry {
                    name,
                    stage: CommandStage::Early,
                    script: bytes,
                    env: env.to_vec(),
                }),
                Part::Script { name, bytes } => s.late.push(CommandEntry {
                    name,
                    stage: CommandStage::Late,
                    script: bytes,
                    env: Vec::new(),
                }),
            }
        }
        s
    }
}

/// `harmony:` holds the node settings: checked here, and carried the way an Ignition
/// config carries them, as /etc/harmony/node.yaml (0600: it holds the bootstrap token).
fn node_settings_file(v: &serde_yaml_ng::Value) -> Result<FileEntry, CloudConfigError> {
    crate::node_settings::NodeSettings::from_yaml_value(v)
        .map_err(|e| CloudConfigError::new("", CloudProblem::Settings(e.to_string())))?;
    let text = serde_yaml_ng::to_string(v)
        .map_err(|e| CloudConfigError::new("harmony", CloudProblem::Yaml(e.to_string())))?;
    Ok(FileEntry {
        path: crate::node_settings::NODE_YAML_PATH.to_string(),
        overwrite: true,
        contents: Some(text.into()),
        append: Vec::new(),
        mode: Some(0o600),
        user: Some(crate::Owner::Id(0)),
        group: Some(crate::Owner::Id(0)),
    })
}

/// Later writes of one path replace earlier ones, and appends add to them, as writing
/// the files in order would.
fn put_file(files: &mut Vec<FileEntry>, f: FileEntry) {
    match files.iter_mut().find(|e| e.path == f.path) {
        Some(e) if f.contents.is_none() => {
            e.append.extend(f.append);
            e.mode = f.mode;
            e.user = f.user;
            e.group = f.group;
        }
        Some(e) => *e = f,
        None => files.push(f),
    }
}

#[cfg(test)]
mod tests;
