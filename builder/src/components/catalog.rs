//! The catalog: what a recipe's `components[N].name` may pick, and how each renders.

use ignition::secrets::{SecretFormat, SecretUse};
use serde::de::DeserializeOwned;

use crate::recipe::locate::strip_location;

/// Files rendered from a component's values: paths relative to its `config/` directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    pub files: Vec<(String, String)>,
    /// Resource definitions the software takes through its API (a Sensu handler), not
    /// config it reads at start: kept apart under `resources/` so nothing pretends the
    /// command reads them.
    pub resources: Vec<(String, String)>,
    /// Node secrets the process needs (read by the runner from /etc/harmony/secrets at
    /// start, never baked): the rendered files refer to them, by variable or by a path in
    /// /run/secrets.
    pub secrets: Vec<SecretUse>,
}

impl Rendered {
    pub fn file(mut self, path: &str, text: String) -> Self {
        self.files.push((path.to_string(), text));
        self
    }

    pub fn resource(mut self, path: &str, text: String) -> Self {
        self.resources.push((path.to_string(), text));
        self
    }

    /// Secret NAME as the process's variable VAR.
    pub fn secret_env(mut self, name: &str, var: &str) -> Self {
        self.secrets.push(SecretUse {
            name: name.to_string(),
            env: Some(var.to_string()),
            file: None,
            format: SecretFormat::Raw,
        });
        self
    }

    /// Secret NAME as /run/secrets/FILE in the container, written in `format`.
    pub fn secret_file(mut self, name: &str, file: &str, format: SecretFormat) -> Self {
        self.secrets.push(SecretUse {
            name: name.to_string(),
            env: None,
            file: Some(file.to_string()),
            format,
        });
        self
    }
}

/// A problem in `values`: `field` is the path below `values` (`scrape_configs[0].job`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesError {
    pub field: String,
    pub problem: String,
}

pub struct CatalogEntry {
    pub name: &'static str,
    /// The upstream repository; the recipe pins a digest of it (none is known offline).
    pub upstream: &'static str,
    /// Where `config/` is bind-mounted inside the container (the upstream image's own
    /// config directory).
    pub config_mount: &'static str,
    pub summary: &'static str,
    /// The process and its arguments, replacing the image's Entrypoint and Cmd (as a
    /// Kubernetes `command` does): they name the rendered files (or their directory), so
    /// the software reads what was rendered rather than its image's defaults.
    pub command: &'static [&'static str],
    /// Environment the runner sets on purpose, over the image's own (`ES_PATH_CONF`).
    pub env: &'static [(&'static str, &'static str)],
    /// `UID:GID` the process runs as (the upstream image's own non-root user): the runner
    /// never runs a catalog entry as root.
    pub user: &'static str,
    /// The only capabilities the process keeps (`NET_BIND_SERVICE`, without `CAP_`);
    /// everything else is dropped, bounding set included.
    pub capabilities: &'static [&'static str],
    /// Where the component's data directory (`/var/lib/harmony/components/NAME` on the
    /// node, kept across restarts and reboots) is mounted writable inside the container:
    /// the path the rendered config or the command keeps its state in.
    pub data_mount: &'static str,
    pub render: fn(&serde_yaml_ng::Value) -> Result<Rendered, ValuesError>,
}

pub const CATALOG: &[CatalogEntry] = &[
    super::haproxy::ENTRY,
    super::haproxy::KEEPALIVED,
    super::prometheus::ENTRY,
    super::grafana::ENTRY,
    super::consul::ENTRY,
    super::vault::ENTRY,
    super::redis::ENTRY,
    super::sensu::BACKEND,
    super::sensu::AGENT,
    super::sensu::UCHIWA,
    super::logging::ELASTICSEARCH,
    super::logging::LOGSTASH,
    super::logging::KIBANA,
    super::logging::FLUENT_BIT,
];

pub fn find(name: &str) -> Option<&'static CatalogEntry> {
    CATALOG.iter().find(|e| e.name == name)
}

pub fn names() -> Vec<&'static str> {
    CATALOG.iter().map(|e| e.name).collect()
}

/// Strict values: unknown keys and wrong types are errors naming the field. A missing
/// `values` (YAML null) reads as an empty mapping, so every default applies.
pub fn parse_values<T: DeserializeOwned>(values: &serde_yaml_ng::Value) -> Result<T, ValuesError> {
    let empty = serde_yaml_ng::Value::Mapping(Default::default());
    let v = if values.is_null() { &empty } else { values };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        ValuesError {
            field: if path == "." { String::new() } else { path },
            problem: strip_location(&e.into_inner().to_string()),
        }
    })
}

/// A value that would put a secret into the image: refused, saying where it comes from.
pub fn never_baked(field: &str, secret: &str) -> ValuesError {
    invalid(
        field,
        format!(
            "secrets are never baked into the image: remove `{field}`; the node's config \
             writes {} (mode 0600) at first boot",
            ignition::secrets::secret_path(secret)
        ),
    )
}

pub fn invalid(field: &str, problem: impl Into<String>) -> ValuesError {
    ValuesError {
        field: field.to_string(),
        problem: problem.into(),
    }
}

/// A value quoted for YAML/JSON-ish configs (JSON strings are valid YAML scalars).
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}
