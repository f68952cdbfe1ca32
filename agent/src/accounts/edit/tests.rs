//! The edits against the real shadow tools: the same root is given to `useradd --root`
//! (and friends) with the arguments Ignition 2.14 passes, and to [`Editor`]; the four
//! account files must come out byte for byte the same (SOURCE_DATE_EPOCH pins the day).

use std::path::Path;
use std::process::Command;

use super::*;
use crate::accounts::db::AccountDb;
use crate::target_root::TargetRoot;

const EPOCH: i64 = 1_700_000_000;

struct Root {
    dir: tempfile::TempDir,
}

fn root(files: &[(&str, &str)]) -> Root {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc/default")).unwrap();
    for (p, c) in files {
        std::fs::write(dir.path().join(p), c).unwrap();
    }
    Root { dir }
}

impl Root {
    fn copy(&self) -> Root {
        let r = root(&[]);
        for f in [
            "passwd",
            "group",
            "shadow",
            "gshadow",
            "login.defs",
            "default/useradd",
        ] {
            let src = self.dir.path().join("etc").join(f);
            if src.exists() {
                std::fs::copy(&src, r.dir.path().join("etc").join(f)).unwrap();
            }
        }
        r
    }

    fn files(&self) -> Vec<(String, String)> {
        ["passwd", "group", "shadow", "gshadow"]
            .iter()
            .map(|f| {
                let t = std::fs::read_to_string(self.dir.path().join("etc").join(f))
                    .unwrap_or_default();
                (f.to_string(), t)
            })
            .collect()
    }
}

fn tool(root: &Path, cmd: &str, args: &[String]) {
    let out = Command::new(cmd)
        .arg("--root")
        .arg(root)
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e} (package passwd)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Ignition 2.14's `EnsureGroup` arguments.
fn groupadd_args(g: &GroupEntry) -> Vec<String> {
    let mut a = Vec::new();
    if let Some(gid) = g.gid {
        a.extend(["--gid".to_string(), gid.to_string()]);
    }
    let pw = g.password_hash.clone().filter(|p| !p.is_empty());
    a.extend(["--password".to_string(), pw.unwrap_or("*".into())]);
    if g.system {
        a.push("--system".into());
    }
    a.push(g.name.clone());
    a
}

/// Ignition 2.14's `EnsureUser` arguments (useradd or usermod); no home is created here
/// (`--no-create-home` stands in for `--create-home`: homes are the planner's job).
fn user_args(u: &UserEntry, exists: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |x: &str, v: &str| a.extend([x.to_string(), v.to_string()]);
    let set = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if exists {
        if let Some(h) = set(&u.home_dir) {
            push("--home", &h);
        }
    } else {
        if let Some(h) = set(&u.home_dir) {
            push("--home-dir", &h);
        }
    }
    match &u.password_hash {
        Some(h) => push("--password", if h.is_empty() { "*" } else { h }),
        None if !exists => push("--password", "*"),
        None => {}
    }
    if let Some(uid) = u.uid {
        push("--uid", &uid.to_string());
    }
    if let Some(g) = set(&u.gecos) {
        push("--comment", &g);
    }
    if let Some(g) = set(&u.primary_group) {
        push("--gid", &g);
    }
    if !u.groups.is_empty() {
        push("--groups", &u.groups.join(","));
    }
    if let Some(s) = set(&u.shell) {
        push("--shell", &s);
    }
    if !exists {
        a.push("--no-create-home".into());
        if u.no_user_group {
            a.push("--no-user-group".into());
        }
        if u.system {
            a.push("--system".into());
        }
    }
    a.push(u.name.clone());
    a
}

fn user(name: &str) -> UserEntry {
    UserEntry {
        name: name.into(),
        should_exist: true,
        ..Default::default()
    }
}

fn group(name: &str) -> GroupEntry {
    GroupEntry {
        name: name.into(),
        should_exist: true,
        ..Default::default()
    }
}

/// Run `groups` then `users` through both; return our change lines.
fn compare(start: &Root, groups: &[GroupEntry], users: &[UserEntry]) -> Vec<String> {
    let theirs = start.copy();
    let mut db = AccountDb::load(&TargetRoot::new(theirs.dir.path())).unwrap();
    for g in groups {
        if g.should_exist {
            tool(theirs.dir.path(), "groupadd", &groupadd_args(g));
        } else {
            tool(theirs.dir.path(), "groupdel", std::slice::from_ref(&g.name));
        }
    }
    for u in users {
        let exists = db.passwd.get(&u.name).is_some();
        if !u.should_exist {
            tool(theirs.dir.path(), "userdel", std::slice::from_ref(&u.name));
        } else if exists {
            tool(theirs.dir.path(), "usermod", &user_args(u, true));
        } else {
            tool(theirs.dir.path(), "useradd", &user_args(u, false));
        }
    }
    let defs = UseraddDefaults::load(&TargetRoot::new(start.dir.path())).unwrap();
    let mut ed = Editor {
        db: &mut db,
        defs: &defs,
        today: Some(EPOCH / 86400),
    };
    let mut lines = Vec::new();
    for g in groups {
        lines.extend(ed.group(g).unwrap());
    }
    for u in users {
        lines.extend(ed.user(u).unwrap().0);
    }
    let ours: Vec<(String, String)> = ["passwd", "group", "shadow", "gshadow"]
        .iter()
        .zip(db.tables())
        .map(|(f, t)| (f.to_string(), String::from_utf8(t.render()).unwrap()))
        .collect();
    assert_eq!(ours, theirs.files());
    lines
}

const BARE: &[(&str, &str)] = &[
    ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"),
    ("etc/group", "root:x:0:\nadm:x:4:\nusers:x:100:\n"),
    ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
    ("etc/gshadow", "root:*::\nadm:*::\nusers:*::\n"),
];

#[test]
fn bare_root_like_useradd() {
    let start = root(BARE);
    let groups = [
        GroupEntry {
            gid: Some(10),
            ..group("wheel")
        },
        GroupEntry {
            system: true,
            ..group("adm2")
        },
        GroupEntry {
            password_hash: Some("$1$x".into()),
            ..group("grp")
        },
    ];
    let users = [
        user("core"),
        UserEntry {
            system: true,
            ..user("sys1")
        },
        UserEntry {
            uid: Some(1500),
            gecos: Some("Bob B".into()),
            home_dir: Some("/srv/bob".into()),
            groups: vec!["wheel".into(), "adm".into()],
            shell: Some("/bin/bash".into()),
            password_hash: Some("$6$abc$def".into()),
            ..user("bob")
        },
        UserEntry {
            no_user_group: true,
            ..user("nog")
        },
        UserEntry {
            primary_group: Some("adm".into()),
            ..user("pg")
        },
    ];
    let lines = compare(&start, &groups, &users);
    assert_eq!(lines[0], "add group wheel gid 10");
    assert_eq!(
        lines[3],
        "add user core uid 1000 gid 100 home /home/core shell /bin/bash"
    );
}

#[test]
fn debian_login_defs_user_groups_and_ranges() {
    let defs = std::fs::read_to_string("/etc/login.defs").expect("Debian's /etc/login.defs");
    let start = root(&[
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nsa:x:995:995::/:/bin/sh\nsb:x:500:500::/:/bin/sh\nu1:x:1000:1000::/:/bin/sh\nhi:x:60000:1000::/:/bin/sh\n",
        ),
        ("etc/group", "root:x:0:\nusers:x:100:\nu1:x:1000:\ng2:x:1001:\nsa:x:995:\n"),
        ("etc/login.defs", &defs),
        ("etc/default/useradd", "SHELL=/bin/sh\n"),
    ]);
    let users = [
        user("n1"),
        user("n2"),
        UserEntry {
            system: true,
            ..user("s1")
        },
        UserEntry {
            uid: Some(1500),
            ..user("b")
        },
        UserEntry {
            uid: Some(50),
            groups: vec!["g2".into()],
            ..user("low")
        },
    ];
    let lines = compare(&start, &[], &users);
    assert_eq!(
        lines[0],
        "add user n1 uid 1001 gid 1002 home /home/n1 shell /bin/sh (and group n1 gid 1002)"
    );
}

#[test]
fn usermod_and_userdel_like_shadow() {
    let defs = std::fs::read_to_string("/etc/login.defs").expect("Debian's /etc/login.defs");
    let start = root(&[
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ncore:x:1000:1000::/home/core:/bin/sh\ngone:x:1001:1001::/home/gone:/bin/sh\n",
        ),
        (
            "etc/group",
            "root:x:0:\nwheel:x:10:core\nadm:x:4:\ncore:x:1000:\ngone:x:1001:\ndocker:x:999:gone,core\n",
        ),
        ("etc/shadow", "root:*:1::::::\ncore:!:19000:0:99999:7:::\ngone:*:19000:0:99999:7:::\n"),
        ("etc/gshadow", "root:*::\nwheel:!::core\nadm:!::\ncore:!::\ngone:!::\ndocker:!::gone,core\n"),
        ("etc/login.defs", &defs),
    ]);
    let users = [
        UserEntry {
            password_hash: Some("$6$new".into()),
            groups: vec!["adm".into(), "docker".into()],
            shell: Some("/bin/bash".into()),
            gecos: Some("Core".into()),
            uid: Some(1100),
            ..user("core")
        },
        UserEntry {
            should_exist: false,
            ..user("gone")
        },
        UserEntry {
            should_exist: false,
            ..user("never")
        },
    ];
    let theirs_skip_missing: Vec<UserEntry> = users[..2].to_vec();
    let lines = compare(&start, &[], &theirs_skip_missing);
    assert_eq!(
        lines,
        [
            "modify user core: password, uid 1100, gecos \"Core\", groups adm,docker, shell /bin/bash",
            "remove user gone and its group gone",
        ]
    );
    let groups = [GroupEntry {
        should_exist: false,
        ..group("adm")
    }];
    compare(&start, &groups, &[]);
}

#[test]
fn refusals_name_the_problem() {
    let start = root(BARE);
    let mut db = AccountDb::load(&TargetRoot::new(start.dir.path())).unwrap();
    let defs = UseraddDefaults::from_texts("", "");
    let mut ed = Editor {
        db: &mut db,
        defs: &defs,
        today: None,
    };
    fn err<T: std::fmt::Debug>(r: Result<T, String>) -> String {
        r.unwrap_err()
    }
    assert_eq!(
        err(ed.user(&UserEntry {
            groups: vec!["wheel".into()],
            ..user("a")
        })),
        "group \"wheel\" does not exist in the root's /etc/group"
    );
    assert_eq!(
        err(ed.user(&UserEntry {
            uid: Some(0),
            ..user("b")
        })),
        "uid 0 is already used by another user"
    );
    assert_eq!(
        err(ed.group(&GroupEntry {
            gid: Some(5),
            ..group("adm")
        })),
        "group \"adm\" already exists (gid 4) with another gid or password; Ignition's groupadd refuses it too"
    );
    // The same group again: nothing to do.
    assert_eq!(
        ed.group(&GroupEntry {
            password_hash: None,
            ..group("adm")
        }),
        Ok(None)
    );
    assert_eq!(
        err(ed.group(&GroupEntry {
            should_exist: false,
            ..group("root")
        })),
        "cannot remove group \"root\": it is the primary group of user \"root\""
    );
}

#[test]
fn allocation_follows_find_new_uid() {
    let used = |v: &[u32]| v.iter().copied().collect::<BTreeSet<u32>>();
    assert_eq!(allocate(&used(&[]), 1000, 60000, false), Some(1000));
    assert_eq!(
        allocate(&used(&[1000, 1500]), 1000, 60000, false),
        Some(1501)
    );
    assert_eq!(
        allocate(&used(&[1000, 60000]), 1000, 60000, false),
        Some(1001)
    );
    assert_eq!(allocate(&used(&[]), 101, 999, true), Some(999));
    assert_eq!(allocate(&used(&[500, 995]), 101, 999, true), Some(499));
    assert_eq!(allocate(&used(&[101, 999]), 101, 999, true), Some(998));
    assert_eq!(allocate(&used(&[1, 2]), 1, 2, false), None);
}
