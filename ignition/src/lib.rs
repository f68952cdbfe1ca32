//! Harmony's config model.
//!
//! Ignition v3 documents (spec 3.0.0–3.4.0) are parsed strictly (unknown keys are errors
//! with their JSON path, keys are case-sensitive; see [`spec`]), validated with upstream's
//! rules plus a few stricter ones ([`validate`]), and resolved into a [`NodeConfig`], the
//! one model the agent plans from. Every failure is a [`ConfigError`] whose Display reads
//! `json.path[3].field: what is wrong`.

mod abs_path;
pub mod cloud_config;
pub mod data_url;
mod error;
pub mod fetch;
pub mod hash;
mod http_headers;
pub mod limits;
pub mod merge;
mod node_config;
pub mod node_settings;
mod resolve;
pub mod rfc3339;
pub mod spec;
pub mod systemd_unit;
pub mod validate;
mod version;

pub use error::{ConfigError, Problem};
pub use fetch::{Fetcher, NoRemoteFetcher};
pub use node_config::*;
pub use version::SpecVersion;

/// A parsed and validated Ignition document, not yet fetched or decoded.
#[derive(Debug, Clone)]
pub struct IgnitionConfig {
    pub version: SpecVersion,
    pub config: spec::Config,
}

/// Parse and validate an Ignition document. The version is read first, so a config of
/// another spec gets "unsupported spec version" rather than a list of unknown keys.
pub fn parse(json: &[u8]) -> Result<IgnitionConfig, ConfigError> {
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| ConfigError::new("", Problem::Syntax(e.to_string())))?;
    let version = match value.pointer("/ignition/version") {
        Some(serde_json::Value::String(v)) => {
            SpecVersion::parse(v).map_err(|p| ConfigError::new("ignition.version", p))?
        }
        Some(serde_json::Value::Null) | None => {
            return Err(ConfigError::new(
                "ignition.version",
                Problem::MissingVersion,
            ))
        }
        Some(other) => {
            return Err(ConfigError::new(
                "ignition.version",
                Problem::UnsupportedVersion(other.to_string()),
            ))
        }
    };
    let config: spec::Config = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::new(
            if path == "." { String::new() } else { path },
            Problem::Shape(e.into_inner().to_string()),
        )
    })?;
    validate::validate(&config, version)?;
    Ok(IgnitionConfig { version, config })
}

/// Parse, validate, render `ignition.config` references ([`merge`]) and resolve: the whole
/// way from bytes to the node's model.
pub fn node_config(json: &[u8], fetcher: &dyn Fetcher) -> Result<NodeConfig, ConfigError> {
    let parsed = merge::render(json, fetcher)?;
    resolve::resolve(&parsed.config, fetcher)
}

#[cfg(test)]
mod tests;
