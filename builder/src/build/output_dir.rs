//! The output directory appears whole or not at all: a build writes into a sibling
//! temporary directory and renames it into place only when everything succeeded.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::manifest::{Manifest, MANIFEST_FILE};

pub struct StagedOutput {
    final_dir: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl StagedOutput {
    /// Refuses to replace an existing, non-empty directory that is not a Harmony build:
    /// `--out ~` must never delete a home directory, nor `--out` a project that happens
    /// to hold a file named manifest.json. A previous build is recognised by its
    /// manifest's content (it parses as a Harmony [`Manifest`]).
    pub fn new(final_dir: &Path) -> anyhow::Result<Self> {
        Self::with_marker(final_dir, MANIFEST_FILE, |bytes| {
            serde_json::from_slice::<Manifest>(bytes).is_ok()
        })
    }

    /// The same for an output whose own file `marker` says it is one (a rendered
    /// inventory's `inventory.json`), when `is_ours` recognises that file's content.
    pub fn with_marker(
        final_dir: &Path,
        marker: &str,
        is_ours: impl Fn(&[u8]) -> bool,
    ) -> anyhow::Result<Self> {
        if final_dir.exists() {
            let is_output = std::fs::read(final_dir.join(marker)).is_ok_and(|b| is_ours(&b));
            let is_empty = std::fs::read_dir(final_dir)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !is_output && !is_empty {
                bail!(
                    "{} exists and is not a Harmony output (no {marker}); refusing to replace it",
                    final_dir.display()
                );
            }
        }
        let parent = final_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        let name = final_dir
            .file_name()
            .context("the output path has no name")?
            .to_string_lossy();
        let staging = parent.join(format!(".{name}.tmp-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("removing stale {}", staging.display()))?;
        }
        std::fs::create_dir(&staging).with_context(|| format!("creating {}", staging.display()))?;
        Ok(StagedOutput {
            final_dir: final_dir.to_path_buf(),
            staging,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// Swap the staged directory in; the previous output is removed only afterwards.
    pub fn commit(mut self) -> anyhow::Result<PathBuf> {
        let old = self.staging.with_file_name(format!(
            ".{}.old-{}",
            self.final_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
            std::process::id()
        ));
        let had_old = self.final_dir.exists();
        if had_old {
            std::fs::rename(&self.final_dir, &old)
                .with_context(|| format!("moving aside {}", self.final_dir.display()))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &self.final_dir) {
            if had_old {
                let _ = std::fs::rename(&old, &self.final_dir);
            }
            return Err(e).with_context(|| format!("renaming into {}", self.final_dir.display()));
        }
        self.committed = true;
        if had_old {
            std::fs::remove_dir_all(&old)
                .with_context(|| format!("removing the previous output {}", old.display()))?;
        }
        Ok(self.final_dir.clone())
    }
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Harmony manifest, told apart by its name.
    fn m(name: &str) -> String {
        serde_json::to_string(&Manifest {
            name: name.to_string(),
            version: "1".to_string(),
            cmdline: String::new(),
            artifacts: Vec::new(),
            inputs: serde_json::Value::Null,
        })
        .unwrap()
    }

    #[test]
    fn failed_build_leaves_the_previous_output_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(MANIFEST_FILE), m("old")).unwrap();
        {
            let staged = StagedOutput::new(&out).unwrap();
            std::fs::write(staged.path().join(MANIFEST_FILE), m("new")).unwrap();
            // dropped without commit: a failed build
        }
        assert_eq!(
            std::fs::read_to_string(out.join(MANIFEST_FILE)).unwrap(),
            m("old")
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no staging left behind"
        );
    }

    #[test]
    fn commit_replaces_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let staged = StagedOutput::new(&out).unwrap();
        std::fs::write(staged.path().join(MANIFEST_FILE), m("new")).unwrap();
        staged.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(MANIFEST_FILE)).unwrap(),
            m("new")
        );
        let again = StagedOutput::new(&out).unwrap();
        std::fs::write(again.path().join(MANIFEST_FILE), m("newer")).unwrap();
        again.commit().unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join(MANIFEST_FILE)).unwrap(),
            m("newer")
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A project of the user's whose manifest.json is not a Harmony build's.
    #[test]
    fn refuses_a_directory_whose_manifest_json_is_not_a_harmony_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("webapp");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join(MANIFEST_FILE), r#"{"name":"app","icons":[]}"#).unwrap();
        std::fs::write(out.join("index.html"), "precious").unwrap();
        let err = StagedOutput::new(&out).err().unwrap().to_string();
        assert!(err.contains("not a Harmony output"), "{err}");
        assert_eq!(
            std::fs::read_to_string(out.join("index.html")).unwrap(),
            "precious"
        );
    }

    #[test]
    fn refuses_to_replace_a_foreign_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious"), "x").unwrap();
        let err = StagedOutput::new(dir.path()).err().unwrap().to_string();
        assert!(err.contains("not a Harmony output"), "{err}");
    }
}
