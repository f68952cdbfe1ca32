//! A Kubernetes minor version, `1.NN`: what pkgs.k8s.io's repositories are split by.

use std::fmt;

/// pkgs.k8s.io has repositories from v1.24 on (the older Google-hosted ones are gone).
const OLDEST_MINOR: u32 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubernetesVersion {
    pub minor: u32,
}

impl KubernetesVersion {
    /// `1.31` (not `v1.31`, not `1.31.2`: packages follow patch releases within a minor).
    pub fn parse(text: &str) -> Result<Self, String> {
        let minor = text
            .strip_prefix("1.")
            .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()))
            .and_then(|m| m.parse::<u32>().ok())
            .ok_or_else(|| {
                format!("`{text}` is not a Kubernetes minor version such as \"1.31\"")
            })?;
        if minor < OLDEST_MINOR {
            return Err(format!(
                "`{text}`: pkgs.k8s.io has repositories from 1.{OLDEST_MINOR} on"
            ));
        }
        Ok(KubernetesVersion { minor })
    }
}

impl fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}
