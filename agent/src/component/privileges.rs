//! What the component's process gives up between fork and exec, as PID 1 of its PID
//! namespace: it mounts its own /proc, pivots into the rootfs (the host's tree is
//! detached, not just out of reach as after a chroot), and then drops to the entry's
//! uid and gid with no supplementary groups, keeping only the capabilities the entry
//! declares (bounding, permitted, effective and inheritable sets, and the ambient set so
//! a non-root process keeps them across exec) and setting no_new_privs, so neither a
//! setuid binary nor file capabilities in the image give any back.

use std::ffi::CString;
use std::io;

use anyhow::Context;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{Gid, Uid};
use rustix::thread::{CapabilitySet, CapabilitySets};

/// Capability names as capabilities(7) spells them without `CAP_` (`NET_BIND_SERVICE`);
/// `field` names where they come from for the error.
pub fn capability_set(names: &[String], field: &str) -> anyhow::Result<CapabilitySet> {
    let mut set = CapabilitySet::empty();
    for (i, name) in names.iter().enumerate() {
        let Some(cap) = CapabilitySet::from_name(name) else {
            anyhow::bail!(
                "{field}[{i}]: unknown capability `{name}` (capabilities(7) names without \
                 CAP_, e.g. NET_BIND_SERVICE)"
            );
        };
        set |= cap;
    }
    Ok(set)
}

/// Everything the child needs, prepared before the fork (the child allocates nothing).
pub struct Confinement {
    proc_target: CString,
    rootfs: CString,
    working_dir: CString,
    uid: Uid,
    gid: Gid,
    keep: CapabilitySet,
}

impl Confinement {
    pub fn new(
        proc_target: &str,
        rootfs: &std::path::Path,
        working_dir: &str,
        (uid, gid): (u32, u32),
        keep: CapabilitySet,
    ) -> anyhow::Result<Self> {
        use std::os::unix::ffi::OsStrExt;
        let c = |s: &[u8], what: &str| {
            CString::new(s).with_context(|| format!("{what} holds a NUL byte"))
        };
        Ok(Confinement {
            proc_target: c(proc_target.as_bytes(), "the /proc mount point")?,
            rootfs: c(rootfs.as_os_str().as_bytes(), "the rootfs path")?,
            working_dir: c(working_dir.as_bytes(), "WorkingDir")?,
            uid: Uid::from_raw(uid),
            gid: Gid::from_raw(gid),
            keep,
        })
    }

    /// Runs in the child, between fork and exec: syscalls only.
    pub fn enter(&self) -> io::Result<()> {
        mount(
            Some("proc"),
            self.proc_target.as_c_str(),
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )?;
        nix::unistd::chdir(self.rootfs.as_c_str())?;
        // pivot_root(".", "."): the old root ends up on top of the new one, and is then
        // detached (runc's way, no directory for the old root needed).
        nix::unistd::pivot_root(".", ".")?;
        umount2(".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir(self.working_dir.as_c_str())?;

        // Capabilities survive the uid change; the sets are then set to what is kept.
        rustix::thread::set_keep_capabilities(true)?;
        for cap in CapabilitySet::all().iter() {
            if self.keep.contains(cap) {
                continue;
            }
            match rustix::thread::remove_capability_from_bounding_set(cap) {
                // A capability newer than this kernel: not there to drop.
                Ok(()) | Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(e.into()),
            }
        }
        nix::unistd::setgroups(&[])?;
        nix::unistd::setgid(self.gid)?;
        nix::unistd::setuid(self.uid)?;
        rustix::thread::set_capabilities(
            None,
            CapabilitySets {
                effective: self.keep,
                permitted: self.keep,
                inheritable: self.keep,
            },
        )?;
        for cap in self.keep.iter() {
            rustix::thread::configure_capability_in_ambient_set(cap, true)?;
        }
        rustix::thread::set_keep_capabilities(false)?;
        rustix::thread::set_no_new_privs(true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn capability_names_are_checked_naming_the_field() {
        let set = super::capability_set(
            &["NET_BIND_SERVICE".into(), "IPC_LOCK".into()],
            "component.json: capabilities",
        )
        .unwrap();
        assert_eq!(set.bits(), (1 << 10) | (1 << 14));
        let e = super::capability_set(
            &["NET_ADMIN".into(), "CAP_NET_RAW".into()],
            "component.json: capabilities",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("component.json: capabilities[1]: unknown capability `CAP_NET_RAW`"),
            "{e}"
        );
    }
}
