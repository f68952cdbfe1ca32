//! A small but realistic node root for both appliers: Debian-like account files and
//! login.defs (useradd --root reads them), a unit in /usr/lib with an [Install] section,
//! one unit enabled already, an existing file and directory to overwrite or refuse, and
//! the SELinux config real Ignition's relabel step reads. Same bytes every time.

use std::fs;
use std::io;
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::Path;

const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
sys:x:3:3:sys:/dev:/usr/sbin/nologin
svc:x:990:990:service account:/var/lib/svc:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
";
const GROUP: &str = "\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
wheel:x:10:
shadow:x:42:
users:x:100:
svc:x:990:
nogroup:x:65534:
";
const SHADOW: &str = "\
root:*:20000:0:99999:7:::
daemon:*:20000:0:99999:7:::
bin:*:20000:0:99999:7:::
sys:*:20000:0:99999:7:::
svc:!:20000::::::
nobody:*:20000:0:99999:7:::
";
const GSHADOW: &str = "\
root:*::
daemon:*::
bin:*::
sys:*::
adm:*::
wheel:*::
shadow:*::
users:*::
svc:!::
nogroup:*::
";
/// The settings of Debian 12's login.defs that useradd consults.
const LOGIN_DEFS: &str = "\
MAIL_DIR        /var/mail
PASS_MAX_DAYS   99999
PASS_MIN_DAYS   0
PASS_WARN_AGE   7
UID_MIN         1000
UID_MAX         60000
SYS_UID_MIN     100
SYS_UID_MAX     999
GID_MIN         1000
GID_MAX         60000
SYS_GID_MIN     100
SYS_GID_MAX     999
UMASK           022
USERGROUPS_ENAB yes
ENCRYPT_METHOD  SHA512
";
const UNIT: &str = "\
[Unit]
Description=a unit the image ships

[Service]
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
";

/// Directories with their modes, parents first.
const DIRS: &[(&str, u32)] = &[
    ("etc", 0o755),
    ("etc/selinux", 0o755),
    ("etc/skel", 0o755),
    ("etc/existing-dir", 0o755),
    ("etc/systemd", 0o755),
    ("etc/systemd/system", 0o755),
    ("etc/systemd/system/multi-user.target.wants", 0o755),
    ("home", 0o755),
    ("root", 0o700),
    ("srv", 0o755),
    ("opt", 0o755),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("usr/bin", 0o755),
    ("usr/local", 0o755),
    ("usr/local/bin", 0o755),
    ("usr/lib", 0o755),
    ("usr/lib/systemd", 0o755),
    ("usr/lib/systemd/system", 0o755),
    ("usr/share", 0o755),
    ("usr/share/zoneinfo", 0o755),
    ("var", 0o755),
    ("var/lib", 0o755),
];

/// Files: path, mode, group, contents.
const FILES: &[(&str, u32, u32, &str)] = &[
    ("etc/passwd", 0o644, 0, PASSWD),
    ("etc/group", 0o644, 0, GROUP),
    ("etc/shadow", 0o640, 42, SHADOW),
    ("etc/gshadow", 0o640, 42, GSHADOW),
    ("etc/login.defs", 0o644, 0, LOGIN_DEFS),
    (
        "etc/selinux/config",
        0o644,
        0,
        "SELINUX=disabled\nSELINUXTYPE=targeted\n",
    ),
    ("etc/skel/.profile", 0o644, 0, "# ~/.profile\n"),
    ("etc/existing.conf", 0o644, 0, "old\n"),
    ("usr/lib/systemd/system/existing.service", 0o644, 0, UNIT),
    (
        "usr/lib/systemd/system/enabled-before.service",
        0o644,
        0,
        UNIT,
    ),
    ("usr/share/zoneinfo/UTC", 0o644, 0, "TZif2 UTC\n"),
];

/// Build the scratch root in `dir` (which must exist). Its own mode becomes 0755: Ignition
/// writes ssh keys as the user, who must be able to traverse it.
pub fn build(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for (path, mode) in DIRS {
        let p = dir.join(path);
        fs::create_dir(&p)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
    }
    for (path, mode, gid, contents) in FILES {
        let p = dir.join(path);
        fs::write(&p, contents)?;
        lchown(&p, Some(0), Some(*gid))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode))?;
    }
    symlink(
        "/usr/lib/systemd/system/enabled-before.service",
        dir.join("etc/systemd/system/multi-user.target.wants/enabled-before.service"),
    )?;
    Ok(())
}
