//! What `useradd --root` reads from the root before it adds anyone: /etc/login.defs
//! (id ranges, user groups, home mode, password ageing) and /etc/default/useradd (primary
//! group, home base, shell, skeleton). Absent files and keys take shadow 4.13's built-in
//! defaults, which is why a bare root gets gid 100 and /bin/bash (measured against
//! Debian 12's useradd).

use crate::target_root::TargetRoot;

use super::AccountError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UseraddDefaults {
    pub uid_min: u32,
    pub uid_max: u32,
    pub sys_uid_min: u32,
    pub sys_uid_max: u32,
    pub gid_min: u32,
    pub gid_max: u32,
    pub sys_gid_min: u32,
    pub sys_gid_max: u32,
    /// USERGROUPS_ENAB: a group named after each new user is its primary group.
    pub user_groups: bool,
    pub home_mode: u32,
    /// PASS_MIN_DAYS, PASS_MAX_DAYS, PASS_WARN_AGE; `None` leaves the shadow field empty.
    pub pass_min_days: Option<i64>,
    pub pass_max_days: Option<i64>,
    pub pass_warn_age: Option<i64>,
    /// GROUP=, by number or name, when no user group is made.
    pub group: String,
    pub home: String,
    pub shell: String,
    pub skel: String,
    pub inactive: Option<i64>,
}

impl UseraddDefaults {
    pub fn load(root: &TargetRoot) -> Result<UseraddDefaults, AccountError> {
        let read = |file: &str| -> Result<String, AccountError> {
            Ok(root
                .read(file)
                .map_err(|err| AccountError::Read {
                    file: file.to_string(),
                    err,
                })?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default())
        };
        Ok(Self::from_texts(
            &read("/etc/login.defs")?,
            &read("/etc/default/useradd")?,
        ))
    }

    pub fn from_texts(login_defs: &str, useradd: &str) -> UseraddDefaults {
        // login.defs: `KEY value`, first occurrence wins as in getdef.
        let def = |key: &str| -> Option<&str> {
            login_defs.lines().find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(key)).then(|| it.next()).flatten()
            })
        };
        let num =
            |key: &str, dflt: u32| -> u32 { def(key).and_then(parse_c_number).unwrap_or(dflt) };
        let signed = |key: &str| -> Option<i64> {
            def(key)
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|n| *n >= 0)
        };
        // /etc/default/useradd: `KEY=value`.
        let var = |key: &str| -> Option<String> {
            useradd.lines().find_map(|l| {
                let (k, v) = l.trim().split_once('=')?;
                (k == key).then(|| v.trim().to_string())
            })
        };
        let uid_min = num("UID_MIN", 1000);
        let gid_min = num("GID_MIN", 1000);
        let umask = num("UMASK", 0o022);
        UseraddDefaults {
            uid_min,
            uid_max: num("UID_MAX", 60000),
            sys_uid_min: num("SYS_UID_MIN", 101),
            sys_uid_max: num("SYS_UID_MAX", uid_min.saturating_sub(1)),
            gid_min,
            gid_max: num("GID_MAX", 60000),
            sys_gid_min: num("SYS_GID_MIN", 101),
            sys_gid_max: num("SYS_GID_MAX", gid_min.saturating_sub(1)),
            user_groups: def("USERGROUPS_ENAB").is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            home_mode: num("HOME_MODE", 0o777 & !umask) & 0o7777,
            pass_min_days: signed("PASS_MIN_DAYS"),
            pass_max_days: signed("PASS_MAX_DAYS"),
            pass_warn_age: signed("PASS_WARN_AGE"),
            group: var("GROUP").unwrap_or_else(|| "100".to_string()),
            home: var("HOME").unwrap_or_else(|| "/home".to_string()),
            shell: var("SHELL").unwrap_or_else(|| "/bin/bash".to_string()),
            skel: var("SKEL").unwrap_or_else(|| "/etc/skel".to_string()),
            inactive: var("INACTIVE")
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|n| *n >= 0),
        }
    }
}

/// getdef's numbers: decimal, `0`-prefixed octal, `0x` hex.
fn parse_c_number(v: &str) -> Option<u32> {
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()
    } else if v.len() > 1 && v.starts_with('0') {
        u32::from_str_radix(&v[1..], 8).ok()
    } else {
        v.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_root_takes_shadow_defaults() {
        let d = UseraddDefaults::from_texts("", "");
        assert_eq!(
            (d.uid_min, d.uid_max, d.sys_uid_min, d.sys_uid_max),
            (1000, 60000, 101, 999)
        );
        assert!(!d.user_groups);
        assert_eq!(d.home_mode, 0o755);
        assert_eq!((d.group.as_str(), d.shell.as_str()), ("100", "/bin/bash"));
        assert_eq!(d.pass_max_days, None);
    }

    #[test]
    fn reads_debian_login_defs() {
        // The real file of the Debian host this runs on (package login).
        let defs = std::fs::read_to_string("/etc/login.defs").expect("Debian's /etc/login.defs");
        let d = UseraddDefaults::from_texts(&defs, "SHELL=/bin/sh\n# GROUP=7\n");
        assert!(d.user_groups);
        assert_eq!(d.pass_max_days, Some(99999));
        assert_eq!(d.shell, "/bin/sh");
        assert_eq!(d.group, "100");
    }

    #[test]
    fn ranges_and_modes_from_the_file() {
        let d = UseraddDefaults::from_texts(
            "UID_MIN 2000\nSYS_UID_MIN 200\nUMASK 077\nHOME_MODE 0750\nUSERGROUPS_ENAB yes\n",
            "GROUP=users\nHOME=/var/home\n",
        );
        assert_eq!((d.uid_min, d.sys_uid_min, d.sys_uid_max), (2000, 200, 1999));
        assert_eq!(d.home_mode, 0o750);
        assert_eq!((d.group.as_str(), d.home.as_str()), ("users", "/var/home"));
        assert_eq!(
            UseraddDefaults::from_texts("UMASK 077\n", "").home_mode,
            0o700
        );
    }
}
