//! hostname, fqdn, preserve_hostname and manage_etc_hosts, resolved as cloud-init's
//! `util.get_hostname_fqdn` does (user-data first, then meta-data's local-hostname),
//! into /etc/hostname and, when asked, /etc/hosts from Debian's template.

use serde_yaml_ng::Mapping;

use super::error::CloudConfigError;
use super::meta_data::MetaData;
use super::yaml_value::{bool_of, string_of};
use crate::{ConfigWarning, FileEntry, Owner};

pub fn files(
    cfg: &Mapping,
    meta: &MetaData,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<FileEntry>, CloudConfigError> {
    let get = |k: &str| -> Result<Option<String>, CloudConfigError> {
        cfg.get(k).map(|v| string_of(v, k)).transpose()
    };
    let flag = |k: &str| -> Result<bool, CloudConfigError> {
        cfg.get(k).map_or(Ok(false), |v| bool_of(v, k))
    };
    let (hostname, fqdn) = match (get("fqdn")?, get("hostname")?) {
        (Some(fqdn), h) => {
            let short = h.unwrap_or_else(|| fqdn.split('.').next().unwrap_or("").to_string());
            (short, fqdn)
        }
        (None, Some(h)) if h.find('.').is_some_and(|i| i > 0) => {
            (h.split('.').next().unwrap_or("").to_string(), h)
        }
        (None, Some(h)) => {
            let fqdn = meta
                .local_hostname
                .clone()
                .filter(|m| m.starts_with(&format!("{h}.")));
            (h.clone(), fqdn.unwrap_or(h))
        }
        (None, None) => match &meta.local_hostname {
            Some(m) => (m.split('.').next().unwrap_or("").to_string(), m.clone()),
            None => return Ok(Vec::new()),
        },
    };
    let mut out = Vec::new();
    if !flag("preserve_hostname")? {
        let name = if flag("prefer_fqdn_over_hostname")? {
            &fqdn
        } else {
            &hostname
        };
        out.push(file("/etc/hostname", format!("{name}\n")));
    }
    let manage = match cfg.get("manage_etc_hosts") {
        None => false,
        Some(v) if v.as_str() == Some("localhost") => {
            warnings.push(ConfigWarning::new(
                "manage_etc_hosts",
                "\"localhost\" mode is written as `true`: the whole of /etc/hosts is replaced",
            ));
            true
        }
        Some(v) if v.as_str() == Some("template") => true,
        Some(v) => bool_of(v, "manage_etc_hosts")?,
    };
    if manage {
        out.push(file(
            "/etc/hosts",
            format!(
                "# Written by harmony-agent from cloud-config manage_etc_hosts\n\
                 127.0.1.1 {fqdn} {hostname}\n\
                 127.0.0.1 localhost\n\
                 \n\
                 # The following lines are desirable for IPv6 capable hosts\n\
                 ::1 localhost ip6-localhost ip6-loopback\n\
                 ff02::1 ip6-allnodes\n\
                 ff02::2 ip6-allrouters\n"
            ),
        ));
    }
    Ok(out)
}

fn file(path: &str, text: String) -> FileEntry {
    FileEntry {
        path: path.to_string(),
        overwrite: true,
        contents: Some(text.into()),
        append: Vec::new(),
        mode: Some(0o644),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
    }
}
