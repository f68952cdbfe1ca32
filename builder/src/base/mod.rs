//! Base images made from distribution packages, for offline builds.

pub mod deb;
pub mod debian;
pub mod install;
pub mod placement;
pub mod skeleton;

pub use debian::{make_debian_base, BaseMode, BaseSummary, DebianBaseOptions};
