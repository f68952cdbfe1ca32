//! The error type of the cloud-config path: where in the document, and what is wrong.

use thiserror::Error;

/// `path` names the key the way a reader finds it (`write_files[2].encoding`), or the
/// user-data part (`part-002`); it is empty for the document as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{problem}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct CloudConfigError {
    pub path: String,
    pub problem: CloudProblem,
}

impl CloudConfigError {
    pub fn new(path: impl Into<String>, problem: CloudProblem) -> Self {
        CloudConfigError {
            path: path.into(),
            problem,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CloudProblem {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("expected {expected}, found {found}")]
    WrongType {
        expected: &'static str,
        found: &'static str,
    },
    #[error("is required")]
    Missing,
    #[error("unknown encoding {0:?} (known: b64, base64, gz, gzip, gz+base64, gzip+base64, gz+b64, gzip+b64, text/plain)")]
    UnknownEncoding(String),
    #[error("invalid base64: {0}")]
    Base64(String),
    #[error("invalid gzip data: {0}")]
    Gzip(String),
    #[error("decompressed size exceeds {0} bytes")]
    DecompressedTooLarge(u64),
    #[error("size exceeds {0} bytes")]
    TooLarge(u64),
    #[error("the config's file contents together exceed {0} bytes")]
    ConfigTooLarge(u64),
    #[error("the config's file contents together hold more than {0} bytes in memory (as given or fetched, gzip still compressed)")]
    ConfigHeldTooLarge(u64),
    #[error("invalid permissions {0:?}: expected an octal mode such as '0644'")]
    Permissions(String),
    #[error("invalid owner {0:?}: expected user or user:group")]
    Owner(String),
    #[error("path {0:?} is not absolute")]
    RelativePath(String),
    #[error("path {0:?} is the root directory itself, not a file in it")]
    RootPath(String),
    #[error("invalid name {0:?}: {1}")]
    InvalidName(String, &'static str),
    #[error("{0} is out of range for an id (0..=4294967295)")]
    IdOutOfRange(String),
    #[error("Jinja templates (text/jinja2, \"## template: jinja\") are not supported: render the template before handing it to the node")]
    Jinja,
    #[error("{0} user-data is not supported by harmony-agent")]
    UnsupportedUserData(&'static str),
    #[error("not supported by harmony-agent: {0}")]
    NotSupported(String),
    /// The node settings' own error, which names its `harmony.…` path itself.
    #[error("{0}")]
    Settings(String),
    #[error("invalid MIME user-data: {0}")]
    Mime(String),
}
