//! `component.json`, written by the builder beside the image layout: what the catalog
//! entry says about running it (where `config/` goes, the command that reads it, the
//! environment set on purpose).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Described {
    /// Where `config/` is bind-mounted inside the container.
    #[serde(default)]
    pub config_mount: Option<String>,
    /// Replaces the image's Entrypoint and Cmd when not empty.
    #[serde(default)]
    pub command: Vec<String>,
    /// Set over the image's own Env.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `UID:GID` (or names in the image's /etc/passwd) the process runs as, over the
    /// image config's User.
    #[serde(default)]
    pub user: Option<String>,
    /// The only capabilities the process keeps (`NET_BIND_SERVICE`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Where the data directory is mounted writable inside the container.
    #[serde(default)]
    pub data_mount: Option<String>,
    /// Node secrets the process needs, and how they reach it.
    #[serde(default)]
    pub secrets: Vec<ignition::secrets::SecretUse>,
}

impl Described {
    /// An image laid out without component.json runs as its image config says; one that
    /// cannot be read is an error naming the file.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("component.json");
        let bytes = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            other => other.with_context(|| format!("reading {}", path.display()))?,
        };
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            anyhow::anyhow!("{}: {field}: {}", path.display(), e.into_inner())
        })
    }
}
