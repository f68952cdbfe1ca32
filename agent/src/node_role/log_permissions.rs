//! Logs readable by root and the log group only: files under /var/log at most 0640,
//! directories at most 0750 (bits are only taken away, as CIS's `chmod g-wx,o-rwx`;
//! setgid on directories is kept, journald relies on it), and the loggers' settings
//! that keep new files so.
//!
//! - journald has no file-mode setting (it creates journal files 0640 itself); its
//!   directories are set by tmpfiles.d, so a tmpfiles.d file that sorts first
//!   (`00-…`, the first line for a path wins) makes them 2750 at every boot.
//! - rsyslog: `$FileCreateMode 0640`, `$DirCreateMode 0750`, `$Umask 0027`.
//! - logrotate: `create 0640` in a file that sorts first in /etc/logrotate.d, so it is
//!   the default of every later stanza (owner and group kept from the old file).
//! - busybox syslogd has no mode setting: its files follow its umask. The default image
//!   runs no syslogd; an image that does should start it with `umask 027`.
//!
//! Existing files are tightened at first boot ([`tighten`]); the settings are written
//! only for the loggers the image has.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::plan::NodeFile;
use crate::target_root::TargetRoot;

pub const LOG_DIR: &str = "/var/log";
pub const FILE_MODE_MAX: u32 = 0o640;
pub const DIR_MODE_MAX: u32 = 0o750;

pub const TMPFILES_PATH: &str = "/etc/tmpfiles.d/00-harmony-log-permissions.conf";
pub const RSYSLOG_PATH: &str = "/etc/rsyslog.d/00-harmony-log-permissions.conf";
pub const LOGROTATE_PATH: &str = "/etc/logrotate.d/00-harmony-log-permissions";

const TMPFILES: &str = "\
# Harmony: logs are for root and the log group only (journald has no mode setting).
# Sorted first, so these lines win over systemd.conf's 2755 for the same paths.
z /var/log 0750 - - -
z /var/log/journal 2750 root systemd-journal - -
z /var/log/journal/%m 2750 root systemd-journal - -
z /var/log/journal/%m/system.journal 0640 root systemd-journal - -
";

const RSYSLOG: &str = "\
# Harmony: new log files 0640, new log directories 0750.
$FileCreateMode 0640
$DirCreateMode 0750
$Umask 0027
";

const LOGROTATE: &str = "\
# Harmony: rotated logs are recreated 0640 (owner and group as before). Sorted first in
# /etc/logrotate.d, so this is the default of every later stanza.
create 0640
";

/// The settings files for the loggers this root has.
pub fn files(root: &TargetRoot) -> Vec<NodeFile> {
    let has = |p: &str| matches!(root.node(p), Ok(Some(_)));
    let mut out = Vec::new();
    if has("/usr/lib/systemd/systemd") || has("/lib/systemd/systemd") {
        out.push(file(TMPFILES_PATH, TMPFILES));
    }
    if has("/etc/rsyslog.conf") || has("/etc/rsyslog.d") {
        out.push(file(RSYSLOG_PATH, RSYSLOG));
    }
    if has("/etc/logrotate.conf") || has("/etc/logrotate.d") {
        out.push(file(LOGROTATE_PATH, LOGROTATE));
    }
    out
}

fn file(path: &str, text: &str) -> NodeFile {
    NodeFile::new(path, text, 0o644)
}

/// Take group-write and every "other" bit from what is under `dir` (and `dir` itself);
/// symlinks are not followed. Returns how many modes changed.
pub fn tighten(dir: &Path) -> io::Result<usize> {
    let mut changed = 0;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    changed += restrict(dir, &meta)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                changed += tighten(&path)?;
            } else {
                changed += restrict(&path, &meta)?;
            }
        }
    }
    Ok(changed)
}

fn restrict(path: &Path, meta: &std::fs::Metadata) -> io::Result<usize> {
    let mode = meta.permissions().mode() & 0o7777;
    let allowed = if meta.is_dir() {
        0o7000 | DIR_MODE_MAX
    } else if meta.is_file() {
        FILE_MODE_MAX
    } else {
        return Ok(0); // symlinks, sockets, fifos: left alone
    };
    if mode & !allowed == 0 {
        return Ok(0);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & allowed))?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn tightens_a_scratch_var_log_and_only_takes_bits_away() {
        let root = tempfile::tempdir().unwrap();
        let log = root.path().join("var/log");
        std::fs::create_dir_all(log.join("journal/abc")).unwrap();
        std::fs::create_dir_all(log.join("private")).unwrap();
        let set =
            |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m)).unwrap();
        set(&log, 0o755);
        set(&log.join("journal"), 0o2755);
        set(&log.join("journal/abc"), 0o2755);
        set(&log.join("private"), 0o700);
        for (name, m) in [
            ("messages", 0o644),
            ("wtmp", 0o664),
            ("world", 0o666),
            ("secret", 0o600),
            ("journal/abc/system.journal", 0o644),
            ("odd", 0o4755),
        ] {
            std::fs::write(log.join(name), b"x").unwrap();
            set(&log.join(name), m);
        }
        let outside = root.path().join("etc-shadow");
        std::fs::write(&outside, b"x").unwrap();
        set(&outside, 0o644);
        symlink(&outside, log.join("link")).unwrap();

        let changed = tighten(&log).unwrap();
        assert_eq!(mode(&log), 0o750);
        assert_eq!(mode(&log.join("journal")), 0o2750);
        assert_eq!(mode(&log.join("journal/abc")), 0o2750);
        assert_eq!(mode(&log.join("private")), 0o700, "never widened");
        assert_eq!(mode(&log.join("messages")), 0o640);
        assert_eq!(mode(&log.join("wtmp")), 0o640);
        assert_eq!(mode(&log.join("world")), 0o640);
        assert_eq!(mode(&log.join("secret")), 0o600, "never widened");
        assert_eq!(mode(&log.join("journal/abc/system.journal")), 0o640);
        assert_eq!(mode(&log.join("odd")), 0o640);
        assert_eq!(mode(&outside), 0o644, "symlinks are not followed");
        assert_eq!(changed, 8);
        assert_eq!(tighten(&log).unwrap(), 0, "a second run changes nothing");
        assert_eq!(tighten(&root.path().join("nope")).unwrap(), 0);
    }

    #[test]
    fn settings_only_for_the_loggers_the_image_has() {
        let root = tempfile::tempdir().unwrap();
        let tr = TargetRoot::new(root.path());
        assert!(files(&tr).is_empty(), "busybox image: nothing to configure");
        std::fs::create_dir_all(root.path().join("usr/lib/systemd")).unwrap();
        std::fs::write(root.path().join("usr/lib/systemd/systemd"), b"").unwrap();
        std::fs::create_dir_all(root.path().join("etc/rsyslog.d")).unwrap();
        std::fs::create_dir_all(root.path().join("etc/logrotate.d")).unwrap();
        let paths: Vec<_> = files(&tr).into_iter().map(|f| f.path).collect();
        assert_eq!(paths, [TMPFILES_PATH, RSYSLOG_PATH, LOGROTATE_PATH]);
        assert!(RSYSLOG.contains("$FileCreateMode 0640\n$DirCreateMode 0750\n"));
        assert!(LOGROTATE.contains("\ncreate 0640\n"));
        assert!(TMPFILES.contains("\nz /var/log/journal 2750 root systemd-journal - -\n"));
    }
}
