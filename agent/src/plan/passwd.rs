//! passwd.groups and passwd.users, planned before any storage node (as Ignition's files
//! stage runs them first, so files can be owned by users the config creates): the account
//! files are edited in memory ([`crate::accounts::edit`]) and each changed one becomes one
//! atomic file write keeping its mode and owner; home directories (skeleton copied),
//! moves and removals and `~/.ssh/authorized_keys.d/ignition` become ordinary actions.

use std::os::unix::fs::MetadataExt;

use ignition::{NodeConfig, UserEntry};

use crate::accounts::db::{AccountDb, Table};
use crate::accounts::defaults::UseraddDefaults;
use crate::accounts::edit::{Editor, HomeWork};
use crate::accounts::Accounts;
use crate::plan::action::{Action, ExistingKind};
use crate::target_root::NodeKind;

use super::{PlanError, Planner, State};

/// Returns one line per account change, in the order made.
pub(crate) fn plan_passwd(p: &mut Planner, cfg: &NodeConfig) -> Result<Vec<String>, PlanError> {
    if cfg.users.is_empty() && cfg.groups.is_empty() {
        return Ok(Vec::new());
    }
    let mut db = AccountDb::load(p.root).map_err(PlanError::Accounts)?;
    let original = db.clone();
    let defs = UseraddDefaults::load(p.root).map_err(PlanError::Accounts)?;
    let mut changes = Vec::new();
    let mut homes = Vec::new();
    {
        let mut ed = Editor {
            db: &mut db,
            defs: &defs,
            today: today(),
        };
        for (i, g) in cfg.groups.iter().enumerate() {
            let c = ed.group(g).map_err(|problem| PlanError::Account {
                path: format!("passwd.groups[{i}]"),
                name: g.name.clone(),
                problem,
            })?;
            changes.extend(c);
        }
        for (i, u) in cfg.users.iter().enumerate() {
            let (c, h) = ed.user(u).map_err(|problem| PlanError::Account {
                path: format!("passwd.users[{i}]"),
                name: u.name.clone(),
                problem,
            })?;
            changes.extend(c);
            homes.extend(h);
        }
    }
    for (new, old) in db.tables().into_iter().zip(original.tables()) {
        if new.render() != old.render() {
            write_table(p, new)?;
        }
    }
    p.accounts = Accounts::from_db(&db);
    for h in homes {
        home_work(p, h)?;
    }
    for u in cfg
        .users
        .iter()
        .filter(|u| u.should_exist && !u.ssh_authorized_keys.is_empty())
    {
        ssh_keys(p, &db, u)?;
    }
    Ok(changes)
}

/// shadow's "last changed" day: SOURCE_DATE_EPOCH when set (as shadow 4.13 honours it),
/// else now. Day 0 is written as empty, as shadow does.
fn today() -> Option<i64> {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    Some(secs / 86400).filter(|d| *d > 0)
}

/// An existing table keeps its mode and owner; a new one gets the planner's default
/// (for shadow and gshadow, the distribution's: see `Planner::file`).
fn write_table(p: &mut Planner, t: &Table) -> Result<(), PlanError> {
    let (mode, uid, gid) = match p.root.node(t.path).map_err(|e| Planner::io(t.path, e))? {
        Some(NodeKind::File { mode, uid, gid, .. }) => (Some(mode), uid, gid),
        _ => (None, 0, 0),
    };
    p.file(t.path, true, &Some(t.render()), &[], mode, uid, gid)
}

fn home_work(p: &mut Planner, h: HomeWork) -> Result<(), PlanError> {
    match h {
        HomeWork::Create {
            path,
            uid,
            gid,
            mode,
            skel,
        } => {
            // useradd leaves an existing home alone and copies no skeleton into it.
            if p.current(&path)?.is_none() {
                p.directory(&path, false, mode, uid, gid)?;
                copy_tree(p, &skel, &path, Some((uid, gid)))?;
            }
        }
        HomeWork::Move { from, to } => {
            if let Some((ExistingKind::Directory, _)) = p.current(&from)? {
                if p.current(&to)?.is_some() {
                    return Err(super::conflict(
                        &to,
                        format!("cannot move the home directory {from} here: it exists"),
                    ));
                }
                let (mode, uid, gid) = dir_attrs(p, &from)?;
                p.directory(&to, false, mode, uid, gid)?;
                copy_tree(p, &from, &to, None)?;
                p.actions.push(Action::Remove {
                    path: from.clone(),
                    existing: ExistingKind::Directory,
                });
                p.planned.insert(from, State::Gone);
            }
        }
        HomeWork::Remove { paths } => {
            for path in paths {
                if let Some((kind, _)) = p.current(&path)? {
                    p.actions.push(Action::Remove {
                        path: path.clone(),
                        existing: kind,
                    });
                    p.planned.insert(path, State::Gone);
                }
            }
        }
    }
    Ok(())
}

fn dir_attrs(p: &Planner, path: &str) -> Result<(u32, u32, u32), PlanError> {
    let host = p.root.host_path(path).map_err(|e| Planner::io(path, e))?;
    let m = std::fs::symlink_metadata(&host).map_err(|e| Planner::io(path, e))?;
    Ok((m.mode() & 0o7777, m.uid(), m.gid()))
}

/// Copy a tree of the root (files, directories, symlinks) to `to`, owned by `owner` or
/// keeping each entry's owner.
fn copy_tree(
    p: &mut Planner,
    from: &str,
    to: &str,
    owner: Option<(u32, u32)>,
) -> Result<(), PlanError> {
    for name in p.list(from)? {
        let src = format!("{from}/{name}");
        let dst = format!("{to}/{name}");
        match p.root.node(&src).map_err(|e| Planner::io(&src, e))? {
            Some(NodeKind::File { mode, uid, gid, .. }) => {
                let (u, g) = owner.unwrap_or((uid, gid));
                let bytes = p.root.read(&src).map_err(|e| Planner::io(&src, e))?;
                p.file(&dst, false, &bytes, &[], Some(mode), u, g)?;
            }
            Some(NodeKind::Directory) => {
                let (mode, uid, gid) = dir_attrs(p, &src)?;
                let (u, g) = owner.unwrap_or((uid, gid));
                p.directory(&dst, false, mode, u, g)?;
                copy_tree(p, &src, &dst, owner)?;
            }
            Some(NodeKind::Symlink { target }) => {
                let (uid, gid) = match owner {
                    Some(o) => o,
                    None => dir_attrs(p, &src).map(|(_, u, g)| (u, g))?,
                };
                p.symlink(&dst, &target, false, uid, gid)?;
            }
            Some(NodeKind::Other) | None => {}
        }
    }
    Ok(())
}

/// Ignition writes the keys, newline-terminated, to `~/.ssh/authorized_keys.d/ignition`
/// (0600), creating missing directories 0700 as the user.
fn ssh_keys(p: &mut Planner, db: &AccountDb, u: &UserEntry) -> Result<(), PlanError> {
    let rec = db.passwd.get(&u.name).cloned().unwrap_or_default();
    let id = |i: usize| rec.get(i).and_then(|f| f.parse::<u32>().ok()).unwrap_or(0);
    let (uid, gid) = (id(2), id(3));
    let home = rec
        .get(5)
        .map(|h| h.trim_end_matches('/').to_string())
        .unwrap_or_default();
    let ssh = format!("{home}/.ssh");
    let dir = format!("{ssh}/authorized_keys.d");
    for d in [&home, &ssh, &dir] {
        if !d.is_empty() && p.current(d)?.is_none() {
            p.directory(d, false, 0o700, uid, gid)?;
        }
    }
    let mut keys = u.ssh_authorized_keys.join("\n");
    if !keys.ends_with('\n') {
        keys.push('\n');
    }
    p.file(
        &format!("{dir}/ignition"),
        true,
        &Some(keys.into_bytes()),
        &[],
        Some(0o600),
        uid,
        gid,
    )
}
