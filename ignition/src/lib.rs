//! Harmony's config model.
//!
//! Ignition v3 documents (spec 3.0.0–3.4.0) are read as Ignition 2.14 reads them (unknown
//! keys and fields of a later spec are warnings, keys match case-insensitively; see
//! [`lenient`]), validated with upstream's rules plus a few stricter ones ([`validate`]),
//! and resolved into a [`NodeConfig`], the one model the agent plans from. Every failure is
//! a [`ConfigError`] whose Display reads `json.path[3].field: what is wrong`; every
//! warning a [`ConfigWarning`] carried in the model (and the agent's report).

mod abs_path;
pub mod agent_boot_hook;
pub mod butane;
pub mod cloud_config;
mod contents;
pub mod data_url;
mod error;
pub mod fetch;
pub mod fetch_settings;
pub mod hash;
mod http_headers;
pub mod image_identity;
pub mod keepalived;
pub mod lenient;
pub mod limits;
pub mod merge;
mod node_config;
pub mod node_settings;
mod resolve;
pub mod rfc3339;
pub mod secrets;
pub mod spec;
pub mod systemd_unit;
pub mod validate;
mod version;

pub use contents::Contents;
pub use error::{ConfigError, Problem};
pub use fetch::{Fetcher, NoRemoteFetcher};
pub use node_config::*;
pub use version::SpecVersion;

/// A parsed and validated Ignition document, not yet fetched or decoded.
#[derive(Debug, Clone)]
pub struct IgnitionConfig {
    pub version: SpecVersion,
    pub config: spec::Config,
    /// What Ignition would warn about: unused keys, units it cannot enable, ….
    pub warnings: Vec<ConfigWarning>,
    /// The document as used (unused keys dropped, keys renamed to their field): what a
    /// merge starts from.
    pub(crate) used: serde_json::Value,
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
    let warnings = std::cell::RefCell::new(Vec::new());
    let (config, used) = lenient::read::<spec::Config>(value, "", version, &warnings)?;
    let mut warnings = warnings.into_inner();
    validate::validate(&config, version, &mut warnings)?;
    Ok(IgnitionConfig {
        version,
        config,
        warnings,
        used,
    })
}

/// Parse, validate, render `ignition.config` references ([`merge`]) and resolve: the whole
/// way from bytes to the node's model.
///
/// Remote fetches follow each config's `ignition.timeouts`, `.security.tls` and `.proxy`
/// as Ignition does ([`fetch_settings`]); the files' contents those of the rendered config.
pub fn node_config(json: &[u8], fetcher: &dyn Fetcher) -> Result<NodeConfig, ConfigError> {
    let mut fetcher = fetch_settings::ConfiguredFetcher::new(fetcher);
    let parsed = merge::render_with(json, &mut fetcher)?;
    fetcher.update(&parsed.config.ignition)?;
    let mut cfg = resolve::resolve(&parsed.config, fetcher.get())?;
    cfg.warnings.extend(parsed.warnings);
    Ok(cfg)
}

#[cfg(test)]
mod tests;
