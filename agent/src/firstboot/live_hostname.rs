//! The running system's host name. Init reads /etc/hostname early (busybox rcS runs
//! `hostname -F`, systemd reads it before the agent starts): when first boot writes that
//! file later, the kernel is told too, as cloud-init's set_hostname does.

use std::path::Path;

use crate::plan::{Action, Plan};

pub const HOSTNAME_FILE: &str = "/etc/hostname";

/// The name /etc/hostname holds as the plan writes it: its first line that is neither
/// empty nor a comment, as `hostname -F` reads it.
pub fn planned(plan: &Plan) -> Option<String> {
    plan.actions.iter().rev().find_map(|a| match a {
        Action::WriteFile { path, contents, .. } if path == HOSTNAME_FILE => {
            // The name is on the first lines; a huge file is not read whole.
            let mut head = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(contents.reader(), 64 << 10),
                &mut head,
            )
            .ok()?;
            String::from_utf8_lossy(&head)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
        }
        _ => None,
    })
}

/// Write `name` to the kernel's hostname (`/proc/sys/kernel/hostname` on the host).
pub fn set(name: &str, kernel_hostname: &Path) -> Result<(), String> {
    std::fs::write(kernel_hostname, name).map_err(|e| {
        format!(
            "setting the host name to {name:?} through {}: {e}",
            kernel_hostname.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &str, contents: &str) -> Action {
        Action::WriteFile {
            path: path.to_string(),
            contents: contents.into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
        }
    }

    #[test]
    fn the_name_comes_from_the_planned_hostname_file() {
        let mut plan = Plan::default();
        assert_eq!(planned(&plan), None);
        plan.actions.push(write("/etc/motd", "node-x\n"));
        plan.actions.push(write(
            "/etc/hostname",
            "# set by cloud-init\n\n  node-7.lab  \n",
        ));
        assert_eq!(planned(&plan).as_deref(), Some("node-7.lab"));

        let dir = tempfile::tempdir().unwrap();
        let proc_file = dir.path().join("hostname");
        std::fs::write(&proc_file, "harmony\n").unwrap();
        set("node-7.lab", &proc_file).unwrap();
        assert_eq!(std::fs::read_to_string(&proc_file).unwrap(), "node-7.lab");
        let err = set("x", &dir.path().join("no/such/file")).unwrap_err();
        assert!(
            err.starts_with("setting the host name to \"x\" through "),
            "{err}"
        );
    }
}
