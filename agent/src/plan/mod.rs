//! NodeConfig + the target root as it is → the ordered list of changes. Pure: it reads
//! the root, never writes it, and finds every conflict before anything is applied.
//!
//! Order: directories (shallowest first), files, symlinks, hard links (their targets may
//! be files of this config), then units. Parents that do not exist are planned as
//! directories 0755 root:root, as Ignition creates them.

mod action;
mod append_log;
pub mod commands;
mod node_file;
mod passwd;
mod units;

use std::collections::BTreeMap;

use ignition::{Contents, NodeConfig};

pub use action::{shown_sha256, Action, ExistingKind};
pub use node_file::NodeFile;

use crate::accounts::{AccountError, Accounts};
use crate::target_root::{NodeKind, TargetRoot};

/// The account files holding password hashes.
const SECRET_ACCOUNT_FILES: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/shadow-",
    "/etc/gshadow-",
];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnitState {
    pub name: String,
    pub enabled: Option<bool>,
    pub masked: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub units: Vec<UnitState>,
    /// One line per user or group change, e.g. `add user core uid 1000 gid 100 …`; the
    /// account files they edit are written by `actions`.
    pub accounts: Vec<String>,
    /// Run at first boot on the live root only (see [`commands`]).
    pub commands: Vec<commands::PlannedCommand>,
    /// The node role's changes to the running system, made at first boot after the
    /// actions (see [`crate::node_role`]).
    pub live: Vec<crate::node_role::LiveStep>,
    /// Joining the cluster, after everything else (when node settings are present).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join: Option<crate::join::JoinPlan>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: {problem}")]
    Conflict { path: String, problem: String },
    #[error("{path}: {err}")]
    Owner {
        path: String,
        #[source]
        err: AccountError,
    },
    #[error(transparent)]
    Accounts(AccountError),
    #[error("reading {path} in the target root: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("systemd.units {unit}: {problem}")]
    Unit { unit: String, problem: String },
    #[error("{path}: {0}", path = ignition::node_settings::NODE_YAML_PATH)]
    NodeSettings(#[from] ignition::node_settings::SettingsError),
    #[error("node role: {0}")]
    NodeRole(String),
    #[error("{path}: {name:?}: {problem}")]
    Account {
        path: String,
        name: String,
        problem: String,
    },
}

fn conflict(path: &str, problem: impl Into<String>) -> PlanError {
    PlanError::Conflict {
        path: path.to_string(),
        problem: problem.into(),
    }
}

/// What a path holds once the actions planned so far have run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Directory,
    File(Contents),
    Symlink(String),
    Gone,
}

pub fn plan(cfg: &NodeConfig, root: &TargetRoot) -> Result<Plan, PlanError> {
    plan_with_platform(cfg, root, &crate::node_role::PlatformLabels::default())
}

/// [`plan`], with node labels the platform gave (VMware guestinfo) for the node role.
pub fn plan_with_platform(
    cfg: &NodeConfig,
    root: &TargetRoot,
    platform_labels: &crate::node_role::PlatformLabels,
) -> Result<Plan, PlanError> {
    let mut p = Planner {
        root,
        accounts: Accounts::load(root).map_err(PlanError::Accounts)?,
        planned: BTreeMap::new(),
        actions: Vec::new(),
        appends: append_log::AppendLog::load(root),
    };
    let accounts = passwd::plan_passwd(&mut p, cfg)?;
    let mut dirs: Vec<_> = cfg.directories.iter().collect();
    dirs.sort_by_key(|d| d.path.matches('/').count());
    for d in dirs {
        let uid = p.uid(&d.path, &d.user)?;
        let gid = p.gid(&d.path, &d.group)?;
        p.directory(&d.path, d.overwrite, d.mode.unwrap_or(0o755), uid, gid)?;
    }
    for f in &cfg.files {
        let uid = p.uid(&f.path, &f.user)?;
        let gid = p.gid(&f.path, &f.group)?;
        p.file(
            &f.path,
            f.overwrite,
            &f.contents,
            &f.append,
            f.mode,
            uid,
            gid,
        )?;
    }
    for l in cfg.links.iter().filter(|l| !l.hard) {
        let uid = p.uid(&l.path, &l.user)?;
        let gid = p.gid(&l.path, &l.group)?;
        p.symlink(&l.path, &l.target, l.overwrite, uid, gid)?;
    }
    for l in cfg.links.iter().filter(|l| l.hard) {
        p.hard_link(&l.path, &l.target, l.overwrite)?;
    }
    // The node role's files come after the config's own: they win over a user file of
    // the same path, which the role owns.
    let mut live = Vec::new();
    let mut join = None;
    if let Some(settings) = ignition::node_settings::NodeSettings::from_node_config(cfg)? {
        join = Some(crate::join::JoinPlan::new(&settings, root).map_err(PlanError::NodeRole)?);
        let role = crate::node_role::plan(&settings, platform_labels, root)
            .map_err(PlanError::NodeRole)?;
        p.node_files(role.files)?;
        live = role.live;
        let (files, links) = crate::ha::plan_files(&settings, root, &|name| p.secret(name))?;
        p.node_files(files)?;
        for l in links {
            p.symlink(&l.path, &l.target, true, 0, 0)?;
        }
    }
    let units = units::plan_units(&mut p, &cfg.units)?;
    if let Some(log) = p.appends.to_write() {
        p.file(append_log::PATH, true, &Some(log), &[], Some(0o644), 0, 0)?;
    }
    Ok(Plan {
        actions: p.actions,
        units,
        accounts,
        commands: commands::plan_commands(&cfg.commands),
        live,
        join,
    })
}

pub(crate) struct Planner<'a> {
    root: &'a TargetRoot,
    accounts: Accounts,
    planned: BTreeMap<String, State>,
    actions: Vec<Action>,
    appends: append_log::AppendLog,
}

impl Planner<'_> {
    /// Files rendered from the node settings: root-owned, replacing what is there.
    fn node_files(&mut self, files: Vec<NodeFile>) -> Result<(), PlanError> {
        for f in files {
            self.file(
                &f.path,
                true,
                &Some(f.contents.into()),
                &[],
                Some(f.mode),
                0,
                0,
            )?;
        }
        Ok(())
    }

    fn uid(&self, path: &str, o: &Option<ignition::Owner>) -> Result<u32, PlanError> {
        self.accounts.uid(o).map_err(|err| PlanError::Owner {
            path: path.to_string(),
            err,
        })
    }

    fn gid(&self, path: &str, o: &Option<ignition::Owner>) -> Result<u32, PlanError> {
        self.accounts.gid(o).map_err(|err| PlanError::Owner {
            path: path.to_string(),
            err,
        })
    }

    fn io(path: &str, err: std::io::Error) -> PlanError {
        PlanError::Io {
            path: path.to_string(),
            err,
        }
    }

    /// The root's node at `path`, as changed by the actions planned so far.
    fn current(&self, path: &str) -> Result<Option<(ExistingKind, Option<NodeKind>)>, PlanError> {
        if let Some(s) = self.planned.get(path) {
            return Ok(match s {
                State::Directory => Some((ExistingKind::Directory, None)),
                State::File(_) => Some((ExistingKind::File, None)),
                State::Symlink(_) => Some((ExistingKind::Symlink, None)),
                State::Gone => None,
            });
        }
        let node = self.root.node(path).map_err(|e| Self::io(path, e))?;
        Ok(node.map(|n| {
            let kind = match &n {
                NodeKind::File { .. } => ExistingKind::File,
                NodeKind::Directory => ExistingKind::Directory,
                NodeKind::Symlink { .. } => ExistingKind::Symlink,
                NodeKind::Other => ExistingKind::Other,
            };
            (kind, Some(n))
        }))
    }

    /// Every ancestor must be a directory (or a link to one); missing ones are planned.
    fn parents(&mut self, path: &str) -> Result<(), PlanError> {
        for anc in ancestors(path) {
            match self.current(anc)? {
                None => {
                    self.actions.push(Action::CreateDir {
                        path: anc.to_string(),
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                    });
                    self.planned.insert(anc.to_string(), State::Directory);
                }
                Some((ExistingKind::Directory, _)) => {}
                Some((ExistingKind::Symlink, _)) if self.root.is_dir_followed(anc) => {}
                Some((kind, _)) => {
                    return Err(conflict(
                        path,
                        format!("its parent {anc} is a {kind:?}, not a directory").to_lowercase(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Clear the way for a new node of another kind, when overwriting is allowed.
    fn replace(
        &mut self,
        path: &str,
        existing: ExistingKind,
        overwrite: bool,
    ) -> Result<(), PlanError> {
        if !overwrite {
            return Err(conflict(
                path,
                format!("a {existing:?} exists here and overwrite is false").to_lowercase(),
            ));
        }
        self.actions.push(Action::Remove {
            path: path.to_string(),
            existing,
        });
        self.planned.insert(path.to_string(), State::Gone);
        Ok(())
    }

    fn directory(
        &mut self,
        path: &str,
        overwrite: bool,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), PlanError> {
        self.parents(path)?;
        match self.current(path)? {
            None | Some((ExistingKind::Directory, _)) => {}
            Some((kind, _)) => self.replace(path, kind, overwrite)?,
        }
        self.actions.push(Action::CreateDir {
            path: path.to_string(),
            mode,
            uid,
            gid,
        });
        self.planned.insert(path.to_string(), State::Directory);
        Ok(())
    }

    /// Ignition's rules: an existing file is replaced only with `overwrite`; without
    /// contents it is kept (and appended to); anything else in the way is an error unless
    /// `overwrite`. Contents are compared by length and sha256, never held twice.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn file(
        &mut self,
        path: &str,
        overwrite: bool,
        contents: &Option<Contents>,
        append: &[Contents],
        mode: Option<u32>,
        uid: u32,
        gid: u32,
    ) -> Result<(), PlanError> {
        self.parents(path)?;
        let io = |e| Self::io(path, e);
        let mut base = contents.clone();
        let mut existing_mode = None;
        // The file exactly as asked for is already there (a re-apply): nothing to do.
        let mut done = false;
        match self.current(path)? {
            None => {}
            // Replaced whole: what is there now does not matter.
            Some((ExistingKind::File, _)) if contents.is_some() && overwrite => {}
            Some((ExistingKind::File, node)) => {
                let on_disk = self.file_contents(path)?;
                if let Some(c) = contents {
                    let wanted = Contents::concat(std::iter::once(c).chain(append)).map_err(io)?;
                    let same = matches!(node, Some(NodeKind::File { mode: m, uid: u, gid: g, .. })
                        if m == mode.unwrap_or(0o644) && u == uid && g == gid)
                        && on_disk == wanted;
                    if !same {
                        return Err(conflict(path, "a file exists here and overwrite is false"));
                    }
                    base = Some(on_disk);
                    done = true;
                } else {
                    done = self
                        .appends
                        .already_appended(path, append, &on_disk)
                        .map_err(io)?;
                    base = Some(on_disk);
                    if let Some(NodeKind::File { mode, .. }) = node {
                        existing_mode = Some(mode);
                    }
                }
            }
            Some((kind, _)) => self.replace(path, kind, overwrite)?,
        }
        let base = base.unwrap_or_default();
        let whole = if done {
            base
        } else {
            let whole = Contents::concat(std::iter::once(&base).chain(append)).map_err(io)?;
            if contents.is_none() && !append.is_empty() {
                self.appends.record(path, append, &whole).map_err(io)?;
            }
            whole
        };
        let (mode, gid) = if SECRET_ACCOUNT_FILES.contains(&path) {
            self.secret_account_file_mode(mode.or(existing_mode), gid)?
        } else if ignition::secrets::is_secret_path(path) {
            (ignition::secrets::SECRET_MODE, gid)
        } else {
            (mode.or(existing_mode).unwrap_or(0o644), gid)
        };
        self.actions.push(Action::WriteFile {
            path: path.to_string(),
            contents: whole.clone(),
            mode,
            uid,
            gid,
        });
        self.planned.insert(path.to_string(), State::File(whole));
        Ok(())
    }

    /// A file's contents once the actions planned so far have run.
    fn file_contents(&self, path: &str) -> Result<Contents, PlanError> {
        Ok(match self.planned.get(path) {
            Some(State::File(c)) => c.clone(),
            _ => self
                .root
                .read(path)
                .map_err(|e| Self::io(path, e))?
                .unwrap_or_default()
                .into(),
        })
    }

    /// Password hashes are never world-readable, whatever a config asks (a write_files
    /// entry is 0644 unless it says otherwise). Without a mode: the distribution's, 0640
    /// root:shadow where the root has a `shadow` group (Debian, Alpine), else 0000 (RHEL).
    fn secret_account_file_mode(
        &self,
        mode: Option<u32>,
        gid: u32,
    ) -> Result<(u32, u32), PlanError> {
        if let Some(m) = mode {
            return Ok((m & !0o007, gid));
        }
        let groups = self
            .root
            .read("/etc/group")
            .map_err(|e| Self::io("/etc/group", e))?
            .unwrap_or_default();
        let shadow_gid = String::from_utf8_lossy(&groups).lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&"shadow")).then(|| f.get(2)?.parse::<u32>().ok())?
        });
        Ok(match shadow_gid {
            Some(shadow) => (0o640, if gid == 0 { shadow } else { gid }),
            None => (0o000, gid),
        })
    }

    pub(crate) fn symlink(
        &mut self,
        path: &str,
        target: &str,
        overwrite: bool,
        uid: u32,
        gid: u32,
    ) -> Result<(), PlanError> {
        self.parents(path)?;
        match self.current(path)? {
            None => {}
            Some((ExistingKind::Symlink, node)) => {
                let same = match (self.planned.get(path), node) {
                    (Some(State::Symlink(t)), _) => t == target,
                    (_, Some(NodeKind::Symlink { target: t })) => t == target,
                    _ => false,
                };
                if !same && !overwrite {
                    return Err(conflict(
                        path,
                        "a different symlink exists here and overwrite is false",
                    ));
                }
            }
            Some((kind, _)) => self.replace(path, kind, overwrite)?,
        }
        self.actions.push(Action::Symlink {
            path: path.to_string(),
            target: target.to_string(),
            uid,
            gid,
        });
        self.planned
            .insert(path.to_string(), State::Symlink(target.to_string()));
        Ok(())
    }

    fn hard_link(&mut self, path: &str, target: &str, overwrite: bool) -> Result<(), PlanError> {
        match self.current(target)? {
            Some((ExistingKind::File, _)) => {}
            None => {
                return Err(conflict(
                    path,
                    format!("hard link target {target} does not exist"),
                ))
            }
            Some((kind, _)) => {
                return Err(conflict(
                    path,
                    format!("hard link target {target} is a {kind:?}, not a file").to_lowercase(),
                ))
            }
        }
        self.parents(path)?;
        match self.current(path)? {
            None => {}
            // Already this link: apply re-links only if the target's inode changes.
            Some((ExistingKind::File, Some(NodeKind::File { dev, ino, .. })))
                if self.same_inode(target, dev, ino) => {}
            Some((kind, _)) => self.replace(path, kind, overwrite)?,
        }
        self.actions.push(Action::HardLink {
            path: path.to_string(),
            target: target.to_string(),
        });
        let contents = match self.planned.get(target) {
            Some(State::File(c)) => c.clone(),
            _ => Contents::default(),
        };
        self.planned.insert(path.to_string(), State::File(contents));
        Ok(())
    }

    fn same_inode(&self, path: &str, dev: u64, ino: u64) -> bool {
        matches!(self.root.node(path), Ok(Some(NodeKind::File { dev: d, ino: i, .. })) if d == dev && i == ino)
    }

    /// Remove a symlink if (and only if) one is there now.
    pub(crate) fn remove_symlink(&mut self, path: &str) -> Result<(), PlanError> {
        if let Some((ExistingKind::Symlink, _)) = self.current(path)? {
            self.actions.push(Action::Remove {
                path: path.to_string(),
                existing: ExistingKind::Symlink,
            });
            self.planned.insert(path.to_string(), State::Gone);
        }
        Ok(())
    }

    /// A unit file's text: planned contents win over the root's.
    pub(crate) fn read_text(&self, path: &str) -> Result<Option<String>, PlanError> {
        if let Some(State::File(c)) = self.planned.get(path) {
            // Read whole, so held to a document's cap.
            let cap = ignition::limits::MAX_DOCUMENT_BYTES;
            if c.len() > cap {
                return Err(conflict(
                    path,
                    format!("larger than {cap} bytes for a unit"),
                ));
            }
            let bytes = c.to_vec().map_err(|e| Self::io(path, e))?;
            return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
        }
        if let Some(State::Gone) = self.planned.get(path) {
            return Ok(None);
        }
        Ok(self
            .root
            .read(path)
            .map_err(|e| Self::io(path, e))?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    /// Node secret NAME as it will be once the plan ran: the config's own file (written
    /// 0600 whatever it asks) or, when the config writes none, the root's. The error is a
    /// sentence naming the file, never the value.
    pub(crate) fn secret(&self, name: &str) -> Result<ignition::secrets::Secret, String> {
        let path = ignition::secrets::secret_path(name);
        match self.planned.get(&path) {
            Some(State::File(c)) => {
                let max = ignition::secrets::MAX_SECRET_BYTES;
                if c.len() > max {
                    return Err(format!("secret {path} is larger than {max} bytes"));
                }
                let bytes = c.to_vec().map_err(|e| format!("secret {path}: {e}"))?;
                ignition::secrets::Secret::from_bytes(&bytes)
                    .map_err(|problem| format!("secret {path} {problem}"))
            }
            Some(_) => Err(format!(
                "secret {path} is not a file once the config is written"
            )),
            None => {
                ignition::secrets::read_secret(self.root.dir(), name).map_err(|e| e.to_string())
            }
        }
    }

    pub(crate) fn list(&self, dir: &str) -> Result<Vec<String>, PlanError> {
        self.root.list(dir).map_err(|e| Self::io(dir, e))
    }
}

/// The directories above an absolute path, outermost first: `/a/b/c` → `/a`, `/a/b`.
pub fn ancestors(path: &str) -> Vec<&str> {
    let mut found: Vec<&str> = Vec::new();
    let mut cur = path;
    while let Some(i) = cur.rfind('/') {
        cur = &cur[..i];
        if cur.is_empty() {
            break;
        }
        found.push(cur);
    }
    found.reverse();
    found
}

#[cfg(test)]
mod tests;
