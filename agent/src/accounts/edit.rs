//! Users and groups edited in memory the way Ignition 2.14 has shadow's tools edit them:
//! `groupadd`/`groupdel` for `passwd.groups`, `useradd`/`usermod`/`userdel --remove` for
//! `passwd.users`, with the arguments Ignition passes (its `internal/exec/util/passwd.go`)
//! and shadow 4.13's rules for what they write (checked against Debian 12's tools).
//!
//! Two deliberate differences, both for a re-apply to change nothing: a group that exists
//! already with the same gid and password is left alone (groupadd would fail), and an
//! unchanged password hash does not reset the shadow "last changed" day (usermod -p does).

use std::collections::BTreeSet;

use ignition::{GroupEntry, UserEntry};

use super::db::{members, AccountDb};
use super::defaults::UseraddDefaults;

/// Work on home directories that the account files alone do not cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HomeWork {
    /// useradd --create-home: made only when absent, filled from the skeleton.
    Create {
        path: String,
        uid: u32,
        gid: u32,
        mode: u32,
        skel: String,
    },
    /// usermod --home --move-home.
    Move { from: String, to: String },
    /// userdel --remove: the home directory and the mail spool.
    Remove { paths: Vec<String> },
}

pub struct Editor<'a> {
    pub db: &'a mut AccountDb,
    pub defs: &'a UseraddDefaults,
    /// Days since the epoch for shadow's "last changed"; `None` leaves it empty.
    pub today: Option<i64>,
}

type Outcome = Result<Option<String>, String>;

impl Editor<'_> {
    pub fn group(&mut self, g: &GroupEntry) -> Outcome {
        let exists = self.db.group.get(&g.name).cloned();
        if !g.should_exist {
            let Some(_) = exists else { return Ok(None) };
            let gid = self.group_gid(&g.name);
            if let Some(user) = self
                .db
                .passwd
                .records()
                .find(|r| gid.is_some() && r.get(3).and_then(|f| f.parse().ok()) == gid)
            {
                return Err(format!(
                    "cannot remove group {:?}: it is the primary group of user {:?}",
                    g.name, user[0]
                ));
            }
            self.db.group.remove(&g.name);
            self.db.gshadow.remove(&g.name);
            return Ok(Some(format!("remove group {}", g.name)));
        }
        let password = nonempty(&g.password_hash).unwrap_or("*").to_string();
        if let Some(rec) = exists {
            let gid = self.group_gid(&g.name);
            let current_pw = match self.db.gshadow.get(&g.name) {
                Some(s) => s.get(1).cloned(),
                None => rec.get(1).cloned(),
            };
            if g.gid.is_none_or(|want| Some(want) == gid)
                && current_pw.as_deref() == Some(password.as_str())
            {
                return Ok(None);
            }
            return Err(format!(
                "group {:?} already exists (gid {}) with another gid or password; Ignition's groupadd refuses it too",
                g.name,
                rec.get(2).map_or("?", String::as_str)
            ));
        }
        let used: BTreeSet<u32> = self.db.group.ids(2).collect();
        let gid = match g.gid {
            Some(gid) if used.contains(&gid) => {
                return Err(format!("gid {gid} is already used by another group"))
            }
            Some(gid) => gid,
            None => self.new_gid(g.system, &used, None)?,
        };
        self.push_group(&g.name, gid, &password);
        Ok(Some(format!("add group {} gid {gid}", g.name)))
    }

    /// Returns the change line and any home directory work.
    pub fn user(&mut self, u: &UserEntry) -> Result<(Option<String>, Option<HomeWork>), String> {
        match (self.db.passwd.get(&u.name).is_some(), u.should_exist) {
            (false, false) => Ok((None, None)),
            (true, false) => Ok(self.userdel(&u.name)),
            (true, true) => self.usermod(u),
            (false, true) => self.useradd(u).map(|(c, h)| (Some(c), h)),
        }
    }

    fn useradd(&mut self, u: &UserEntry) -> Result<(String, Option<HomeWork>), String> {
        let defs = self.defs;
        let used_uids: BTreeSet<u32> = self.db.passwd.ids(2).collect();
        let uid = match u.uid {
            Some(uid) if used_uids.contains(&uid) => {
                return Err(format!("uid {uid} is already used by another user"))
            }
            Some(uid) => uid,
            None => {
                let (min, max) = if u.system {
                    (defs.sys_uid_min, defs.sys_uid_max)
                } else {
                    (defs.uid_min, defs.uid_max)
                };
                allocate(&used_uids, min, max, u.system)
                    .ok_or_else(|| format!("no free uid left in {min}..={max}"))?
            }
        };
        let mut made_group = false;
        let gid = if let Some(pg) = nonempty(&u.primary_group) {
            self.resolve_group(pg)?
        } else if defs.user_groups && !u.no_user_group {
            if self.db.group.get(&u.name).is_some() {
                return Err(format!(
                    "group {:?} exists; name it in primaryGroup to make it this user's group (useradd refuses otherwise)",
                    u.name
                ));
            }
            let used: BTreeSet<u32> = self.db.group.ids(2).collect();
            let gid = self.new_gid(u.system, &used, Some(uid))?;
            self.push_group(&u.name, gid, "!");
            made_group = true;
            gid
        } else {
            // A numeric GROUP= is used even when no such group exists, as useradd does.
            match defs.group.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => self.resolve_group(&defs.group)?,
            }
        };
        let supplementary = self.resolve_groups(&u.groups)?;
        let home = match nonempty(&u.home_dir) {
            Some(h) => h.to_string(),
            None => format!("{}/{}", defs.home.trim_end_matches('/'), u.name),
        };
        let shell = nonempty(&u.shell).unwrap_or(&defs.shell).to_string();
        let password = nonempty(&u.password_hash).unwrap_or("*").to_string();
        let shadowed = self.db.shadow.present;
        self.db.passwd.push(vec![
            u.name.clone(),
            if shadowed {
                "x".into()
            } else {
                password.clone()
            },
            uid.to_string(),
            gid.to_string(),
            u.gecos.clone().unwrap_or_default(),
            home.clone(),
            shell.clone(),
        ]);
        if shadowed {
            let opt = |n: Option<i64>| n.map(|n| n.to_string()).unwrap_or_default();
            let aged = |n: Option<i64>| if u.system { String::new() } else { opt(n) };
            self.db.shadow.push(vec![
                u.name.clone(),
                password,
                opt(self.today),
                aged(defs.pass_min_days),
                aged(defs.pass_max_days),
                aged(defs.pass_warn_age),
                aged(defs.inactive),
                String::new(),
                String::new(),
            ]);
        }
        self.set_membership(&u.name, &supplementary, false);
        let home_work = (!u.no_create_home).then(|| HomeWork::Create {
            path: home.clone(),
            uid,
            gid,
            mode: defs.home_mode,
            skel: defs.skel.clone(),
        });
        let mut line = format!(
            "add user {} uid {uid} gid {gid} home {home} shell {shell}",
            u.name
        );
        if made_group {
            line.push_str(&format!(" (and group {} gid {gid})", u.name));
        }
        if !u.groups.is_empty() {
            line.push_str(&format!(" groups {}", u.groups.join(",")));
        }
        Ok((line, home_work))
    }

    fn usermod(&mut self, u: &UserEntry) -> Result<(Option<String>, Option<HomeWork>), String> {
        let rec = self.db.passwd.get(&u.name).cloned().unwrap_or_default();
        let field = |i: usize| rec.get(i).cloned().unwrap_or_default();
        let mut changed = Vec::new();
        let mut home_work = None;
        if let Some(home) = nonempty(&u.home_dir) {
            if home != field(5) {
                self.db.passwd.set(&u.name, 5, home);
                home_work = Some(HomeWork::Move {
                    from: field(5),
                    to: home.to_string(),
                });
                changed.push(format!("home {home}"));
            }
        }
        if let Some(h) = &u.password_hash {
            let pw = if h.is_empty() { "*" } else { h.as_str() };
            if self.db.shadow.present && self.db.shadow.get(&u.name).is_some() {
                if self
                    .db
                    .shadow
                    .get(&u.name)
                    .and_then(|r| r.get(1))
                    .map(String::as_str)
                    != Some(pw)
                {
                    self.db.shadow.set(&u.name, 1, pw);
                    let day = self.today.map(|d| d.to_string()).unwrap_or_default();
                    self.db.shadow.set(&u.name, 2, &day);
                    changed.push("password".to_string());
                }
            } else if field(1) != pw {
                self.db.passwd.set(&u.name, 1, pw);
                changed.push("password".to_string());
            }
        }
        if let Some(uid) = u.uid {
            if field(2) != uid.to_string() {
                if self
                    .db
                    .passwd
                    .records()
                    .any(|r| r[0] != u.name && r.get(2) == Some(&uid.to_string()))
                {
                    return Err(format!("uid {uid} is already used by another user"));
                }
                self.db.passwd.set(&u.name, 2, &uid.to_string());
                changed.push(format!("uid {uid}"));
            }
        }
        if let Some(gecos) = nonempty(&u.gecos) {
            if gecos != field(4) {
                self.db.passwd.set(&u.name, 4, gecos);
                changed.push(format!("gecos {gecos:?}"));
            }
        }
        if let Some(pg) = nonempty(&u.primary_group) {
            let gid = self.resolve_group(pg)?.to_string();
            if gid != field(3) {
                self.db.passwd.set(&u.name, 3, &gid);
                changed.push(format!("gid {gid}"));
            }
        }
        if !u.groups.is_empty() {
            let wanted = self.resolve_groups(&u.groups)?;
            if self.set_membership(&u.name, &wanted, true) {
                changed.push(format!("groups {}", u.groups.join(",")));
            }
        }
        if let Some(shell) = nonempty(&u.shell) {
            if shell != field(6) {
                self.db.passwd.set(&u.name, 6, shell);
                changed.push(format!("shell {shell}"));
            }
        }
        let line = (!changed.is_empty())
            .then(|| format!("modify user {}: {}", u.name, changed.join(", ")));
        Ok((line, home_work))
    }

    fn userdel(&mut self, name: &str) -> (Option<String>, Option<HomeWork>) {
        let rec = self.db.passwd.get(name).cloned().unwrap_or_default();
        let gid = rec.get(3).cloned().unwrap_or_default();
        self.db.passwd.remove(name);
        self.db.shadow.remove(name);
        self.set_membership(name, &BTreeSet::new(), true);
        let mut line = format!("remove user {name}");
        // userdel drops the user's own group when nobody else uses it.
        let own = self.db.group.get(name).cloned();
        if let Some(g) = own.filter(|g| {
            self.defs.user_groups
                && g.get(2) == Some(&gid)
                && members(g.get(3)).is_empty()
                && !self.db.passwd.records().any(|r| r.get(3) == Some(&gid))
        }) {
            self.db.group.remove(&g[0]);
            self.db.gshadow.remove(&g[0]);
            line.push_str(&format!(" and its group {name}"));
        }
        let mut paths: Vec<String> = rec
            .get(5)
            .filter(|h| h.starts_with('/') && *h != "/")
            .cloned()
            .into_iter()
            .collect();
        paths.push(format!("/var/mail/{name}"));
        (Some(line), Some(HomeWork::Remove { paths }))
    }

    fn group_gid(&self, name: &str) -> Option<u32> {
        self.db.group.get(name)?.get(2)?.parse().ok()
    }

    /// A group by name, or by number when it names an existing gid (as `useradd -g`).
    fn resolve_group(&self, g: &str) -> Result<u32, String> {
        if let Some(gid) = self.group_gid(g) {
            return Ok(gid);
        }
        g.parse::<u32>()
            .ok()
            .filter(|n| self.db.group.ids(2).any(|id| id == *n))
            .ok_or_else(|| format!("group {g:?} does not exist in the root's /etc/group"))
    }

    /// Supplementary groups by name (numbers are mapped to the group's name).
    fn resolve_groups(&self, groups: &[String]) -> Result<BTreeSet<String>, String> {
        groups
            .iter()
            .map(|g| {
                let gid = self.resolve_group(g)?.to_string();
                Ok(self
                    .db
                    .group
                    .records()
                    .find(|r| r[0] == *g || r.get(2) == Some(&gid))
                    .map(|r| r[0].clone())
                    .unwrap_or_else(|| g.clone()))
            })
            .collect()
    }

    /// Add `user` to each group in `wanted`; with `exclusive`, also take it out of every
    /// other group (usermod -G). Both /etc/group and /etc/gshadow member lists.
    fn set_membership(&mut self, user: &str, wanted: &BTreeSet<String>, exclusive: bool) -> bool {
        let mut changed = false;
        for (table, field) in [(&mut self.db.group, 3), (&mut self.db.gshadow, 3)] {
            for r in table.records_mut() {
                let mut m = members(r.get(field));
                let has = m.iter().any(|x| x == user);
                let want = wanted.contains(&r[0]);
                if want && !has {
                    m.push(user.to_string());
                } else if !want && has && exclusive {
                    m.retain(|x| x != user);
                } else {
                    continue;
                }
                if r.len() <= field {
                    r.resize(field + 1, String::new());
                }
                r[field] = m.join(",");
                changed = true;
            }
        }
        changed
    }

    fn new_gid(
        &self,
        system: bool,
        used: &BTreeSet<u32>,
        preferred: Option<u32>,
    ) -> Result<u32, String> {
        let (min, max) = if system {
            (self.defs.sys_gid_min, self.defs.sys_gid_max)
        } else {
            (self.defs.gid_min, self.defs.gid_max)
        };
        if let Some(p) = preferred.filter(|p| (min..=max).contains(p) && !used.contains(p)) {
            return Ok(p);
        }
        allocate(used, min, max, system).ok_or_else(|| format!("no free gid left in {min}..={max}"))
    }

    fn push_group(&mut self, name: &str, gid: u32, password: &str) {
        let shadowed = self.db.gshadow.present;
        self.db.group.push(vec![
            name.to_string(),
            if shadowed {
                "x".into()
            } else {
                password.to_string()
            },
            gid.to_string(),
            String::new(),
        ]);
        if shadowed {
            self.db.gshadow.push(vec![
                name.to_string(),
                password.to_string(),
                String::new(),
                String::new(),
            ]);
        }
    }
}

/// shadow 4.13's `find_new_uid`/`find_new_gid`: a regular id is one above the highest in
/// the range (or the lowest free one once the top is taken); a system id is one below
/// the lowest in the range (or the highest free one once the bottom is taken).
pub fn allocate(used: &BTreeSet<u32>, min: u32, max: u32, system: bool) -> Option<u32> {
    if min > max {
        return None;
    }
    let next = if system {
        match used.range(min..=max).next() {
            None => Some(max),
            Some(&low) => (low > min).then(|| low - 1),
        }
    } else {
        match used.range(min..=max).next_back() {
            None => Some(min),
            Some(&high) => (high < max).then(|| high + 1),
        }
    };
    next.or_else(|| {
        if system {
            (min..=max).rev().find(|i| !used.contains(i))
        } else {
            (min..=max).find(|i| !used.contains(i))
        }
    })
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
