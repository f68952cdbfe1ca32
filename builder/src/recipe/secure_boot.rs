//! `secure_boot: {key: FILE, cert: FILE}`: the key and certificate that sign the disk
//! image's UKI. Paths are relative to the recipe file; both are read and checked here
//! (emit/uki_signer.rs), so a wrong key is a recipe error, not a failed build.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::model::SecureBootDoc;
use super::validate::Checker;
use super::Output;
use crate::emit::uki_signer::{SignerError, UkiSigner};

/// The checked `secure_boot`: where key and certificate came from, and the signer.
#[derive(Clone)]
pub struct SecureBoot {
    pub key: PathBuf,
    pub cert: PathBuf,
    /// The certificate as read (PEM): it goes into the output for `harmony run --secure-boot`
    /// and whoever enrolls it in a firmware's db.
    pub cert_pem: String,
    pub signer: Arc<UkiSigner>,
}

impl PartialEq for SecureBoot {
    fn eq(&self, other: &Self) -> bool {
        (&self.key, &self.cert, &self.cert_pem) == (&other.key, &other.cert, &other.cert_pem)
    }
}

/// Never prints the key.
impl fmt::Debug for SecureBoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureBoot")
            .field("key", &self.key)
            .field("cert", &self.cert)
            .finish_non_exhaustive()
    }
}

fn read(c: &mut Checker, field: &str, path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) => {
            c.fail(field, format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

pub(super) fn check(
    c: &mut Checker,
    doc: Option<&SecureBootDoc>,
    dir: &Path,
    outputs: &[Output],
) -> Option<SecureBoot> {
    let doc = doc?;
    if !outputs.contains(&Output::Disk) {
        c.fail(
            "secure_boot",
            "signs the disk image's UKI: add `disk` to outputs",
        );
    }
    let (key, cert) = (dir.join(&doc.key), dir.join(&doc.cert));
    let key_pem = read(c, "secure_boot.key", &key);
    let cert_pem = read(c, "secure_boot.cert", &cert);
    let (key_pem, cert_pem) = (key_pem?, cert_pem?);
    match UkiSigner::from_pem(&key_pem, &cert_pem) {
        Ok(signer) => Some(SecureBoot {
            key,
            cert,
            cert_pem,
            signer: Arc::new(signer),
        }),
        Err(SignerError::Key(problem)) => {
            c.fail("secure_boot.key", format!("{}: {problem}", key.display()));
            None
        }
        Err(SignerError::Cert(problem)) => {
            c.fail("secure_boot.cert", format!("{}: {problem}", cert.display()));
            None
        }
    }
}
