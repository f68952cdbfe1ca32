//! The catalog: what a recipe's `components[N].name` may pick, and how each renders.

use serde::de::DeserializeOwned;

use crate::recipe::locate::strip_location;

/// Files rendered from a component's values: paths relative to its `config/` directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rendered {
    pub files: Vec<(String, String)>,
}

impl Rendered {
    pub fn file(mut self, path: &str, text: String) -> Self {
        self.files.push((path.to_string(), text));
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
