//! harmony-agent: finds the node's config, plans every change against the target root,
//! applies it atomically and reports. `main.rs` is a shim over [`cli`].

pub mod accounts;
pub mod api_proxy;
pub mod apply;
pub mod backoff;
pub mod cli;
pub mod component;
pub mod config_format;
pub mod fetch;
pub mod firstboot;
pub mod ha;
pub mod init_system;
pub mod install;
pub mod join;
pub mod live_apply;
pub mod node_role;
pub mod plan;
pub mod provenance;
pub mod report;
pub mod sd_notify;
pub use ignition::rfc3339;
pub mod sources;
pub mod ssh_guard;
pub mod target_root;
pub mod translate;
pub mod validate;
