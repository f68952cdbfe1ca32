//! The Secure Boot signing key and certificate of a recipe's `secure_boot: {key, cert}`:
//! PEM files, an RSA key of at least 2048 bits or an ECDSA P-256 key (PKCS#1, SEC1 or
//! unencrypted PKCS#8), and the X.509 certificate of that key. Everything is checked when
//! the recipe is read, so a bad key never stops a build half-way.
//!
//! Both signatures are deterministic (RSA PKCS#1 v1.5; ECDSA with RFC 6979 nonces): the
//! same UKI signed with the same key gives the same bytes, like every other artifact.

use der::{Decode, Encode};
use p256::pkcs8::EncodePublicKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use x509_cert::Certificate;

/// Firmware and Microsoft's signing policy take RSA keys from 2048 bits.
pub const MIN_RSA_BITS: usize = 2048;

const RSA_ENCRYPTION: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Which of the two files is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Cert(String),
}

enum Key {
    // Boxed: an RSA key is several times the size of a P-256 one.
    Rsa(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    P256(p256::ecdsa::SigningKey),
}

/// What signs a UKI: the private key and the certificate that goes into the signature.
pub struct UkiSigner {
    key: Key,
    certificate: Certificate,
}

/// The signature algorithm as PKCS#7 names it in a SignerInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// `rsaEncryption` with SHA-256 digests, as sbsign and Windows' signtool write it.
    Rsa,
    /// `ecdsa-with-SHA256`.
    EcdsaP256,
}

/// The PEM blocks of a file: (label, DER).
fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let label_end = after[11..]
            .find("-----")
            .ok_or("a PEM BEGIN line without its closing dashes")?;
        let label = &after[11..11 + label_end];
        let end_line = format!("-----END {label}-----");
        let end = after
            .find(&end_line)
            .ok_or_else(|| format!("no `{end_line}` line"))?
            + end_line.len();
        let (decoded_label, der) = der::pem::decode_vec(&after.as_bytes()[..end])
            .map_err(|e| format!("the PEM block `{label}` does not decode: {e}"))?;
        blocks.push((decoded_label.to_string(), der));
        rest = &after[end..];
    }
    if blocks.is_empty() {
        return Err("not a PEM file (no -----BEGIN line)".into());
    }
    Ok(blocks)
}

fn rsa_key(key: rsa::RsaPrivateKey) -> Result<Key, String> {
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "an RSA key of {bits} bits: Secure Boot signing needs at least {MIN_RSA_BITS}"
        ));
    }
    Ok(Key::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key))))
}

fn p256_key(key: p256::SecretKey) -> Key {
    Key::P256(p256::ecdsa::SigningKey::from(key))
}

fn private_key(text: &str) -> Result<Key, String> {
    let blocks = pem_blocks(text)?;
    let labels: Vec<&str> = blocks.iter().map(|(l, _)| l.as_str()).collect();
    let Some((label, der)) = blocks.iter().find(|(l, _)| l.ends_with("PRIVATE KEY")) else {
        return Err(format!(
            "no private key in it (PEM blocks: {})",
            labels.join(", ")
        ));
    };
    match label.as_str() {
        "RSA PRIVATE KEY" => rsa_key(
            rsa::RsaPrivateKey::from_pkcs1_der(der)
                .map_err(|e| format!("not a PKCS#1 RSA private key: {e}"))?,
        ),
        "EC PRIVATE KEY" => p256::SecretKey::from_sec1_der(der)
            .map(p256_key)
            .map_err(|e| format!("not a P-256 (prime256v1) EC private key: {e}")),
        "PRIVATE KEY" => {
            let info = p256::pkcs8::PrivateKeyInfo::from_der(der)
                .map_err(|e| format!("not a PKCS#8 private key: {e}"))?;
            let algorithm = info.algorithm.oid;
            if algorithm == RSA_ENCRYPTION {
                rsa_key(
                    rsa::RsaPrivateKey::from_pkcs8_der(der)
                        .map_err(|e| format!("not an RSA private key: {e}"))?,
                )
            } else if algorithm == EC_PUBLIC_KEY {
                let curve = info
                    .algorithm
                    .parameters_oid()
                    .map_err(|e| format!("an EC key without its curve: {e}"))?;
                if curve != PRIME256V1 {
                    return Err(format!(
                        "an EC key on curve {curve}: only P-256 (prime256v1, 1.2.840.10045.3.1.7) is supported"
                    ));
                }
                p256::SecretKey::from_pkcs8_der(der)
                    .map(p256_key)
                    .map_err(|e| format!("not a P-256 private key: {e}"))
            } else {
                Err(format!(
                    "a key of algorithm {algorithm}: only RSA and ECDSA P-256 keys sign UKIs"
                ))
            }
        }
        "ENCRYPTED PRIVATE KEY" => Err(
            "the private key is encrypted: decrypt it first (openssl pkey -in KEY -out PLAIN.key)"
                .into(),
        ),
        other => Err(format!("a `{other}` block: not a supported private key")),
    }
}

/// The DER of the first certificate in a PEM file (a chain file starts with the signer's).
pub fn certificate_der(text: &str) -> Result<Vec<u8>, String> {
    pem_blocks(text)?
        .into_iter()
        .find(|(l, _)| l == "CERTIFICATE")
        .map(|(_, der)| der)
        .ok_or_else(|| "no CERTIFICATE block in the PEM file".into())
}

fn certificate(text: &str) -> Result<Certificate, String> {
    Certificate::from_der(&certificate_der(text)?)
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

impl UkiSigner {
    /// Read the key and certificate (PEM texts) and check that they belong together.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<UkiSigner, SignerError> {
        let key = private_key(key_pem).map_err(SignerError::Key)?;
        let certificate = certificate(cert_pem).map_err(SignerError::Cert)?;
        let public = match &key {
            Key::Rsa(k) => rsa::RsaPublicKey::from(k.as_ref().as_ref()).to_public_key_der(),
            Key::P256(k) => k.verifying_key().to_public_key_der(),
        }
        .map_err(|e| SignerError::Key(format!("cannot encode its public key: {e}")))?;
        let in_cert = certificate
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| SignerError::Cert(format!("cannot encode its public key: {e}")))?;
        if public.as_bytes() != in_cert.as_slice() {
            return Err(SignerError::Cert(
                "the certificate is not for this private key (its public key differs)".into(),
            ));
        }
        Ok(UkiSigner { key, certificate })
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self.key {
            Key::Rsa(_) => SignatureAlgorithm::Rsa,
            Key::P256(_) => SignatureAlgorithm::EcdsaP256,
        }
    }

    /// The signature over `message` (hashed with SHA-256): PKCS#1 v1.5 bytes, or an ECDSA
    /// signature DER-encoded as PKCS#7 carries it.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Rsa(k) => k.sign(message).to_vec(),
            Key::P256(k) => {
                let signature: p256::ecdsa::Signature = k.sign(message);
                signature.to_der().to_bytes().to_vec()
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    /// A key (`openssl req -newkey`) and its self-signed certificate, as PEM texts.
    pub(crate) fn openssl_key_and_cert(newkey: &[&str]) -> Option<(String, String)> {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("db.key"), dir.path().join("db.crt"));
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                "/CN=Harmony test db",
            ])
            .args(newkey)
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some((
            std::fs::read_to_string(key).unwrap(),
            std::fs::read_to_string(cert).unwrap(),
        ))
    }

    fn pair(newkey: &[&str]) -> (String, String) {
        openssl_key_and_cert(newkey).unwrap_or_else(|| {
            harmony_test_support::skip("tool openssl not installed: Debian package openssl");
            panic!("openssl is needed to make test keys")
        })
    }

    fn key_error(key: &str, cert: &str) -> String {
        match UkiSigner::from_pem(key, cert) {
            Err(SignerError::Key(e)) => e,
            Err(other) => panic!("expected a key error, got {other:?}"),
            Ok(_) => panic!("expected a key error"),
        }
    }

    #[test]
    fn rsa_and_p256_keys_with_their_certificates_are_taken() {
        let (key, cert) = pair(&["-newkey", "rsa:2048"]);
        let signer = UkiSigner::from_pem(&key, &cert).unwrap();
        assert_eq!(signer.algorithm(), SignatureAlgorithm::Rsa);
        assert_eq!(signer.sign(b"message").len(), 256);
        assert_eq!(signer.sign(b"message"), signer.sign(b"message"));

        let (key, cert) = pair(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]);
        let signer = UkiSigner::from_pem(&key, &cert).unwrap();
        assert_eq!(signer.algorithm(), SignatureAlgorithm::EcdsaP256);
        assert_eq!(signer.sign(b"message"), signer.sign(b"message"), "RFC 6979");
        // SEC1 (`EC PRIVATE KEY`, after an `EC PARAMETERS` block), as `openssl ecparam
        // -genkey` writes it.
        let dir = tempfile::tempdir().unwrap();
        let (sec1_path, cert_path) = (dir.path().join("ec.key"), dir.path().join("ec.crt"));
        let made = Command::new("openssl")
            .args(["ecparam", "-name", "prime256v1", "-genkey", "-out"])
            .arg(&sec1_path)
            .status()
            .unwrap();
        assert!(made.success());
        let made = Command::new("openssl")
            .args([
                "req", "-new", "-x509", "-days", "1", "-subj", "/CN=ec", "-key",
            ])
            .arg(&sec1_path)
            .arg("-out")
            .arg(&cert_path)
            .status()
            .unwrap();
        assert!(made.success());
        let sec1 = std::fs::read_to_string(&sec1_path).unwrap();
        let cert = std::fs::read_to_string(&cert_path).unwrap();
        assert!(sec1.contains("BEGIN EC PARAMETERS") && sec1.contains("BEGIN EC PRIVATE KEY"));
        UkiSigner::from_pem(&sec1, &cert).unwrap();
    }

    #[test]
    fn weak_foreign_encrypted_and_mismatched_keys_are_refused_by_name() {
        let (small, small_cert) = pair(&["-newkey", "rsa:1024"]);
        assert!(
            key_error(&small, &small_cert).contains("RSA key of 1024 bits"),
            "{}",
            key_error(&small, &small_cert)
        );
        let (p384, p384_cert) = pair(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp384r1"]);
        let e = key_error(&p384, &p384_cert);
        assert!(
            e.contains("curve 1.3.132.0.34") && e.contains("P-256"),
            "{e}"
        );
        let (ed, ed_cert) = pair(&["-newkey", "ed25519"]);
        let e = key_error(&ed, &ed_cert);
        assert!(e.contains("algorithm 1.3.101.112"), "{e}");

        let (key, cert) = pair(&["-newkey", "rsa:2048"]);
        let encrypted = std::fs::read_to_string("/usr/share/ovmf/PkKek-1-snakeoil.key")
            .unwrap_or_else(|_| {
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n"
                    .into()
            });
        assert!(key_error(&encrypted, &cert).contains("encrypted"));
        assert!(key_error("hello", &cert).contains("not a PEM file"));
        assert!(key_error(&cert, &cert).contains("no private key"));

        let (_, other_cert) = pair(&["-newkey", "rsa:2048"]);
        assert_eq!(
            UkiSigner::from_pem(&key, &other_cert).err(),
            Some(SignerError::Cert(
                "the certificate is not for this private key (its public key differs)".into()
            ))
        );
        assert!(matches!(
            UkiSigner::from_pem(&key, &key),
            Err(SignerError::Cert(e)) if e.contains("no CERTIFICATE block")
        ));
    }
}
