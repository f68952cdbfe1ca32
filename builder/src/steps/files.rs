//! The recipe's `files`, `directories` and `links`: one layer.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::StepOutput;
use crate::recipe::{FileContent, Recipe};
use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{recipe}: {field}: cannot read {host}: {source}")]
    Read {
        recipe: String,
        field: String,
        host: String,
        source: std::io::Error,
    },
    #[error("{recipe}: {field}: {host} is neither a file, a directory nor a symlink")]
    Unsupported {
        recipe: String,
        field: String,
        host: String,
    },
}

/// Returns None when the recipe adds nothing (no empty layer is made).
pub fn files_step(recipe: &Recipe) -> Result<Option<StepOutput>, FilesError> {
    if recipe.files.is_empty() && recipe.directories.is_empty() && recipe.links.is_empty() {
        return Ok(None);
    }
    let mut changes = LayerChanges::default();
    let mut digest = Sha256::new();

    for d in &recipe.directories {
        let meta = Meta {
            uid: d.uid,
            gid: d.gid,
            ..Meta::new(d.mode)
        };
        digest.update(format!("dir {} {:o} {} {}\n", d.path, d.mode, d.uid, d.gid));
        changes.put(
            &d.path,
            Entry {
                kind: Kind::Dir,
                meta,
            },
        );
    }
    for (i, f) in recipe.files.iter().enumerate() {
        let field = format!("files[{i}]");
        match &f.content {
            FileContent::Inline(text) => {
                let meta = Meta {
                    uid: f.uid,
                    gid: f.gid,
                    ..Meta::new(f.mode.unwrap_or(0o644))
                };
                digest.update(format!(
                    "file {} {:o} {} {} ",
                    f.path, meta.mode, f.uid, f.gid
                ));
                digest.update(Sha256::digest(text.as_bytes()));
                changes.put(
                    &f.path,
                    Entry {
                        kind: Kind::File(Arc::new(text.clone().into_bytes())),
                        meta,
                    },
                );
            }
            FileContent::Host(host) => {
                let ctx = HostCopy {
                    recipe: &recipe.label,
                    field: &field,
                    uid: f.uid,
                    gid: f.gid,
                    mode: f.mode,
                };
                ctx.copy(host, &f.path, &mut changes, &mut digest)?;
            }
        }
    }
    for l in &recipe.links {
        digest.update(format!("link {} {}\n", l.path, l.target));
        changes.put(
            &l.path,
            Entry {
                kind: Kind::Symlink(l.target.clone()),
                meta: Meta::new(0o777),
            },
        );
    }

    Ok(Some(StepOutput {
        name: "files",
        description: format!(
            "harmony files: {} files, {} directories, {} links",
            recipe.files.len(),
            recipe.directories.len(),
            recipe.links.len()
        ),
        inputs_digest: hex::encode(digest.finalize()),
        changes,
    }))
}

/// Copies a host file or directory tree. Modes come from the host unless the recipe sets
/// one (for a tree, the recipe's mode applies to its regular files only); ownership is
/// the recipe's, never the build user's.
struct HostCopy<'a> {
    recipe: &'a str,
    field: &'a str,
    uid: u32,
    gid: u32,
    mode: Option<u32>,
}

impl HostCopy<'_> {
    fn copy(
        &self,
        host: &Path,
        path: &str,
        changes: &mut LayerChanges,
        digest: &mut Sha256,
    ) -> Result<(), FilesError> {
        use std::os::unix::fs::PermissionsExt;
        let read_err = |source| FilesError::Read {
            recipe: self.recipe.to_string(),
            field: self.field.to_string(),
            host: host.display().to_string(),
            source,
        };
        let md = std::fs::symlink_metadata(host).map_err(read_err)?;
        let host_mode = md.permissions().mode() & 0o7777;
        let meta = |mode: u32| Meta {
            uid: self.uid,
            gid: self.gid,
            ..Meta::new(mode)
        };
        if md.is_file() {
            let bytes = std::fs::read(host).map_err(read_err)?;
            let mode = self.mode.unwrap_or(host_mode);
            digest.update(format!("file {path} {mode:o} {} {} ", self.uid, self.gid));
            digest.update(Sha256::digest(&bytes));
            changes.put(
                path,
                Entry {
                    kind: Kind::File(Arc::new(bytes)),
                    meta: meta(mode),
                },
            );
        } else if md.is_symlink() {
            let target = std::fs::read_link(host)
                .map_err(read_err)?
                .to_string_lossy()
                .into_owned();
            digest.update(format!("link {path} {target}\n"));
            changes.put(
                path,
                Entry {
                    kind: Kind::Symlink(target),
                    meta: meta(0o777),
                },
            );
        } else if md.is_dir() {
            digest.update(format!(
                "dir {path} {host_mode:o} {} {}\n",
                self.uid, self.gid
            ));
            changes.put(
                path,
                Entry {
                    kind: Kind::Dir,
                    meta: meta(host_mode),
                },
            );
            let mut names: Vec<_> = std::fs::read_dir(host)
                .map_err(read_err)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(read_err)?;
            names.sort();
            for name in names {
                let child = format!("{path}/{}", name.to_string_lossy());
                self.copy(&host.join(&name), &child, changes, digest)?;
            }
        } else {
            return Err(FilesError::Unsupported {
                recipe: self.recipe.to_string(),
                field: self.field.to_string(),
                host: host.display().to_string(),
            });
        }
        Ok(())
    }
}
