//! `harmony run --secure-boot`: OVMF's Secure Boot firmware (Debian's `ovmf`) on a q35
//! machine with SMM, and a fresh copy of its variable store for every run, Secure Boot
//! enforced, with the image's certificate (`OUT/secure-boot.crt`, from the recipe's
//! `secure_boot.cert`) in db. An image signed with Debian's snakeoil test key boots on the
//! snakeoil store as Debian ships it; any other certificate is enrolled with
//! `virt-fw-vars --add-db` (PyPI's virt-firmware). An unsigned build gets the snakeoil
//! store too: the firmware then refuses its UKI, which is what Secure Boot is for.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::RunError;
use crate::emit::uki_signer::certificate_der;
use crate::manifest::Manifest;

/// The signing certificate in a build's output, and its manifest kind.
pub const CERT_FILE: &str = "secure-boot.crt";
pub const CERT_KIND: &str = "secure-boot-cert";

/// Secure Boot firmware code: SMM-protected variables, Secure Boot compiled in.
pub const SECBOOT_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
/// Debian's variable store with its snakeoil test key as PK, KEK and db, Secure Boot on.
pub const SNAKEOIL_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd";
pub const SNAKEOIL_CERT: &str = "/usr/share/ovmf/PkKek-1-snakeoil.pem";
/// The owner GUID of the db entries Harmony enrolls.
pub const DB_OWNER_GUID: &str = "6ec6ad6d-82ec-4e38-a9f2-4703dab548d8";

/// The QEMU arguments of the Secure Boot machine; `vars` is the run's own store.
pub fn qemu_args(vars: &Path) -> Vec<String> {
    vec![
        "-machine".into(),
        "q35,smm=on".into(),
        // Only SMM code may write the variable store: what makes Secure Boot's keys stick.
        "-global".into(),
        "driver=cfi.pflash01,property=secure,value=on".into(),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=0,file={SECBOOT_CODE},readonly=on"),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
    ]
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn missing(path: &str) -> RunError {
    RunError::BadPath {
        path: path.into(),
        reason: "--secure-boot needs Debian's `ovmf` Secure Boot firmware and its snakeoil store"
            .into(),
    }
}

/// The certificate the build's UKI was signed with, if the manifest lists one.
pub fn image_certificate(out_dir: &Path) -> Result<Option<PathBuf>, RunError> {
    let manifest = Manifest::load(out_dir)?;
    Ok(manifest
        .artifacts
        .iter()
        .find(|a| a.kind == CERT_KIND)
        .map(|a| out_dir.join(&a.path)))
}

/// A fresh variable store for one run, in `dir`: db holds `cert` (or only the snakeoil
/// certificate when `cert` is it, or none is given).
pub fn fresh_vars(cert: Option<&Path>, dir: &Path) -> Result<tempfile::NamedTempFile, RunError> {
    for p in [SECBOOT_CODE, SNAKEOIL_VARS] {
        if !Path::new(p).is_file() {
            return Err(missing(p));
        }
    }
    let vars = tempfile::Builder::new()
        .prefix("harmony-ovmf-vars-")
        .suffix(".fd")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    let enroll = match cert {
        None => None,
        Some(cert) => {
            let text = std::fs::read_to_string(cert).map_err(io(cert))?;
            let der = certificate_der(&text).map_err(|reason| RunError::BadPath {
                path: cert.display().to_string(),
                reason,
            })?;
            let snakeoil = std::fs::read_to_string(SNAKEOIL_CERT)
                .ok()
                .and_then(|t| certificate_der(&t).ok());
            (snakeoil.as_ref() != Some(&der)).then_some(cert)
        }
    };
    let Some(cert) = enroll else {
        std::fs::copy(SNAKEOIL_VARS, vars.path()).map_err(io(vars.path()))?;
        return Ok(vars);
    };
    let out = Command::new("virt-fw-vars")
        .args(["--input", SNAKEOIL_VARS, "--output"])
        .arg(vars.path())
        .args(["--add-db", DB_OWNER_GUID])
        .arg(cert)
        .output()
        .map_err(|source| RunError::Io {
            path: "virt-fw-vars (PyPI virt-firmware; scripts/setup-host.sh installs it)".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(RunError::BadPath {
            path: cert.display().to_string(),
            reason: format!(
                "virt-fw-vars --add-db could not enroll it: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_of(vars: &Path) -> Option<String> {
        let out = Command::new("virt-fw-vars")
            .arg("--input")
            .arg(vars)
            .arg("--print")
            .arg("--verbose")
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn the_image_certificate_is_enrolled_in_a_fresh_store_and_snakeoil_needs_none() {
        if !Path::new(SNAKEOIL_VARS).is_file() {
            harmony_test_support::skip("ovmf's Secure Boot store missing: Debian package ovmf");
            return;
        }
        let Some((_, cert)) =
            crate::emit::uki_signer::tests::openssl_key_and_cert(&["-newkey", "rsa:2048"])
        else {
            harmony_test_support::skip("tool openssl not installed: Debian package openssl");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let cert_path = dir.path().join("db.crt");
        std::fs::write(&cert_path, &cert).unwrap();
        let snakeoil = std::fs::read(SNAKEOIL_VARS).unwrap();

        let plain = fresh_vars(None, dir.path()).unwrap();
        assert_eq!(std::fs::read(plain.path()).unwrap(), snakeoil);
        let same = fresh_vars(Some(Path::new(SNAKEOIL_CERT)), dir.path()).unwrap();
        assert_eq!(std::fs::read(same.path()).unwrap(), snakeoil);

        let Some(before) = db_of(plain.path()) else {
            harmony_test_support::skip("tool virt-fw-vars not installed: PyPI virt-firmware");
            return;
        };
        let enrolled = fresh_vars(Some(&cert_path), dir.path()).unwrap();
        let after = db_of(enrolled.path()).unwrap();
        assert!(!before.contains("CN=Harmony test db"), "{before}");
        assert!(after.contains("subject CN=Harmony test db"), "{after}");
        assert!(
            after.contains(
                "name=SecureBootEnable guid=guid:EfiSecureBootEnableDisable size=1\n  bool: ON"
            ),
            "{after}"
        );
        // Debian's store itself is never written.
        assert_eq!(std::fs::read(SNAKEOIL_VARS).unwrap(), snakeoil);

        std::fs::write(&cert_path, "not a certificate").unwrap();
        let e = fresh_vars(Some(&cert_path), dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("db.crt") && e.contains("PEM"), "{e}");
    }

    #[test]
    fn the_machine_has_smm_and_secure_pflash() {
        let args = qemu_args(Path::new("/tmp/v.fd")).join(" ");
        assert!(args.contains("-machine q35,smm=on"), "{args}");
        assert!(
            args.contains("cfi.pflash01,property=secure,value=on"),
            "{args}"
        );
        assert!(args.contains("unit=0,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd,readonly=on"));
        assert!(args.ends_with("unit=1,file=/tmp/v.fd"), "{args}");
    }
}
