//! The one error type of the config model: where in the JSON, and what is wrong.

use thiserror::Error;

/// A config error. `path` is the JSON path of the offending value, written the way a
/// reader finds it in the document (`storage.files[3].contents.source`); it is empty
/// for the document itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}{problem}", if path.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ConfigError {
    pub path: String,
    pub problem: Problem,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, problem: Problem) -> Self {
        ConfigError {
            path: path.into(),
            problem,
        }
    }
}

/// What is wrong, independent of where.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    #[error("not valid JSON: {0}")]
    Syntax(String),
    #[error("{0}")]
    Shape(String),
    #[error("missing ignition.version")]
    MissingVersion,
    #[error("unsupported spec version {0:?} (supported: 3.0.0, 3.1.0, 3.2.0, 3.3.0, 3.4.0)")]
    UnsupportedVersion(String),
    #[error("this field needs spec version {since} or later, the config declares {declared}")]
    TooNew {
        since: &'static str,
        declared: String,
    },
    /// A Butane config that cannot be translated (variant, version, local files).
    #[error("Butane: {0}")]
    Butane(String),
    #[error("not supported by Harmony yet: {0}")]
    NotSupportedYet(String),
    #[error("path {0:?} is not absolute")]
    RelativePath(String),
    #[error("path {0:?} is not fully simplified (write {1:?})")]
    DirtyPath(String, String),
    #[error(
        "path \"/\" is the root directory itself; a file, directory or link needs a name under it"
    )]
    RootPath,
    #[error("duplicate path {path:?}, already used by {first}")]
    DuplicatePath { path: String, first: String },
    #[error("path {path:?} lies under {other}, which is not a directory")]
    UnderNonDirectory { path: String, other: String },
    #[error("mode {0} is out of range (0..=4095, octal 0..=0o7777)")]
    ModeOutOfRange(i64),
    #[error("{0} is out of range for an id (0..=4294967295)")]
    IdOutOfRange(i64),
    #[error("id and name are both set; give one")]
    IdAndName,
    #[error("overwrite is true but contents.source is not set")]
    OverwriteWithoutSource,
    #[error("unsupported scheme {0:?}")]
    UnsupportedScheme(String),
    #[error("invalid data URL: {0}")]
    DataUrl(String),
    #[error("unsupported compression {0:?} (only \"gzip\")")]
    UnsupportedCompression(String),
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
    #[error("malformed hash {0:?}: expected sha256-<64 hex> or sha512-<128 hex>")]
    MalformedHash(String),
    #[error("hash mismatch: expected {expected}, got {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("cannot fetch {url:?}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("link target is required")]
    LinkTargetRequired,
    #[error("hard link target {0:?} is not absolute")]
    HardLinkTargetRelative(String),
    #[error("unit name {0:?} does not end in a unit suffix (.service, .socket, .device, .mount, .automount, .swap, .target, .path, .timer, .snapshot, .slice, .scope)")]
    UnitSuffix(String),
    #[error("unit name {0:?} contains '/': it would be written outside /etc/systemd/system")]
    UnitNameWithSlash(String),
    #[error("drop-in name {0:?} does not end in .conf")]
    DropinSuffix(String),
    #[error("invalid unit file, line {line}: {reason}")]
    UnitSyntax { line: usize, reason: String },
    #[error("path {path:?} conflicts with systemd unit {unit:?}, which writes it")]
    ConflictsWithUnit { path: String, unit: String },
    #[error("duplicate name {0:?}")]
    DuplicateName(String),
    #[error("name is empty")]
    EmptyName,
    #[error("invalid name {0:?}: {1}")]
    InvalidName(String, &'static str),
    #[error("HTTP headers need an http or https source, not {0:?}")]
    HeadersNeedHttp(String),
    #[error("header value is empty (leave it out, or null, to drop a merged header)")]
    EmptyHeaderValue,
    #[error("header {0:?} has no value")]
    HeaderWithoutValue(String),
    #[error("proxy {0:?} is not an http:// or https:// URL")]
    InvalidProxy(String),
    #[error("not a usable CA certificate: {0}")]
    InvalidCertificate(String),
    #[error("source is required")]
    SourceRequired,
    #[error("duplicate source {0:?}")]
    DuplicateSource(String),
    /// An error inside a config fetched through `ignition.config`; its own path is
    /// relative to that config.
    #[error("{0}")]
    InReferencedConfig(Box<ConfigError>),
    #[error("{0:?} is already being merged further up (a reference cycle)")]
    ReferenceCycle(String),
    #[error("configs reference each other more than {0} levels deep")]
    ReferenceTooDeep(usize),
    #[error("more than {0} referenced configs in all")]
    TooManyReferences(usize),
    #[error("merging the referenced configs gives an invalid config: {0}")]
    MergedInvalid(Box<ConfigError>),
}
