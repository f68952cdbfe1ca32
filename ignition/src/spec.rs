//! The Ignition v3 document as written (spec 3.0.0–3.4.0), one superset of the versions.
//!
//! Keys are read as Ignition 2.14 reads them ([`crate::lenient`]): unknown keys and
//! fields of a later spec are warned about and ignored, keys match case-insensitively.
//! `harmony-agent validate --strict` turns those warnings into failures.
//!
//! Every optional field may be `null`, as upstream allows. Sections Harmony does not apply
//! yet (disks, raid, filesystems, luks, kernel arguments)
//! are kept as raw JSON so that an empty one passes and a non-empty one is refused with
//! "not supported by Harmony yet" rather than a misleading "unknown key".

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Config {
    pub ignition: Ignition,
    #[serde(default)]
    pub storage: Option<Storage>,
    #[serde(default)]
    pub systemd: Option<Systemd>,
    #[serde(default)]
    pub passwd: Option<Passwd>,
    #[serde(default, rename = "kernelArguments")]
    pub kernel_arguments: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Ignition {
    #[serde(default)]
    pub version: Option<String>,
    /// `merge` / `replace`, rendered by `crate::merge`.
    #[serde(default)]
    pub config: Option<References>,
    #[serde(default)]
    pub timeouts: Option<Timeouts>,
    #[serde(default)]
    pub security: Option<Security>,
    #[serde(default)]
    pub proxy: Option<Proxy>,
}

/// `ignition.security`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Security {
    #[serde(default)]
    pub tls: Option<Tls>,
}

/// `ignition.security.tls`: CAs trusted, besides the built-in roots, for https fetches.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Tls {
    #[serde(default, rename = "certificateAuthorities")]
    pub certificate_authorities: Option<Vec<Resource>>,
}

/// `ignition.proxy` (spec 3.1.0+).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Proxy {
    #[serde(default, rename = "httpProxy")]
    pub http_proxy: Option<String>,
    #[serde(default, rename = "httpsProxy")]
    pub https_proxy: Option<String>,
    #[serde(default, rename = "noProxy")]
    pub no_proxy: Option<Vec<String>>,
}

/// `ignition.config`: configs this one is merged with or replaced by.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct References {
    #[serde(default)]
    pub merge: Option<Vec<Resource>>,
    #[serde(default)]
    pub replace: Option<Resource>,
}

/// `ignition.timeouts`, in seconds: how long remote fetches may take.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Timeouts {
    #[serde(default, rename = "httpResponseHeaders")]
    pub http_response_headers: Option<i64>,
    #[serde(default, rename = "httpTotal")]
    pub http_total: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Storage {
    #[serde(default)]
    pub disks: Option<Value>,
    #[serde(default)]
    pub raid: Option<Value>,
    #[serde(default)]
    pub filesystems: Option<Value>,
    #[serde(default)]
    pub luks: Option<Value>,
    #[serde(default)]
    pub files: Option<Vec<File>>,
    #[serde(default)]
    pub directories: Option<Vec<Directory>>,
    #[serde(default)]
    pub links: Option<Vec<Link>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeUser {
    #[serde(default)]
    pub id: Option<i64>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct File {
    pub path: String,
    #[serde(default)]
    pub overwrite: Option<bool>,
    #[serde(default)]
    pub user: Option<NodeUser>,
    #[serde(default)]
    pub group: Option<NodeUser>,
    #[serde(default)]
    pub append: Option<Vec<Resource>>,
    #[serde(default)]
    pub contents: Option<Resource>,
    #[serde(default)]
    pub mode: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Resource {
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub compression: Option<String>,
    #[serde(default, rename = "httpHeaders")]
    pub http_headers: Option<Value>,
    #[serde(default)]
    pub verification: Option<Verification>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Verification {
    #[serde(default)]
    pub hash: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Directory {
    pub path: String,
    #[serde(default)]
    pub overwrite: Option<bool>,
    #[serde(default)]
    pub user: Option<NodeUser>,
    #[serde(default)]
    pub group: Option<NodeUser>,
    #[serde(default)]
    pub mode: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Link {
    pub path: String,
    #[serde(default)]
    pub overwrite: Option<bool>,
    #[serde(default)]
    pub user: Option<NodeUser>,
    #[serde(default)]
    pub group: Option<NodeUser>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub hard: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Systemd {
    #[serde(default)]
    pub units: Option<Vec<Unit>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Unit {
    pub name: String,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub mask: Option<bool>,
    #[serde(default)]
    pub contents: Option<String>,
    #[serde(default)]
    pub dropins: Option<Vec<Dropin>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Dropin {
    pub name: String,
    #[serde(default)]
    pub contents: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Passwd {
    #[serde(default)]
    pub users: Option<Vec<User>>,
    #[serde(default)]
    pub groups: Option<Vec<Group>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default, rename = "passwordHash")]
    pub password_hash: Option<String>,
    #[serde(default, rename = "sshAuthorizedKeys")]
    pub ssh_authorized_keys: Option<Vec<String>>,
    #[serde(default)]
    pub uid: Option<i64>,
    #[serde(default)]
    pub gecos: Option<String>,
    #[serde(default, rename = "homeDir")]
    pub home_dir: Option<String>,
    #[serde(default, rename = "noCreateHome")]
    pub no_create_home: Option<bool>,
    #[serde(default, rename = "primaryGroup")]
    pub primary_group: Option<String>,
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default, rename = "noUserGroup")]
    pub no_user_group: Option<bool>,
    #[serde(default, rename = "noLogInit")]
    pub no_log_init: Option<bool>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub system: Option<bool>,
    #[serde(default, rename = "shouldExist")]
    pub should_exist: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Group {
    pub name: String,
    #[serde(default)]
    pub gid: Option<i64>,
    #[serde(default, rename = "passwordHash")]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub system: Option<bool>,
    #[serde(default, rename = "shouldExist")]
    pub should_exist: Option<bool>,
}
