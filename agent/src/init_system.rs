//! Which service manager the target root boots with, decided as the builder decides it
//! (systemd wins over OpenRC); `None` is busybox init, which has no service ordering.
//! Every part of the agent that writes units or starts services asks here.

use crate::target_root::TargetRoot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitSystem {
    Systemd,
    OpenRc,
}

pub fn detect(root: &TargetRoot) -> std::io::Result<Option<InitSystem>> {
    let any = |paths: &[&str]| -> std::io::Result<bool> {
        for p in paths {
            if root.node(p)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    };
    Ok(
        if any(&["/usr/lib/systemd/systemd", "/lib/systemd/systemd"])? {
            Some(InitSystem::Systemd)
        } else if any(&["/sbin/openrc", "/usr/sbin/openrc"])? {
            Some(InitSystem::OpenRc)
        } else {
            None
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_system_is_read_from_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = TargetRoot::new(dir.path());
        assert_eq!(detect(&root).unwrap(), None);
        std::fs::create_dir_all(dir.path().join("sbin")).unwrap();
        std::fs::write(dir.path().join("sbin/openrc"), b"").unwrap();
        assert_eq!(detect(&root).unwrap(), Some(InitSystem::OpenRc));
        std::fs::create_dir_all(dir.path().join("lib/systemd")).unwrap();
        std::fs::write(dir.path().join("lib/systemd/systemd"), b"").unwrap();
        assert_eq!(detect(&root).unwrap(), Some(InitSystem::Systemd));
    }
}
