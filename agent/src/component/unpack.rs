//! Applying one OCI layer tar to a directory: `.wh.NAME` removes NAME from the layers
//! below, `.wh..wh..opq` empties its directory; everything else is written by us, entry
//! by entry. Every write and removal goes through [`InRoot`]: the layer's own symlinks
//! resolve inside the root (a layer with `x -> /` and then `x/.wh.etc` removes the
//! unpacked tree's /etc, never the host's), and the last component is never followed.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context};
use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid};

use super::in_root::{self, InRoot, InRootPath};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

pub fn apply_layer(reader: impl Read, root: &Path) -> anyhow::Result<()> {
    let tree = InRoot::open(root).with_context(|| format!("opening {}", root.display()))?;
    let as_root = nix::unistd::geteuid().is_root();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let shown = path.display().to_string();
        let rel = InRootPath::parse(&path)
            .with_context(|| format!("layer entry {shown} leaves the root"))?;
        // The root itself (`./`): its attributes stay the node's.
        let Some((parent, name)) = rel.split_last() else {
            continue;
        };
        if !in_root::is_plain_name(name) {
            bail!("layer entry {shown}: {name:?} is not a file name");
        }
        if name == OPAQUE {
            if let Some(dir) = tree.dir(&parent).with_context(|| shown.clone())? {
                in_root::empty_dir(&dir).with_context(|| format!("{shown}: emptying"))?;
            }
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if !in_root::is_plain_name(hidden) {
                bail!("layer entry {shown}: whiteout of {hidden:?}, which is not a file name");
            }
            if let Some(dir) = tree.dir(&parent).with_context(|| shown.clone())? {
                in_root::remove_at(&dir, hidden).with_context(|| format!("{shown}: removing"))?;
            }
        } else {
            let dir = tree
                .dir_creating(&parent)
                .with_context(|| format!("{shown}: its directory"))?;
            write_entry(&tree, &dir, name, &mut entry, as_root)
                .with_context(|| format!("unpacking {shown}"))?;
        }
    }
    Ok(())
}

/// One entry, as `name` in `dir`. Whatever was there (from a lower layer) is replaced,
/// except a directory by a directory, which keeps its contents.
fn write_entry<R: Read>(
    tree: &InRoot,
    dir: &OwnedFd,
    name: &str,
    entry: &mut tar::Entry<'_, R>,
    as_root: bool,
) -> anyhow::Result<()> {
    let h = entry.header();
    let kind = h.entry_type();
    let mode = Mode::from_raw_mode(h.mode()? & 0o7777);
    let owner = as_root
        .then(|| -> anyhow::Result<_> {
            Ok((
                Uid::from_raw(u32::try_from(h.uid()?)?),
                Gid::from_raw(u32::try_from(h.gid()?)?),
            ))
        })
        .transpose()?;
    let mtime = h.mtime()?;
    let existing = in_root::kind_at(dir, name)?;
    if existing.is_some() && !(kind.is_dir() && existing == Some(FileType::Directory)) {
        in_root::remove_at(dir, name)?;
    }
    match kind {
        tar::EntryType::Directory => {
            if existing != Some(FileType::Directory) {
                rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
            }
            let d = rustix::fs::openat(
                dir,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            set_attrs(&d, mode, owner, mtime)?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let f = rustix::fs::openat(
                dir,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut file = std::fs::File::from(f);
            io::copy(entry, &mut file)?;
            set_attrs(&file, mode, owner, mtime)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name()?
                .context("symlink without a target")?
                .into_owned();
            rustix::fs::symlinkat(&target, dir, name)?;
            if let Some((uid, gid)) = owner {
                rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
        tar::EntryType::Link => {
            let target = entry
                .link_name()?
                .context("hard link without a target")?
                .into_owned();
            let rel = InRootPath::parse(&target)
                .with_context(|| format!("hard link to {} leaves the root", target.display()))?;
            let (src_parent, src_name) = rel
                .split_last()
                .with_context(|| format!("hard link to {}", target.display()))?;
            let src_dir = tree
                .dir(&src_parent)?
                .with_context(|| format!("hard link to {}: no such file", target.display()))?;
            // linkat without AT_SYMLINK_FOLLOW links the name itself, never what it points to.
            rustix::fs::linkat(&src_dir, src_name, dir, name, AtFlags::empty())?;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let file_type = match kind {
                tar::EntryType::Char => FileType::CharacterDevice,
                tar::EntryType::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            let dev = rustix::fs::makedev(
                h.device_major()?.unwrap_or(0),
                h.device_minor()?.unwrap_or(0),
            );
            rustix::fs::mknodat(dir, name, file_type, mode, dev)?;
            if let Some((uid, gid)) = owner {
                rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
            }
        }
        // pax and GNU headers the tar crate has already folded into the entry.
        _ => {}
    }
    Ok(())
}

/// Owner first: chown clears setuid/setgid, so the mode comes after it.
fn set_attrs(fd: impl AsFd, mode: Mode, owner: Option<(Uid, Gid)>, mtime: u64) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rustix::fs::fchown(&fd, Some(uid), Some(gid))?;
    }
    rustix::fs::fchmod(&fd, mode)?;
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    rustix::fs::futimens(
        &fd,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

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

    fn symlink(path: &str, target: &str) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_path(path).unwrap();
        h.set_link_name(target).unwrap();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_cksum();
        h
    }

    fn hard_link(path: &str, target: &str) -> tar::Header {
        let mut h = symlink(path, target);
        h.set_entry_type(tar::EntryType::Link);
        h.set_cksum();
        h
    }

    /// Entries whose names `tar::Builder` itself refuses to write (`.wh..`).
    fn raw_file(path: &str) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(&[0; 1024]);
        out
    }

    /// A hostile image: a symlink to a directory outside the root (standing in for the
    /// host's /), then a whiteout, a file and a hard link through it. Everything must stay
    /// inside the root; the "host" directory is a scratch dir, never the real /etc.
    #[test]
    fn symlinks_the_layer_plants_never_lead_out_of_the_root() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        std::fs::create_dir_all(host.join("etc")).unwrap();
        std::fs::write(host.join("etc/passwd"), "host").unwrap();
        std::fs::write(host.join("secret"), "host secret").unwrap();
        let root = t.path().join("root");
        let host_abs = host.to_str().unwrap();
        // The same path inside the root: where the layer's absolute symlink really leads.
        let inside = root.join(host_abs.trim_start_matches('/'));
        std::fs::create_dir_all(inside.join("etc")).unwrap();

        let mut b = tar::Builder::new(Vec::new());
        b.append(&symlink("x", host_abs), &[][..]).unwrap();
        b.append(&symlink("up", "../host"), &[][..]).unwrap();
        let lower = b.into_inner().unwrap();
        apply_layer(&lower[..], &root).unwrap();

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h.clone(), "x/.wh.etc", &[][..]).unwrap();
        b.append_data(&mut h.clone(), "up/.wh.secret", &[][..])
            .unwrap();
        h.set_size(4);
        b.append_data(&mut h, "x/planted", &b"evil"[..]).unwrap();
        let upper = b.into_inner().unwrap();
        apply_layer(&upper[..], &root).unwrap();

        assert_eq!(std::fs::read(host.join("etc/passwd")).unwrap(), b"host");
        assert_eq!(std::fs::read(host.join("secret")).unwrap(), b"host secret");
        assert!(!host.join("planted").exists());
        assert!(!inside.join("etc").exists(), "the whiteout applies inside");
        assert_eq!(std::fs::read(inside.join("planted")).unwrap(), b"evil");

        let mut b = tar::Builder::new(Vec::new());
        b.append(&hard_link("stolen", &format!("{host_abs}/secret")), &[][..])
            .unwrap();
        b.append(&hard_link("stolen2", "x/../secret"), &[][..])
            .unwrap();
        let links = b.into_inner().unwrap();
        assert!(apply_layer(&links[..], &root).is_err());
        assert!(!root.join("stolen").exists());
        assert!(!root.join("stolen2").exists());
        assert_eq!(std::fs::metadata(host.join("secret")).unwrap().nlink(), 1);
    }

    #[test]
    fn whiteouts_of_empty_dot_and_dotdot_names_are_refused() {
        for name in ["etc/.wh.", "etc/.wh..", "etc/.wh..."] {
            let root = tempfile::tempdir().unwrap();
            let lower = tar_of(&[("etc/", None), ("etc/keep", Some(b"k"))]);
            apply_layer(&lower[..], root.path()).unwrap();
            let err = apply_layer(&raw_file(name)[..], root.path()).unwrap_err();
            assert!(
                format!("{err:#}").contains(&format!("layer entry {name}")),
                "{name}: {err:#}"
            );
            assert_eq!(
                std::fs::read(root.path().join("etc/keep")).unwrap(),
                b"k",
                "{name}"
            );
        }
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
