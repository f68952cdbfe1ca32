//! `ignition.security.tls.certificateAuthorities`: https fetches trust the compiled-in web
//! PKI roots (what ureq trusts by default, so a static agent needs no CA bundle on the
//! node) and, as Ignition adds them to the system pool, the config's CAs.

use std::sync::Arc;

use ignition::fetch_settings::CertificateAuthority;
use ignition::{ConfigError, Problem};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// The TLS client configuration trusting the web PKI and `cas`; an error names the CA
/// that is no usable certificate.
pub fn with_cas(cas: &[CertificateAuthority]) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for ca in cas {
        let bad = |why: String| ConfigError::new(&ca.path, Problem::InvalidCertificate(why));
        let certs = CertificateDer::pem_slice_iter(&ca.pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".to_string()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("cannot be a trust root: {e}")))?;
        }
    }
    Ok(Arc::new(
        crate::join::tls::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
