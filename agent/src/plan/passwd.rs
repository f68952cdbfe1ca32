//! passwd.groups and passwd.users, planned before any storage node (as Ignition's files
//! stage runs them first, so files can be owned by users the config creates): the account
//! files are edited in memory ([`crate::accounts::edit`]) and each changed one becomes one
//! atomic file write keeping its mode and owner; home directories (skeleton copied),
//! moves and removals and ssh keys become ordinary actions.
//!
//! Users from cloud-config are made as cloud-init makes them ([`AccountStyle::CloudInit`]):
//! groups named in `groups` that do not exist are created first (cloud-init's groupadd),
//! on a busybox image (no login.defs, no useradd) the user gets its own group as busybox
//! adduser gives it, and keys are added to `~/.ssh/authorized_keys`. Ignition's keys go
//! to `~/.ssh/authorized_keys.d/ignition`, and an image with sshd gets the drop-in that
//! makes sshd read that file ([`SSHD_KEYS_DROP_IN`]), as Fedora CoreOS ships one.

use std::os::unix::fs::MetadataExt;

use ignition::{AccountStyle, GroupEntry, NodeConfig, UserEntry};

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
    // busybox adduser (what cloud-init runs on Alpine and busybox images) always makes
    // the user's own group; shadow's useradd follows login.defs.
    let adduser_defs = UseraddDefaults {
        user_groups: true,
        ..defs.clone()
    };
    let busybox_adduser = is_busybox_adduser(p)?;
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
            let account_err = |problem| PlanError::Account {
                path: format!("passwd.users[{i}]"),
                name: u.name.clone(),
                problem,
            };
            let cloud_init = u.style == AccountStyle::CloudInit;
            if cloud_init && u.should_exist {
                for g in &u.groups {
                    let declared = cfg.groups.iter().any(|d| &d.name == g);
                    if !declared && ed.db.group.get(g).is_none() && g.parse::<u32>().is_err() {
                        let c = ed
                            .group(&GroupEntry {
                                name: g.clone(),
                                should_exist: true,
                                ..GroupEntry::default()
                            })
                            .map_err(account_err)?;
                        changes.extend(c);
                    }
                }
            }
            let (c, h) = if cloud_init && busybox_adduser {
                Editor {
                    db: &mut *ed.db,
                    defs: &adduser_defs,
                    today: ed.today,
                }
                .user(u)
            } else {
                ed.user(u)
            }
            .map_err(account_err)?;
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
    let mut ignition_keys = false;
    for u in cfg
        .users
        .iter()
        .filter(|u| u.should_exist && !u.ssh_authorized_keys.is_empty())
    {
        ignition_keys |= u.style == AccountStyle::Ignition;
        ssh_keys(p, &db, u)?;
    }
    if ignition_keys {
        sshd_reads_authorized_keys_d(p)?;
    }
    Ok(changes)
}

/// A root whose accounts are made by busybox adduser: busybox, and no shadow useradd.
fn is_busybox_adduser(p: &Planner) -> Result<bool, PlanError> {
    let has = |path: &str| -> Result<bool, PlanError> {
        Ok(p.root
            .node(path)
            .map_err(|e| Planner::io(path, e))?
            .is_some())
    };
    Ok((has("/bin/busybox")? || has("/usr/bin/busybox")?)
        && !has("/usr/sbin/useradd")?
        && !has("/sbin/useradd")?
        && !has("/etc/login.defs")?)
}

/// The sshd drop-in that makes Ignition's keys count. sshd keeps the first value it
/// reads; `40-` sorts after the hardening's `00-harmony-cis.conf`, which sets no
/// AuthorizedKeysFile, so the two never fight.
pub(crate) const SSHD_KEYS_DROP_IN: &str = "/etc/ssh/sshd_config.d/40-harmony-authorized-keys.conf";

fn sshd_reads_authorized_keys_d(p: &mut Planner) -> Result<(), PlanError> {
    let has_sshd = ["/usr/sbin/sshd", "/sbin/sshd", "/etc/ssh/sshd_config"]
        .iter()
        .map(|path| p.root.node(path).map_err(|e| Planner::io(path, e)))
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .any(Option::is_some);
    if !has_sshd {
        return Ok(());
    }
    let text = "# Written by harmony-agent: Ignition puts ssh keys in ~/.ssh/authorized_keys.d/ignition.\n\
                AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys.d/ignition\n";
    p.file(
        SSHD_KEYS_DROP_IN,
        true,
        &Some(text.as_bytes().into()),
        &[],
        Some(0o644),
        0,
        0,
    )
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
    p.file(t.path, true, &Some(t.render().into()), &[], mode, uid, gid)
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
                p.file(&dst, false, &bytes.map(Into::into), &[], Some(mode), u, g)?;
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
/// (0600), creating missing directories 0700 as the user. cloud-init adds each key not
/// there yet to `~/.ssh/authorized_keys` (0600), keeping the file's other lines.
fn ssh_keys(p: &mut Planner, db: &AccountDb, u: &UserEntry) -> Result<(), PlanError> {
    let rec = db.passwd.get(&u.name).cloned().unwrap_or_default();
    let id = |i: usize| rec.get(i).and_then(|f| f.parse::<u32>().ok()).unwrap_or(0);
    let (uid, gid) = (id(2), id(3));
    let home = rec
        .get(5)
        .map(|h| h.trim_end_matches('/').to_string())
        .unwrap_or_default();
    let ssh = format!("{home}/.ssh");
    if u.style == AccountStyle::CloudInit {
        for d in [&home, &ssh] {
            if !d.is_empty() && p.current(d)?.is_none() {
                p.directory(d, false, 0o700, uid, gid)?;
            }
        }
        let path = format!("{ssh}/authorized_keys");
        let mut text = p.read_text(&path)?.unwrap_or_default();
        for k in &u.ssh_authorized_keys {
            if !text.lines().any(|l| l.trim() == k.trim()) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(k.trim());
                text.push('\n');
            }
        }
        return p.file(&path, true, &Some(text.into()), &[], Some(0o600), uid, gid);
    }
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
        &Some(keys.into()),
        &[],
        Some(0o600),
        uid,
        gid,
    )
}

#[cfg(test)]
mod tests;
