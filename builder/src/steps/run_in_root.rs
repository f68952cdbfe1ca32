//! Run a command inside the image's root, rootless: the tree is written to a scratch
//! directory, the command runs there chrooted in a new user + mount namespace, and what
//! it changed is read back as a tree (the step's layer is the difference).
//!
//! Ownership: run as root, the namespace maps ids 0-65535 onto an unused host range
//! (`HOST_ID_BASE`…), so the command can chown to any user and we read owners back
//! exactly. Run unprivileged, only the caller's id is mapped (to 0): every file looks
//! root-owned inside, chown to another user fails (`Invalid argument`), entries that
//! were in the tree keep the owners it gave them (changed or not), new ones are root's.
//! Tested as `nobody` by `steps::rootless_tests`.
//!
//! Not carried into the scratch root: device nodes, fifos and sockets (they cannot be
//! made without privilege; they are kept from the tree below), xattrs. Read back: file
//! capabilities the command sets (`setcap`, a package's postinst), in the form the image
//! needs ([`super::file_caps`]); an unchanged file keeps the xattrs the tree gave it, a
//! changed one has only what the command set (removing a capability is not seen).
//! The host's /dev and /sys are bind-mounted over the root's own for the command; /proc
//! is a fresh one of its PID namespace.
//!
//! The command runs as PID 1 of a PID namespace of its own (util-linux `unshare --pid
//! --fork`): when it exits, the kernel kills whatever it left behind, before we read the
//! result back. Nothing can then swap a file for a symlink under our feet; the read-back
//! goes through descriptors opened with O_NOFOLLOW all the same.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::unistd::{getpid, setgid, setuid, Gid, Uid};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::file_caps::{self, CAPABILITY};
use crate::tree::{Entry, Kind, Meta, Tree};

/// Host ids 1,000,000 + N stand for image id N when we run as root (far above any
/// account or /etc/subuid range a build host hands out).
pub const HOST_ID_BASE: u32 = 1_000_000;
const ID_COUNT: u32 = 65_536;
/// Never materialised nor read back: the command sees the host's (/dev, /sys) or its
/// namespace's own (/proc).
const HOST_MOUNTS: &[&str] = &["dev", "proc", "sys"];
/// Bind-mounted from the host.
const HOST_BINDS: &[&str] = &["dev", "sys"];
/// util-linux's unshare (Debian: essential), which makes the PID namespace and forks the
/// command into it as PID 1.
const UNSHARE: &str = "/usr/bin/unshare";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` inside the image exited with {status}{hint}; its last output:\n{tail}")]
    Failed {
        command: String,
        status: String,
        /// Why a command may fail here that works elsewhere (the id mapping), or "".
        hint: &'static str,
        tail: String,
    },
    #[error("`{command}`: the image has no {program} (looked at {path})")]
    NoProgram {
        command: String,
        program: String,
        path: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdMapping {
    /// Image ids 0..65536 ↔ host `HOST_ID_BASE + id` (needs root on the host).
    Range,
    /// Image id 0 ↔ the caller; nothing else is mapped.
    CallerOnly,
}

/// What an unprivileged run cannot do, said where a command fails.
const CALLER_ONLY_HINT: &str = " (run unprivileged: only the caller's id is mapped, to root, \
     so chown to any other user or group fails with `Invalid argument`; as root, ids 0-65535 are mapped)";

impl IdMapping {
    /// The host uid the namespace's root is.
    fn namespace_root_on_host(self) -> u32 {
        match self {
            IdMapping::Range => HOST_ID_BASE,
            IdMapping::CallerOnly => Uid::current().as_raw(),
        }
    }

    pub fn for_caller() -> IdMapping {
        if Uid::effective().is_root() {
            IdMapping::Range
        } else {
            IdMapping::CallerOnly
        }
    }
}

/// What one run printed (stdout and stderr together) and the tree it left.
pub struct RunOutcome {
    pub tree: Tree,
    pub output: String,
}

/// Run `argv` (argv[0] an absolute path in the image) chrooted in a copy of `tree`.
pub fn run_in_root(
    tree: &Tree,
    argv: &[String],
    env: &[(&str, &str)],
    mapping: IdMapping,
) -> Result<RunOutcome, RunError> {
    let command = argv.join(" ");
    let program = argv.first().cloned().unwrap_or_default();
    if tree.get_resolved(&program).is_none() {
        return Err(RunError::NoProgram {
            command,
            program: program.clone(),
            path: program,
        });
    }
    let scratch = Scratch(
        tempfile::Builder::new()
            .prefix("harmony-run-")
            .tempdir()
            .map_err(io("making a scratch root"))?,
    );
    let root = scratch.0.path().join("root");
    materialise(tree, &root, mapping)?;
    let output = spawn_in_namespace(&root, argv, env, mapping)?;
    if !output.0.success() {
        return Err(RunError::Failed {
            command,
            status: output.0.to_string(),
            hint: match mapping {
                IdMapping::CallerOnly => CALLER_ONLY_HINT,
                IdMapping::Range => "",
            },
            tail: tail(&output.1),
        });
    }
    let after = read_back(tree, &root, mapping)?;
    Ok(RunOutcome {
        tree: after,
        output: output.1,
    })
}

/// The scratch directory, removed however the command left it. Root removes anything;
/// an unprivileged caller owns every entry (the only id mapped) but cannot unlink inside
/// a directory without write permission (RHEL's /usr/lib is 0555), so directories get
/// u+rwx first.
struct Scratch(tempfile::TempDir);

impl Drop for Scratch {
    fn drop(&mut self) {
        if !Uid::effective().is_root() {
            make_removable(self.0.path());
        }
        // TempDir's own drop removes the tree.
    }
}

fn make_removable(dir: &Path) {
    let Ok(md) = std::fs::symlink_metadata(dir) else {
        return;
    };
    if !md.is_dir() {
        return;
    }
    if md.mode() & 0o700 != 0o700 {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(md.mode() | 0o700));
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for item in rd.flatten() {
            make_removable(&item.path());
        }
    }
}

/// Unprivileged, the command (root inside) may leave entries their owner — the caller —
/// cannot read from outside (/etc/shadow 0000 on RHEL): give the caller the `need` bits
/// before reading. The mode recorded is the one read before.
fn let_caller_read(
    dir: &OwnedFd,
    name: &str,
    host: &Path,
    mode: u32,
    need: u32,
    mapping: IdMapping,
) -> Result<(), RunError> {
    if mapping == IdMapping::CallerOnly && mode & need != need {
        rustix::fs::chmodat(
            dir,
            name,
            Mode::from_raw_mode((mode | need) & 0o7777),
            AtFlags::empty(),
        )
        .map_err(|e| io(format!("chmod u+r {}", host.display()))(e.into()))?;
    }
    Ok(())
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn host_id(id: u32, mapping: IdMapping) -> Option<u32> {
    match mapping {
        IdMapping::Range if id < ID_COUNT => Some(HOST_ID_BASE + id),
        IdMapping::Range => None,
        IdMapping::CallerOnly => None,
    }
}

/// Write the tree under `root` (which must not exist): directories, files, symlinks,
/// with modes and (Range) owners. Also how a scanner gets a real directory to look at.
pub fn materialise(tree: &Tree, root: &Path, mapping: IdMapping) -> Result<(), RunError> {
    std::fs::create_dir(root).map_err(io(format!("creating {}", root.display())))?;
    let mut dirs: Vec<(PathBuf, &Meta)> = Vec::new();
    for (path, entry) in tree.iter() {
        if HOST_MOUNTS
            .iter()
            .any(|m| path.starts_with(&format!("{m}/")))
        {
            continue;
        }
        let host = root.join(path);
        let what = || format!("writing {}", host.display());
        match &entry.kind {
            Kind::Dir => {
                if !path.is_empty() {
                    std::fs::create_dir(&host).map_err(io(what()))?;
                }
                dirs.push((host, &entry.meta));
                continue;
            }
            Kind::File(c) => std::fs::write(&host, c.as_slice()).map_err(io(what()))?,
            Kind::Symlink(t) => std::os::unix::fs::symlink(t, &host).map_err(io(what()))?,
            _ => continue,
        }
        own_and_chmod(
            &host,
            &entry.meta,
            matches!(entry.kind, Kind::Symlink(_)),
            mapping,
        )?;
    }
    // Directory modes last, deepest first: a 0555 directory must not block its children.
    for (host, meta) in dirs.into_iter().rev() {
        own_and_chmod(&host, meta, false, mapping)?;
    }
    Ok(())
}

fn own_and_chmod(
    host: &Path,
    meta: &Meta,
    is_link: bool,
    mapping: IdMapping,
) -> Result<(), RunError> {
    if let (Some(u), Some(g)) = (host_id(meta.uid, mapping), host_id(meta.gid, mapping)) {
        std::os::unix::fs::lchown(host, Some(u), Some(g))
            .map_err(io(format!("chown {}", host.display())))?;
    }
    if !is_link {
        // After chown, which clears setuid bits.
        std::fs::set_permissions(host, std::fs::Permissions::from_mode(meta.mode))
            .map_err(io(format!("chmod {}", host.display())))?;
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| RunError::Io {
        what: "making a pipe".into(),
        source: e.into(),
    })
}

/// Fork; in the child, unshare user + mount namespaces and wait while a thread of ours
/// writes the id maps (only a process outside the namespace may map a range), then
/// become root inside, bind the host's /dev and /sys, and exec `unshare`, which makes the
/// PID namespace, mounts its /proc, chroots and runs the command as its PID 1. Returns
/// the exit status and stdout+stderr interleaved: the output ends when every process of
/// the namespace is gone.
fn spawn_in_namespace(
    root: &Path,
    argv: &[String],
    env: &[(&str, &str)],
    mapping: IdMapping,
) -> Result<(std::process::ExitStatus, String), RunError> {
    if !Path::new(UNSHARE).is_file() {
        return Err(RunError::Io {
            what: format!("starting `{}` in a PID namespace", argv.join(" ")),
            source: std::io::Error::other(format!("the host has no {UNSHARE} (util-linux)")),
        });
    }
    let (to_parent_r, to_parent_w) = pipe()?;
    let (to_child_r, to_child_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let binds: Vec<(CString, CString)> = HOST_BINDS
        .iter()
        .filter(|m| root.join(m).is_dir())
        .map(|m| {
            (
                CString::new(format!("/{m}")).expect("static"),
                CString::new(root.join(m).as_os_str().as_encoded_bytes()).expect("no NUL"),
            )
        })
        .collect();
    let caller = (Uid::effective().as_raw(), Gid::effective().as_raw());

    let mapper = std::thread::spawn(move || -> std::io::Result<()> {
        let mut pid = [0u8; 4];
        std::fs::File::from(to_parent_r).read_exact(&mut pid)?;
        let proc = PathBuf::from(format!("/proc/{}", u32::from_ne_bytes(pid)));
        match mapping {
            IdMapping::Range => {
                std::fs::write(
                    proc.join("uid_map"),
                    format!("0 {HOST_ID_BASE} {ID_COUNT}\n"),
                )?;
                std::fs::write(
                    proc.join("gid_map"),
                    format!("0 {HOST_ID_BASE} {ID_COUNT}\n"),
                )?;
            }
            IdMapping::CallerOnly => {
                std::fs::write(proc.join("setgroups"), "deny")?;
                std::fs::write(proc.join("uid_map"), format!("0 {} 1\n", caller.0))?;
                std::fs::write(proc.join("gid_map"), format!("0 {} 1\n", caller.1))?;
            }
        }
        nix::unistd::write(&to_child_w, b"g")?;
        Ok(())
    });

    let mut cmd = Command::new(UNSHARE);
    cmd.args(["--pid", "--fork", "--kill-child=SIGKILL", "--wd=/"])
        .arg(format!("--root={}", root.display()));
    if root.join("proc").is_dir() {
        cmd.arg("--mount-proc=/proc");
    }
    cmd.arg("--")
        .args(argv)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(out_w.try_clone().map_err(io("dup"))?))
        .stderr(Stdio::from(out_w));
    let in_child = move || -> std::io::Result<()> {
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)?;
        let pid = (getpid().as_raw() as u32).to_ne_bytes();
        nix::unistd::write(&to_parent_w, &pid)?;
        let mut go = [0u8; 1];
        if nix::unistd::read(to_child_r.as_raw_fd(), &mut go)? != 1 {
            return Err(std::io::Error::other("the id maps were not written"));
        }
        setgid(Gid::from_raw(0))?;
        setuid(Uid::from_raw(0))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )?;
        for (source, target) in &binds {
            mount(
                Some(source.as_c_str()),
                target.as_c_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
        }
        Ok(())
    };
    #[allow(unsafe_code)]
    // SAFETY: a raw syscall sequence between fork and exec is what a user namespace needs
    // and std offers no safe hook for: `in_child` only makes syscalls on memory prepared
    // before the fork (no allocation, no locks).
    unsafe {
        cmd.pre_exec(in_child);
    }
    let spawned = cmd.spawn();
    // Dropping the command closes our copies of the child's ends (the closure owns them)
    // and of the output pipe: the mapper sees EOF if the child died before reporting, and
    // our reader sees EOF when the command exits.
    drop(cmd);
    let mut child = spawned.map_err(io(format!(
        "starting `{}` in a user namespace",
        argv.join(" ")
    )))?;
    let mut output = Vec::new();
    std::fs::File::from(out_r)
        .read_to_end(&mut output)
        .map_err(io("reading the command's output"))?;
    let status = child.wait().map_err(io("waiting for the command"))?;
    mapper
        .join()
        .expect("the mapper thread does not panic")
        .map_err(io("writing the namespace's id maps"))?;
    Ok((status, String::from_utf8_lossy(&output).into_owned()))
}

/// Read the scratch root back into a tree. Unchanged entries keep their tree metadata
/// (mtime, xattrs, and — for CallerOnly — owners); changed ones get mtime 0 and the
/// owner the command gave them (Range), or (CallerOnly) the owner the tree gave them,
/// root for new entries.
fn read_back(before: &Tree, root: &Path, mapping: IdMapping) -> Result<Tree, RunError> {
    let mut after = Tree::new();
    if let Some(e) = before.get_exact("") {
        after.insert_exact("", e.clone());
    }
    let mut found: BTreeMap<String, Entry> = BTreeMap::new();
    let root_dir = rustix::fs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(format!("opening {}", root.display()))(e.into()))?;
    walk(&root_dir, "", root, mapping, &mut found)?;
    for (path, mut entry) in found {
        let set_by_command = entry.meta.xattrs.remove(CAPABILITY);
        if let Some(old) = before.get_exact(&path) {
            let same_kind = match (&old.kind, &entry.kind) {
                (Kind::Dir, Kind::Dir) => true,
                (a, b) => a == b,
            };
            let same_owner = mapping == IdMapping::CallerOnly
                || (old.meta.uid, old.meta.gid) == (entry.meta.uid, entry.meta.gid);
            if same_kind && same_owner && old.meta.mode == entry.meta.mode {
                entry = old.clone();
            } else if mapping == IdMapping::CallerOnly
                && std::mem::discriminant(&old.kind) == std::mem::discriminant(&entry.kind)
            {
                // A file rewritten in place or replaced by rename: the command could not
                // have given it another owner, so the tree's owner stands.
                entry.meta.uid = old.meta.uid;
                entry.meta.gid = old.meta.gid;
            }
        }
        if let Some(cap) = set_by_command {
            entry.meta.xattrs.insert(CAPABILITY.to_string(), cap);
        }
        after.insert_exact(&path, entry);
    }
    // What could not be materialised stays as the tree had it.
    for (path, entry) in before.iter() {
        let host_side = HOST_MOUNTS
            .iter()
            .any(|m| path.starts_with(&format!("{m}/")));
        let special = !matches!(entry.kind, Kind::Dir | Kind::File(_) | Kind::Symlink(_));
        if (host_side || special) && after.get_exact(path).is_none() {
            after.insert_exact(path, entry.clone());
        }
    }
    Ok(after)
}

/// Every entry under the directory `dir` (at `prefix` in the tree; `shown` on the host,
/// for messages), read through descriptors: stat without following, files and
/// directories opened with O_NOFOLLOW, so a symlink is only ever read as a symlink.
fn walk(
    dir: &OwnedFd,
    prefix: &str,
    shown: &Path,
    mapping: IdMapping,
    out: &mut BTreeMap<String, Entry>,
) -> Result<(), RunError> {
    let reading = || io(format!("reading {}", shown.display()));
    let mut names = Vec::new();
    for item in rustix::fs::Dir::read_from(dir).map_err(|e| reading()(e.into()))? {
        let item = item.map_err(|e| reading()(e.into()))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    for name in names {
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let host = shown.join(&name);
        let failed = |what: &str| {
            let what = format!("{what} {}", host.display());
            move |e: rustix::io::Errno| RunError::Io {
                what,
                source: e.into(),
            }
        };
        let st = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(failed("stat"))?;
        let image_id = |id: u32| match mapping {
            IdMapping::Range => id
                .checked_sub(HOST_ID_BASE)
                .filter(|i| *i < ID_COUNT)
                .unwrap_or(0),
            IdMapping::CallerOnly => 0,
        };
        let mut meta = Meta {
            uid: image_id(st.st_uid),
            gid: image_id(st.st_gid),
            ..Meta::new(st.st_mode)
        };
        let open = |flags: OFlags| {
            rustix::fs::openat(
                dir,
                name.as_str(),
                flags | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(failed("open"))
        };
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink(
                rustix::fs::readlinkat(dir, name.as_str(), Vec::new())
                    .map_err(failed("readlink"))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            FileType::RegularFile => {
                let_caller_read(dir, &name, &host, st.st_mode, 0o400, mapping)?;
                let mut f = std::fs::File::from(open(OFlags::NONBLOCK)?);
                if !f
                    .metadata()
                    .map_err(io(format!("stat {}", host.display())))?
                    .is_file()
                {
                    return Err(io(format!("reading {}", host.display()))(
                        std::io::Error::other("replaced while being read"),
                    ));
                }
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)
                    .map_err(io(format!("reading {}", host.display())))?;
                if let Some(cap) =
                    capability(&f).map_err(failed("reading security.capability of"))?
                {
                    let ns_root = mapping.namespace_root_on_host();
                    meta.xattrs
                        .insert(CAPABILITY.to_string(), file_caps::for_image(&cap, ns_root));
                }
                Kind::File(Arc::new(bytes))
            }
            _ => continue,
        };
        let is_dir = matches!(kind, Kind::Dir);
        out.insert(rel.clone(), Entry { kind, meta });
        if is_dir && !HOST_MOUNTS.contains(&rel.as_str()) {
            let_caller_read(dir, &name, &host, st.st_mode, 0o500, mapping)?;
            let child = open(OFlags::DIRECTORY)?;
            walk(&child, &rel, &host, mapping, out)?;
        }
    }
    Ok(())
}

/// The file's `security.capability`, read through its descriptor; `None` when it has none.
fn capability(file: &std::fs::File) -> Result<Option<Vec<u8>>, rustix::io::Errno> {
    // A revision-3 value is 24 bytes; anything longer is not a capability the kernel set.
    let mut value = [0u8; 64];
    match rustix::fs::fgetxattr(file, CAPABILITY, &mut value[..]) {
        Ok(len) => Ok(Some(value[..len].to_vec())),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A host binary and the shared objects `ldd` names for it, at the same paths.
    fn with_host_binary(t: &mut Tree, binary: &str) {
        let ldd = Command::new("ldd").arg(binary).output().expect("ldd");
        let libs: Vec<String> = String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
            .map(String::from)
            .collect();
        for path in libs.iter().map(String::as_str).chain([binary]) {
            let real = std::fs::canonicalize(path).unwrap();
            // The fixture's /bin, /sbin and /lib are links into /usr (merged /usr).
            let rel = path.trim_start_matches('/');
            let rel = match rel.split_once('/') {
                Some((top, rest)) if ["bin", "sbin", "lib"].contains(&top) => {
                    format!("usr/{top}/{rest}")
                }
                _ => rel.to_string(),
            };
            if let Some((dir, _)) = rel.rsplit_once('/') {
                t.mkdir_all(dir, &Meta::new(0o755)).unwrap();
            }
            t.insert(&rel, Entry::file(std::fs::read(real).unwrap(), 0o755))
                .unwrap();
        }
    }

    /// The host's setcap, run inside the namespace: the capability reaches the tree in the
    /// plain form the booted image's kernel honours, not the namespaced one the kernel
    /// stored on the scratch root (and an untouched file keeps the tree's capability).
    #[test]
    fn file_capabilities_a_command_sets_are_read_back_for_the_image() {
        let mut t = busybox_root();
        with_host_binary(&mut t, "/usr/sbin/setcap");
        t.insert(
            "usr/bin/pinger",
            Entry::file(b"#!/bin/sh\n".to_vec(), 0o755),
        )
        .unwrap();
        let mut kept = Entry::file(b"kept".to_vec(), 0o755);
        kept.meta
            .xattrs
            .insert(CAPABILITY.into(), b"from the tree".to_vec());
        t.insert("usr/bin/kept", kept).unwrap();
        let out = run_in_root(
            &t,
            &[
                "/usr/sbin/setcap".into(),
                "cap_net_raw+ep".into(),
                "/usr/bin/pinger".into(),
            ],
            &[],
            IdMapping::for_caller(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let caps = |p: &str| {
            out.tree
                .get_exact(p)
                .unwrap()
                .meta
                .xattrs
                .get(CAPABILITY)
                .cloned()
        };
        assert_eq!(
            caps("usr/bin/pinger"),
            Some(vec![
                1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
            ]),
            "cap_net_raw=ep, revision 2"
        );
        assert_eq!(caps("usr/bin/kept"), Some(b"from the tree".to_vec()));
    }

    /// A Debian-built fixture root: the host's static busybox (Debian's busybox-static)
    /// as /usr/bin/busybox with sh, the merged-/usr links, /etc, /dev, /tmp.
    pub(crate) fn busybox_root() -> Tree {
        let mut t = Tree::new();
        let d = Meta::new(0o755);
        for dir in [
            "usr/bin", "usr/sbin", "usr/lib", "etc", "var/lib", "root", "dev", "proc",
        ] {
            t.mkdir_all(dir, &d).unwrap();
        }
        t.insert(
            "tmp",
            Entry {
                kind: Kind::Dir,
                meta: Meta::new(0o1777),
            },
        )
        .unwrap();
        for top in ["bin", "sbin", "lib"] {
            t.insert(
                top,
                Entry {
                    kind: Kind::Symlink(format!("usr/{top}")),
                    meta: Meta::new(0o777),
                },
            )
            .unwrap();
        }
        let busybox = std::fs::read("/bin/busybox").expect("busybox-static on the host");
        t.insert(
            "usr/bin/busybox",
            Entry {
                kind: Kind::File(Arc::new(busybox)),
                meta: Meta {
                    mtime: 1234,
                    ..Meta::new(0o755)
                },
            },
        )
        .unwrap();
        t.insert(
            "usr/bin/sh",
            Entry {
                kind: Kind::Symlink("busybox".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        t.insert(
            "etc/passwd",
            Entry {
                kind: Kind::File(Arc::new(b"root:x:0:0::/root:/bin/sh\n".to_vec())),
                meta: Meta {
                    mtime: 99,
                    ..Meta::new(0o644)
                },
            },
        )
        .unwrap();
        t.insert(
            "etc/owned-by-7",
            Entry {
                kind: Kind::File(Arc::new(b"x".to_vec())),
                meta: Meta {
                    uid: 7,
                    gid: 8,
                    ..Meta::new(0o600)
                },
            },
        )
        .unwrap();
        t.insert(
            "dev/console",
            Entry {
                kind: Kind::CharDevice { major: 5, minor: 1 },
                meta: Meta::new(0o600),
            },
        )
        .unwrap();
        t
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn a_command_writes_files_and_owners_into_the_layer() {
        let before = busybox_root();
        let mapping = IdMapping::for_caller();
        // Unprivileged, chown to 1000 cannot work (steps::rootless_tests checks that).
        let chown = match mapping {
            IdMapping::Range => "busybox chown 1000:1001 /var/lib/app;",
            IdMapping::CallerOnly => "",
        };
        let script = format!(
            "set -e; echo \"uid=$(busybox id -u)\"; echo hi > /etc/hello; \
             busybox mkdir -p /var/lib/app; {chown} \
             busybox chmod 0750 /var/lib/app; busybox rm /etc/passwd; \
             busybox test -c /dev/null && echo host-dev"
        );
        let out =
            run_in_root(&before, &sh(&script), &[], mapping).unwrap_or_else(|e| panic!("{e}"));
        assert!(out.output.contains("uid=0\n"), "{}", out.output);
        assert!(out.output.contains("host-dev\n"), "{}", out.output);
        let changes = crate::tree::diff::diff(&before, &out.tree);
        let keys: Vec<&str> = changes.0.keys().map(String::as_str).collect();
        // Only what the command changed (the parent directories' mtimes are not changes).
        assert_eq!(keys, ["etc/hello", "etc/passwd", "var/lib/app"], "{keys:?}");
        let hello = out.tree.get("etc/hello").unwrap();
        assert_eq!(hello.kind, Kind::File(Arc::new(b"hi\n".to_vec())));
        assert_eq!((hello.meta.uid, hello.meta.gid), (0, 0));
        let app = &out.tree.get("var/lib/app").unwrap().meta;
        assert_eq!(app.mode, 0o750);
        if mapping == IdMapping::Range {
            assert_eq!((app.uid, app.gid), (1000, 1001));
        }
        // Untouched entries keep what the tree said, owners and mtimes included.
        assert_eq!(
            out.tree.get("usr/bin/busybox"),
            before.get("usr/bin/busybox")
        );
        assert_eq!(out.tree.get("etc/owned-by-7"), before.get("etc/owned-by-7"));
        assert_eq!(out.tree.get("dev/console"), before.get("dev/console"));
    }

    #[test]
    fn a_failing_command_is_an_error_with_its_output() {
        let err = run_in_root(
            &busybox_root(),
            &sh("echo about to fail; exit 3"),
            &[],
            IdMapping::for_caller(),
        )
        .err()
        .expect("fails");
        let msg = err.to_string();
        assert!(
            msg.contains("exited with exit status: 3") && msg.contains("about to fail"),
            "{msg}"
        );
    }

    #[test]
    fn a_program_the_image_lacks_is_named() {
        let err = run_in_root(
            &busybox_root(),
            &["/sbin/apk".to_string(), "add".into()],
            &[],
            IdMapping::for_caller(),
        )
        .err()
        .expect("fails");
        assert!(
            err.to_string().contains("the image has no /sbin/apk"),
            "{err}"
        );
    }

    /// A step that leaves a process behind: it waits for the command to be gone, then
    /// changes the root (it could as well swap a file for a symlink to a host file while
    /// the builder reads the result back). In its own PID namespace the command is PID 1,
    /// and its exit kills the straggler before it can act: the layer holds only what the
    /// command itself did.
    #[test]
    fn processes_a_step_leaves_behind_are_killed_before_read_back() {
        let script = "echo done > /etc/done; \
             ( while busybox kill -0 $$ 2>/dev/null; do busybox sleep 0.05; done; \
               echo late > /etc/late ) & \
             echo pid=$$";
        let out = run_in_root(&busybox_root(), &sh(script), &[], IdMapping::for_caller())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(out.output.contains("pid=1\n"), "{}", out.output);
        assert!(out.tree.get("etc/done").is_some());
        assert!(
            out.tree.get("etc/late").is_none(),
            "the straggler wrote into the layer"
        );
    }
}
