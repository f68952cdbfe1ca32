//! kubeadm's CA pin: `sha256:` + lower-hex SHA-256 of the CA certificate's DER
//! SubjectPublicKeyInfo, for any key type (RSA, ECDSA, Ed25519).
//!
//! The SPKI is found by a small DER walk rather than a full X.509 parser: Certificate →
//! tbsCertificate → skip [0] version, serialNumber, signature, issuer, validity, subject
//! → the raw subjectPublicKeyInfo element (tag, length and contents, as hashed).

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an X.509 certificate: {0}")]
pub struct DerError(String);

fn bad(what: impl Into<String>) -> DerError {
    DerError(what.into())
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0; // [0] EXPLICIT, constructed

/// One DER element: its tag, its contents, and the whole encoding.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    raw: &'a [u8],
}

/// The element at the start of `input`, and what follows it.
fn element(input: &[u8]) -> Result<(Element<'_>, &[u8]), DerError> {
    let (&tag, rest) = input
        .split_first()
        .ok_or_else(|| bad("truncated: no tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(bad(format!(
            "multi-byte tag {tag:#04x} where X.509 has none"
        )));
    }
    let (&first, rest) = rest
        .split_first()
        .ok_or_else(|| bad("truncated: no length"))?;
    let (len, rest) = match first {
        n if n < 0x80 => (usize::from(n), rest),
        0x80 => return Err(bad("indefinite length (BER, not DER)")),
        n => {
            let count = usize::from(n & 0x7f);
            if count > 4 || rest.len() < count {
                return Err(bad(format!("a length of {count} bytes")));
            }
            let (bytes, rest) = rest.split_at(count);
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, rest)
        }
    };
    if rest.len() < len {
        return Err(bad(format!(
            "element {tag:#04x} claims {len} bytes, {} remain",
            rest.len()
        )));
    }
    let header_len = input.len() - rest.len();
    let (contents, after) = rest.split_at(len);
    Ok((
        Element {
            tag,
            contents,
            raw: &input[..header_len + len],
        },
        after,
    ))
}

fn expect<'a>(input: &'a [u8], tag: u8, name: &str) -> Result<(Element<'a>, &'a [u8]), DerError> {
    let (e, rest) = element(input).map_err(|e| bad(format!("{name}: {}", e.0)))?;
    if e.tag != tag {
        return Err(bad(format!(
            "{name}: tag {:#04x}, expected {tag:#04x}",
            e.tag
        )));
    }
    Ok((e, rest))
}

/// The raw DER SubjectPublicKeyInfo of a DER certificate.
pub fn subject_public_key_info(cert_der: &[u8]) -> Result<&[u8], DerError> {
    let (cert, trailing) = expect(cert_der, SEQUENCE, "Certificate")?;
    if !trailing.is_empty() {
        return Err(bad(format!(
            "{} bytes after the certificate",
            trailing.len()
        )));
    }
    let (tbs, _) = expect(cert.contents, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs.contents;
    if rest.first() == Some(&VERSION) {
        rest = element(rest)?.1;
    }
    rest = expect(rest, INTEGER, "serialNumber")?.1;
    for name in ["signature", "issuer", "validity", "subject"] {
        rest = expect(rest, SEQUENCE, name)?.1;
    }
    let (spki, _) = expect(rest, SEQUENCE, "subjectPublicKeyInfo")?;
    // AlgorithmIdentifier, then the BIT STRING key.
    let (_, key) = expect(spki.contents, SEQUENCE, "subjectPublicKeyInfo.algorithm")?;
    expect(key, 0x03, "subjectPublicKeyInfo.subjectPublicKey")?;
    Ok(spki.raw)
}

/// `sha256:<hex>` of the certificate's public key.
pub fn pin(cert_der: &[u8]) -> Result<String, DerError> {
    let spki = subject_public_key_info(cert_der)?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(spki))))
}

/// The first pin among `pins` that one of `certs` has (as kubeadm, any cert of the
/// bundle may match any pin; compared case-insensitively, hex being hex). `Err` lists
/// the certificates' own pins, for the error message.
pub fn matching(
    certs: &[Vec<u8>],
    pins: &[String],
) -> Result<Result<String, Vec<String>>, DerError> {
    let found: Vec<String> = certs.iter().map(|c| pin(c)).collect::<Result<_, _>>()?;
    for want in pins {
        if found.iter().any(|f| f.eq_ignore_ascii_case(want)) {
            return Ok(Ok(want.to_ascii_lowercase()));
        }
    }
    Ok(Err(found))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    // Expected pins from openssl, not from this code:
    // openssl x509 -noout -pubkey -in F | openssl pkey -pubin -outform DER | sha256sum
    const FIXTURES: [(&str, &str); 3] = [
        (
            include_str!("testdata/ca-rsa.crt"),
            "sha256:f3e5df39c2e1de41fa61a3a0712010fd6d9bf8e382c036f1ae34705b8d94a549",
        ),
        (
            include_str!("testdata/ca-ec.crt"),
            "sha256:909961240c1473917c1edfe7f9d6c05d5d50932db1aefe428efc3755fad5f6c0",
        ),
        // A v1 certificate: no [0] version element to skip.
        (
            include_str!("testdata/ca-ed25519-v1.crt"),
            "sha256:4fc4a57ab747202fe554b5f40a3d616bd5e446aafa52b1cf1178e90b6dac8fd1",
        ),
    ];

    #[test]
    fn pins_match_openssl_for_rsa_ecdsa_and_ed25519() {
        for (pem, want) in FIXTURES {
            assert_eq!(pin(&der(pem)).unwrap(), want);
        }
    }

    #[test]
    fn any_cert_of_a_bundle_may_match_any_pin() {
        let certs: Vec<Vec<u8>> = FIXTURES.iter().map(|(p, _)| der(p)).collect();
        let ec = FIXTURES[1].1.to_string();
        let other = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            matching(
                &certs,
                &[other.clone(), ec.to_uppercase().replace("SHA256", "sha256")]
            )
            .unwrap(),
            Ok(ec)
        );
        let found = matching(&certs[..1], &[other]).unwrap().unwrap_err();
        assert_eq!(found, vec![FIXTURES[0].1.to_string()]);
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let good = der(FIXTURES[1].0);
        for cut in 0..good.len() {
            assert!(
                subject_public_key_info(&good[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(subject_public_key_info(&trailing)
            .unwrap_err()
            .to_string()
            .contains("after the certificate"));
        for (input, why) in [
            (&[0x30, 0x80, 0, 0][..], "Certificate: indefinite"),
            (&[0x30, 0x85, 1, 1, 1, 1, 1][..], "a length of 5 bytes"),
            (&[0x1f, 0x01, 0][..], "multi-byte tag"),
            (&[0x31, 0x00][..], "Certificate: tag 0x31"),
            (&[0x30, 0x02, 0x30, 0x00][..], "serialNumber: truncated"),
        ] {
            let e = subject_public_key_info(input).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        // Every single-byte corruption either still parses to some SPKI or errors.
        for i in 0..good.len() {
            let mut c = good.clone();
            c[i] ^= 0xff;
            let _ = subject_public_key_info(&c);
        }
    }

    #[test]
    fn long_form_lengths() {
        // SEQUENCE { INTEGER 1 } with lengths in long form: DER forbids it, but the
        // walker only has to find boundaries correctly.
        let (e, rest) = element(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x01, 0xff]).unwrap();
        assert_eq!(e.contents, &[0x02, 0x01, 0x01]);
        assert_eq!(e.raw.len(), 6);
        assert_eq!(rest, &[0xff]);
    }
}
