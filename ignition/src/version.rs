//! Spec versions Harmony reads, and the fields that appeared in later ones.

use crate::error::Problem;

/// A supported Ignition spec version. Ordered, so `declared >= SpecVersion::V3_2` reads
/// as "has the 3.2 fields".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpecVersion {
    V3_0,
    V3_1,
    V3_2,
    V3_3,
    V3_4,
}

impl SpecVersion {
    /// Exact match only: "3.4.0-experimental" and "3.5.0" are refused, like an Ignition
    /// release refuses versions it was not built for.
    pub fn parse(s: &str) -> Result<SpecVersion, Problem> {
        Ok(match s {
            "3.0.0" => SpecVersion::V3_0,
            "3.1.0" => SpecVersion::V3_1,
            "3.2.0" => SpecVersion::V3_2,
            "3.3.0" => SpecVersion::V3_3,
            "3.4.0" => SpecVersion::V3_4,
            other => return Err(Problem::UnsupportedVersion(other.to_string())),
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SpecVersion::V3_0 => "3.0.0",
            SpecVersion::V3_1 => "3.1.0",
            SpecVersion::V3_2 => "3.2.0",
            SpecVersion::V3_3 => "3.3.0",
            SpecVersion::V3_4 => "3.4.0",
        }
    }

    /// Refuse a field that appeared after the declared version.
    pub fn require(self, since: SpecVersion) -> Result<(), Problem> {
        if self >= since {
            Ok(())
        } else {
            Err(Problem::TooNew {
                since: since.as_str(),
                declared: self.as_str().to_string(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_versions_only() {
        assert_eq!(SpecVersion::parse("3.2.0"), Ok(SpecVersion::V3_2));
        for bad in ["3.4.0-experimental", "3.5.0", "2.3.0", "3.2", ""] {
            assert_eq!(
                SpecVersion::parse(bad),
                Err(Problem::UnsupportedVersion(bad.to_string()))
            );
        }
    }

    #[test]
    fn require_compares_order() {
        assert!(SpecVersion::V3_3.require(SpecVersion::V3_2).is_ok());
        let err = SpecVersion::V3_1.require(SpecVersion::V3_2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "this field needs spec version 3.2.0 or later, the config declares 3.1.0"
        );
    }
}
