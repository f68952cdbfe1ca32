//! Node secrets a component needs (its `component.json` names them, never their values):
//! all read from /etc/harmony/secrets and checked before anything is unpacked or started,
//! then handed over as the catalog entry says: a variable of the process, or a file on a
//! tmpfs of the container's own at /run/secrets (gone with its mount namespace).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use ignition::secrets::{read_secret, secret_path, SecretUse, CONTAINER_SECRETS_DIR};

use super::in_root::{is_plain_name, InRoot, InRootPath};

/// What the process gets. No Debug: it holds the values.
#[derive(Default)]
pub struct Handed {
    pub env: Vec<(String, String)>,
    /// File name in /run/secrets, and its text.
    pub files: Vec<(String, String)>,
}

pub fn gather(root: &Path, uses: &[SecretUse]) -> anyhow::Result<Handed> {
    let mut handed = Handed::default();
    for u in uses {
        let secret = read_secret(root, &u.name)?;
        match (&u.env, &u.file) {
            (Some(var), None) => handed.env.push((var.clone(), secret.expose().to_string())),
            (None, Some(file)) => {
                let plain = is_plain_name(file) && !file.contains('\0');
                if !plain {
                    bail!(
                        "component.json: secret {}: file {file:?} is not a plain file name",
                        u.name
                    );
                }
                let text = u.format.render(&secret).map_err(|problem| {
                    anyhow::anyhow!("secret {} {problem}", secret_path(&u.name))
                })?;
                handed.files.push((file.clone(), text));
            }
            _ => bail!(
                "component.json: secret {}: give exactly one of `env` and `file`",
                u.name
            ),
        }
    }
    Ok(handed)
}

/// In the container's mount namespace, before chroot: a tmpfs at ROOTFS/run/secrets
/// (always, so a command may name the directory) with each file 0400, owned by the user
/// the process runs as. The directory is reached inside the rootfs only (a symlink an
/// image plants at /run leads back into it, never to the host).
pub fn install(rootfs: &Path, handed: &Handed, uid: u32, gid: u32) -> anyhow::Result<()> {
    use nix::mount::{mount, MsFlags};
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;

    let in_root = InRoot::open(rootfs).with_context(|| format!("opening {}", rootfs.display()))?;
    let at = InRootPath::parse(Path::new(CONTAINER_SECRETS_DIR))
        .ok_or_else(|| anyhow::anyhow!("{CONTAINER_SECRETS_DIR} is not a plain path"))?;
    let shown = rootfs.join(CONTAINER_SECRETS_DIR.trim_start_matches('/'));
    let under = in_root
        .dir_creating(&at)
        .with_context(|| format!("creating {}", shown.display()))?;
    mount(
        Some("tmpfs"),
        format!("/proc/self/fd/{}", under.as_raw_fd()).as_str(),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=0711,size=1m"),
    )
    .with_context(|| format!("mounting a tmpfs on {}", shown.display()))?;
    let dir = in_root
        .dir(&at)?
        .ok_or_else(|| anyhow::anyhow!("{} vanished", shown.display()))?;
    for (name, text) in &handed.files {
        let fd = rustix::fs::openat(
            &dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o400),
        )
        .with_context(|| format!("creating {}/{name}", shown.display()))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(text.as_bytes())
            .with_context(|| format!("writing {}/{name}", shown.display()))?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))
            .with_context(|| format!("chown {}/{name}", shown.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use ignition::secrets::SecretFormat;

    use super::*;

    fn uses() -> Vec<SecretUse> {
        serde_json::from_str(
            r#"[{"name": "splunk-hec-token", "env": "SPLUNK_HEC_TOKEN"},
                {"name": "keepalived-password", "file": "keepalived-auth.conf", "format": "keepalived-auth"}]"#,
        )
        .unwrap()
    }

    fn put(root: &Path, name: &str, value: &str) {
        let path = root.join("etc/harmony/secrets").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, value).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn secrets_become_a_variable_and_a_file_in_their_format() {
        let root = tempfile::tempdir().unwrap();
        put(root.path(), "splunk-hec-token", "hec-7c1d\n");
        put(root.path(), "keepalived-password", "pw-1\n");
        let h = gather(root.path(), &uses()).unwrap();
        assert_eq!(
            h.env,
            [("SPLUNK_HEC_TOKEN".to_string(), "hec-7c1d".to_string())]
        );
        assert_eq!(
            h.files,
            [(
                "keepalived-auth.conf".to_string(),
                "auth_pass pw-1\n".to_string()
            )]
        );
        assert_eq!(uses()[1].format, SecretFormat::KeepalivedAuth);
    }

    #[test]
    fn a_missing_or_bad_secret_stops_the_component_naming_the_file_not_the_value() {
        let root = tempfile::tempdir().unwrap();
        put(root.path(), "keepalived-password", "much-too-long");
        let e = format!("{:#}", gather(root.path(), &uses()).err().unwrap());
        assert!(
            e.contains("secret /etc/harmony/secrets/splunk-hec-token is missing"),
            "{e}"
        );
        put(root.path(), "splunk-hec-token", "t");
        let e = format!("{:#}", gather(root.path(), &uses()).err().unwrap());
        assert!(
            e.contains("secret /etc/harmony/secrets/keepalived-password is 13 characters long"),
            "{e}"
        );
        assert!(!e.contains("much-too-long"), "{e}");
        let sneaky: Vec<SecretUse> =
            serde_json::from_str(r#"[{"name": "splunk-hec-token", "file": "../etc/passwd"}]"#)
                .unwrap();
        let e = format!("{:#}", gather(root.path(), &sneaky).err().unwrap());
        assert!(e.contains("is not a plain file name"), "{e}");
    }
}
