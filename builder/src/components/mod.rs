//! Platform components baked into the image: a catalog of upstream container images
//! (Prometheus, Grafana, haproxy, …) whose configuration is rendered from recipe values.
//!
//! Each component lands read-only under `/usr/share/harmony/components/NAME/`: the image
//! as an OCI image layout, `config/` (the rendered files) and a service entry that runs
//! `harmony-agent component run NAME` (see docs in the README, "Platform components").

pub mod catalog;
#[cfg(test)]
mod command_tests;
pub mod consul;
pub mod grafana;
pub mod haproxy;
pub mod logging;
pub mod prometheus;
pub mod redis;
pub mod sensu;
pub mod vault;

pub use catalog::{find, CatalogEntry, Rendered, ValuesError, CATALOG};

/// Where a component's layout, config and service description live in the image.
pub const COMPONENTS_DIR: &str = "/usr/share/harmony/components";
