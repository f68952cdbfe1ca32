//! What can go wrong reading or writing images; every variant names the input at fault.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("image reference {input:?}: {problem}")]
    BadReference { input: String, problem: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: invalid JSON or OCI document: {problem}")]
    Document { what: String, problem: String },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{reference}: {problem}")]
    NotFound { reference: String, problem: String },
    #[error("{what}: unsupported media type {media_type}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("registry {url}: {problem}")]
    Registry { url: String, problem: String },
    /// An auth file or credential helper at fault; never quotes a secret.
    #[error("{what}: {problem}")]
    Auth { what: String, problem: String },
    /// The registry wants credentials we do not have, or refused the ones we gave.
    #[error("registry {registry}: {problem}")]
    Unauthorized { registry: String, problem: String },
}

impl OciError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> OciError {
        let path = path.into();
        move |source| OciError::Io { path, source }
    }

    pub(crate) fn document(
        what: impl Into<String>,
    ) -> impl FnOnce(oci_spec::OciSpecError) -> OciError {
        let what = what.into();
        move |e| OciError::Document {
            what,
            problem: e.to_string(),
        }
    }
}
