//! Owner names → ids, from the target root's /etc/passwd and /etc/group (never the
//! host's NSS: the agent is static and the names that count are the node's); and the
//! account files themselves ([`db`]), `useradd`'s defaults ([`defaults`]) and the user and
//! group edits Ignition makes ([`edit`]).

pub mod db;
pub mod defaults;
pub mod edit;

use std::collections::BTreeMap;

use ignition::Owner;

use crate::target_root::TargetRoot;

#[derive(Debug, Default)]
pub struct Accounts {
    users: BTreeMap<String, u32>,
    groups: BTreeMap<String, u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("reading {file} in the target root: {err}")]
    Read { file: String, err: std::io::Error },
    #[error("{file} line {line}: id {id:?} is not a number")]
    BadId {
        file: String,
        line: usize,
        id: String,
    },
    #[error("user {0:?} is not in the target root's /etc/passwd")]
    UnknownUser(String),
    #[error("group {0:?} is not in the target root's /etc/group")]
    UnknownGroup(String),
}

impl Accounts {
    pub fn load(root: &TargetRoot) -> Result<Accounts, AccountError> {
        Ok(Accounts {
            users: table(root, "/etc/passwd")?,
            groups: table(root, "/etc/group")?,
        })
    }

    /// The tables as an in-memory database has them (after planned user edits).
    pub fn from_db(db: &db::AccountDb) -> Accounts {
        let table = |t: &db::Table| {
            let mut m = BTreeMap::new();
            for r in t.records() {
                if let Some(id) = r.get(2).and_then(|f| f.parse().ok()) {
                    m.entry(r[0].clone()).or_insert(id);
                }
            }
            m
        };
        Accounts {
            users: table(&db.passwd),
            groups: table(&db.group),
        }
    }

    pub fn uid(&self, owner: &Option<Owner>) -> Result<u32, AccountError> {
        match owner {
            None => Ok(0),
            Some(Owner::Id(id)) => Ok(*id),
            Some(Owner::Name(n)) => self
                .users
                .get(n)
                .copied()
                .ok_or_else(|| AccountError::UnknownUser(n.clone())),
        }
    }

    pub fn gid(&self, owner: &Option<Owner>) -> Result<u32, AccountError> {
        match owner {
            None => Ok(0),
            Some(Owner::Id(id)) => Ok(*id),
            Some(Owner::Name(n)) => self
                .groups
                .get(n)
                .copied()
                .ok_or_else(|| AccountError::UnknownGroup(n.clone())),
        }
    }
}

/// `name:x:id:...` lines; a missing file is an empty table (a minimal root).
fn table(root: &TargetRoot, file: &str) -> Result<BTreeMap<String, u32>, AccountError> {
    let text = root
        .read(file)
        .map_err(|err| AccountError::Read {
            file: file.to_string(),
            err,
        })?
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for (i, line) in String::from_utf8_lossy(&text).lines().enumerate() {
        let fields: Vec<&str> = line.split(':').collect();
        if line.trim().is_empty() || line.starts_with('#') || fields.len() < 3 {
            continue;
        }
        let id = fields[2].parse().map_err(|_| AccountError::BadId {
            file: file.to_string(),
            line: i + 1,
            id: fields[2].to_string(),
        })?;
        out.entry(fields[0].to_string()).or_insert(id);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_from_the_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "root:x:0:\nwheel:x:10:core\n").unwrap();
        let a = Accounts::load(&TargetRoot::new(dir.path())).unwrap();
        assert_eq!(a.uid(&Some(Owner::Name("core".into()))).unwrap(), 1000);
        assert_eq!(a.gid(&Some(Owner::Name("wheel".into()))).unwrap(), 10);
        assert_eq!(a.uid(&None).unwrap(), 0);
        assert_eq!(a.uid(&Some(Owner::Id(7))).unwrap(), 7);
        assert_eq!(
            a.uid(&Some(Owner::Name("nobody".into())))
                .unwrap_err()
                .to_string(),
            "user \"nobody\" is not in the target root's /etc/passwd"
        );
    }
}
