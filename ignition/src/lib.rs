//! Harmony config model.
