//! `users`, `groups` and top-level `ssh_authorized_keys`, as cloud-init's
//! `ug_util.normalize_users_groups` reads them, into the same user and group entries
//! Ignition's passwd section gives. `sudo` rules become /etc/sudoers.d/90-cloud-init-users.

use serde_yaml_ng::{Mapping, Value};

use super::error::{CloudConfigError, CloudProblem};
use super::yaml_value::{bool_of, id_of, names_of, string_of, strings_of, wrong};
use crate::{AccountStyle, ConfigWarning, FileEntry, GroupEntry, Owner, UserEntry};

/// The image's default user, what `- default` (or no `users` key) means. cloud-init takes
/// it from the distro's system_info; Harmony images have this one.
pub const DEFAULT_USER: &str = "harmony";
const DEFAULT_SUDO: &str = "ALL=(ALL) NOPASSWD:ALL";
pub const SUDOERS_FILE: &str = "/etc/sudoers.d/90-cloud-init-users";

/// Keys cloud-init knows for a user that harmony-agent does not act on.
const UNSUPPORTED_USER_KEYS: [&str; 9] = [
    "selinux_user",
    "inactive",
    "expiredate",
    "ssh_import_id",
    "ssh_redirect_user",
    "doas",
    "snapuser",
    "plain_text_passwd",
    "create_groups",
];

pub struct Accounts {
    pub users: Vec<UserEntry>,
    pub groups: Vec<GroupEntry>,
    /// The sudoers drop-in, when any user has rules.
    pub sudoers: Option<FileEntry>,
}

pub fn parse(
    cfg: &Mapping,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Accounts, CloudConfigError> {
    let mut users: Vec<UserEntry> = Vec::new();
    let mut sudo_rules: Vec<(String, Vec<String>)> = Vec::new();
    let default_items = Value::Sequence(vec![Value::String("default".into())]);
    let list = cfg.get("users").unwrap_or(&default_items);
    let items: Vec<(String, &Value)> = match list {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("users[{i}]"), v))
            .collect(),
        Value::String(_) | Value::Mapping(_) => vec![("users".to_string(), list)],
        Value::Null => Vec::new(),
        other => return Err(wrong("users", "a list", other)),
    };
    for (p, item) in items {
        match item {
            Value::String(_) => {
                for name in names_of(item, &p)? {
                    if name == "default" {
                        push_default(&mut users, &mut sudo_rules);
                    } else {
                        users.push(new_user(&name, &p)?);
                    }
                }
            }
            Value::Mapping(m) => user(m, &p, &mut users, &mut sudo_rules, warnings)?,
            other => return Err(wrong(&p, "a user name or a mapping", other)),
        }
    }
    if let Some(keys) = cfg.get("ssh_authorized_keys") {
        let keys = strings_of(keys, "ssh_authorized_keys")?;
        match users.iter_mut().find(|u| u.name == DEFAULT_USER) {
            Some(u) => {
                for k in keys {
                    if !u.ssh_authorized_keys.contains(&k) {
                        u.ssh_authorized_keys.push(k);
                    }
                }
            }
            None => warnings.push(ConfigWarning::new(
                "ssh_authorized_keys",
                format!("the default user {DEFAULT_USER:?} is not in users: keys not installed"),
            )),
        }
    }
    let groups = match cfg.get("groups") {
        Some(g) => groups(g, &mut users, warnings)?,
        None => Vec::new(),
    };
    let sudoers = (!sudo_rules.is_empty()).then(|| sudoers_file(&sudo_rules));
    Ok(Accounts {
        users,
        groups,
        sudoers,
    })
}

fn new_user(name: &str, path: &str) -> Result<UserEntry, CloudConfigError> {
    check_name(name, path)?;
    Ok(UserEntry {
        name: name.to_string(),
        should_exist: true,
        style: AccountStyle::CloudInit,
        ..UserEntry::default()
    })
}

fn check_name(name: &str, path: &str) -> Result<(), CloudConfigError> {
    let why = if name.is_empty() {
        Some("empty")
    } else if name.contains([':', '\n', '/', ',']) || name.contains(char::is_whitespace) {
        Some("contains ':', '/', ',' or white space")
    } else {
        None
    };
    match why {
        Some(w) => Err(CloudConfigError::new(
            path,
            CloudProblem::InvalidName(name.into(), w),
        )),
        None => Ok(()),
    }
}

fn push_default(users: &mut Vec<UserEntry>, sudo: &mut Vec<(String, Vec<String>)>) {
    if users.iter().any(|u| u.name == DEFAULT_USER) {
        return;
    }
    users.push(UserEntry {
        name: DEFAULT_USER.to_string(),
        gecos: Some("Harmony".to_string()),
        shell: Some("/bin/sh".to_string()),
        should_exist: true,
        style: AccountStyle::CloudInit,
        ..UserEntry::default()
    });
    sudo.push((DEFAULT_USER.to_string(), vec![DEFAULT_SUDO.to_string()]));
}

fn user(
    m: &Mapping,
    p: &str,
    users: &mut Vec<UserEntry>,
    sudo_rules: &mut Vec<(String, Vec<String>)>,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<(), CloudConfigError> {
    let name_path = format!("{p}.name");
    if m.get("name").is_none() && m.get("snapuser").is_some() {
        warnings.push(ConfigWarning::new(
            format!("{p}.snapuser"),
            "not supported by harmony-agent: ignored",
        ));
        return Ok(());
    }
    let name = m
        .get("name")
        .ok_or_else(|| CloudConfigError::new(&name_path, CloudProblem::Missing))?;
    let name = string_of(name, &name_path)?;
    if name == "default" {
        push_default(users, sudo_rules);
        return Ok(());
    }
    let mut u = new_user(&name, &name_path)?;
    // cloud-init locks the password unless told otherwise, after setting any hash.
    let mut lock = true;
    for (k, v) in m {
        let key = string_of(k, p)?.replace('-', "_");
        let kp = format!("{p}.{key}");
        match key.as_str() {
            "name" => {}
            "gecos" => u.gecos = Some(string_of(v, &kp)?),
            "homedir" => u.home_dir = Some(string_of(v, &kp)?),
            "primary_group" => u.primary_group = Some(string_of(v, &kp)?),
            "groups" => u.groups = names_of(v, &kp)?,
            "shell" => u.shell = Some(string_of(v, &kp)?),
            "uid" => u.uid = Some(id_of(v, &kp)?),
            "system" => u.system = bool_of(v, &kp)?,
            "no_create_home" => u.no_create_home = bool_of(v, &kp)?,
            "no_user_group" => u.no_user_group = bool_of(v, &kp)?,
            "no_log_init" => u.no_log_init = bool_of(v, &kp)?,
            "lock_passwd" => lock = bool_of(v, &kp)?,
            "passwd" | "hashed_passwd" => u.password_hash = Some(string_of(v, &kp)?),
            "ssh_authorized_keys" => u.ssh_authorized_keys = strings_of(v, &kp)?,
            "sudo" => match v {
                Value::Null | Value::Bool(false) => {}
                Value::Bool(true) => return Err(wrong(&kp, "a sudoers rule or a list of them", v)),
                _ => sudo_rules.push((name.clone(), strings_of(v, &kp)?)),
            },
            k if UNSUPPORTED_USER_KEYS.contains(&k) => warnings.push(ConfigWarning::new(
                kp,
                "not supported by harmony-agent: ignored",
            )),
            _ => warnings.push(ConfigWarning::new(kp, "unknown key ignored")),
        }
    }
    if lock {
        if let Some(h) = &u.password_hash {
            if !h.starts_with('!') {
                u.password_hash = Some(format!("!{h}"));
            }
        }
    }
    users.retain(|x| x.name != u.name);
    users.push(u);
    Ok(())
}

/// `groups: [a, {b: [user1, user2]}]`: members are added to those users' groups.
fn groups(
    v: &Value,
    users: &mut [UserEntry],
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<GroupEntry>, CloudConfigError> {
    let mut out = Vec::new();
    let mut add = |name: &str, members: Vec<String>, p: &str| -> Result<(), CloudConfigError> {
        check_name(name, p)?;
        out.push(GroupEntry {
            name: name.to_string(),
            should_exist: true,
            ..GroupEntry::default()
        });
        for m in members {
            match users.iter_mut().find(|u| u.name == m) {
                Some(u) if !u.groups.iter().any(|g| g == name) => u.groups.push(name.to_string()),
                Some(_) => {}
                None => warnings.push(ConfigWarning::new(
                    p,
                    format!("member {m:?} is not a user of this config: not added"),
                )),
            }
        }
        Ok(())
    };
    let items: Vec<(String, &Value)> = match v {
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("groups[{i}]"), v))
            .collect(),
        other => vec![("groups".to_string(), other)],
    };
    for (p, item) in items {
        match item {
            Value::String(_) => {
                for n in names_of(item, &p)? {
                    add(&n, Vec::new(), &p)?;
                }
            }
            Value::Mapping(m) => {
                for (k, members) in m {
                    let n = string_of(k, &p)?;
                    let kp = format!("{p}.{n}");
                    add(&n, names_of(members, &kp)?, &kp)?;
                }
            }
            other => return Err(wrong(&p, "a group name or a mapping", other)),
        }
    }
    Ok(out)
}

fn sudoers_file(rules: &[(String, Vec<String>)]) -> FileEntry {
    let mut text = String::from("# Written by harmony-agent from cloud-config users[].sudo\n");
    for (user, lines) in rules {
        text.push_str(&format!("\n# User rules for {user}\n"));
        for l in lines {
            text.push_str(&format!("{user} {l}\n"));
        }
    }
    FileEntry {
        path: SUDOERS_FILE.to_string(),
        overwrite: true,
        contents: Some(text.into()),
        append: Vec::new(),
        mode: Some(0o440),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
    }
}
