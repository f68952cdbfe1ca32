//! An explicit file: for tests, rescue, and images that carry their config.

use std::path::{Path, PathBuf};

use super::{ConfigSource, FetchedConfig, SourceError};

pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: &Path) -> FileSource {
        FileSource {
            path: path.to_path_buf(),
        }
    }
}

impl ConfigSource for FileSource {
    /// The path was asked for explicitly, so a missing file is an error, not "no config".
    fn fetch(&self) -> Result<Option<FetchedConfig>, SourceError> {
        let bytes = std::fs::read(&self.path).map_err(|err| SourceError::Io {
            path: self.path.clone(),
            err,
        })?;
        Ok(Some(FetchedConfig {
            source: format!("file:{}", self.path.display()),
            bytes,
            meta_data: None,
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cfg.ign");
        let err = FileSource::new(&p).fetch().unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("reading {}", p.display())),
            "{err}"
        );
        std::fs::write(&p, b"x").unwrap();
        assert_eq!(FileSource::new(&p).fetch().unwrap().unwrap().bytes, b"x");
    }
}
