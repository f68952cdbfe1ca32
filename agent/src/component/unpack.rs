//! Applying one OCI layer tar to a directory: `.wh.NAME` removes NAME from the layers
//! below, `.wh..wh..opq` empties its directory; everything else is unpacked by the tar
//! crate (which refuses paths that climb out of the root).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

pub fn apply_layer(reader: impl Read, root: &Path) -> anyhow::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(nix::unistd::geteuid().is_root());
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let rel = clean(&path)?;
        let Some(file_name) = rel.file_name().and_then(|n| n.to_str()) else {
            entry.unpack_in(root)?;
            continue;
        };
        let parent = root.join(rel.parent().unwrap_or(Path::new("")));
        if file_name == OPAQUE {
            if parent.is_dir() {
                for child in std::fs::read_dir(&parent)? {
                    remove(&child?.path())?;
                }
            }
        } else if let Some(hidden) = file_name.strip_prefix(WHITEOUT) {
            remove(&parent.join(hidden))?;
        } else {
            // A directory replacing a file (or the reverse) in a lower layer.
            let target = root.join(&rel);
            if let Ok(md) = target.symlink_metadata() {
                if md.is_dir() != entry.header().entry_type().is_dir() {
                    remove(&target)?;
                }
            }
            entry
                .unpack_in(root)
                .with_context(|| format!("unpacking {}", rel.display()))?;
        }
    }
    Ok(())
}

fn clean(path: &Path) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            _ => bail!("layer entry {} leaves the root", path.display()),
        }
    }
    Ok(out)
}

fn remove(path: &Path) -> anyhow::Result<()> {
    match path.symlink_metadata() {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path)?,
        Ok(_) => std::fs::remove_file(path)?,
        Err(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_remove_and_opaque_dirs_empty_what_lower_layers_had() {
        let root = tempfile::tempdir().unwrap();
        let lower = tar_of(&[
            ("etc/", None),
            ("etc/a", Some(b"a")),
            ("etc/b", Some(b"b")),
            ("var/", None),
            ("var/old", Some(b"o")),
        ]);
        apply_layer(&lower[..], root.path()).unwrap();
        let upper = tar_of(&[
            ("etc/.wh.a", Some(b"")),
            ("var/.wh..wh..opq", Some(b"")),
            ("var/new", Some(b"n")),
        ]);
        apply_layer(&upper[..], root.path()).unwrap();
        assert!(!root.path().join("etc/a").exists());
        assert_eq!(std::fs::read(root.path().join("etc/b")).unwrap(), b"b");
        assert!(!root.path().join("var/old").exists());
        assert_eq!(std::fs::read(root.path().join("var/new")).unwrap(), b"n");
        assert!(!root.path().join("etc/.wh.a").exists());
    }
}
