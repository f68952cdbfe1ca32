//! `/usr/lib/harmony/image.json`: which image a node runs. `harmony build` writes it into
//! the root the node boots (not into the OCI layers, whose digest it names);
//! harmony-agent reads it for its first-boot report. One type for both sides.

use serde::{Deserialize, Serialize};

/// Where the file is in the image.
pub const IMAGE_IDENTITY_PATH: &str = "/usr/lib/harmony/image.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageIdentity {
    /// The recipe's `name` and `version`.
    pub name: String,
    pub version: String,
    /// The digest of the image's OCI manifest (`sha256:…`, what a registry shows after
    /// `harmony push`); null when the build wrote no `oci` output.
    pub manifest_digest: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_null_digest() {
        let id = ImageIdentity {
            name: "n".into(),
            version: "1".into(),
            manifest_digest: None,
        };
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(text, r#"{"name":"n","version":"1","manifest_digest":null}"#);
        assert_eq!(serde_json::from_str::<ImageIdentity>(&text).unwrap(), id);
    }
}
