//! Authenticode signatures on PE32+ images, as UEFI Secure Boot verifies them: the image
//! hash of Microsoft's "Windows Authenticode Portable Executable Signature Format", a
//! PKCS#7 SignedData over an SpcIndirectDataContent that carries it, and the attribute
//! certificate table (one WIN_CERTIFICATE) appended to the file.
//!
//! The DER is written here, field by field, because firmware reads parts of it at fixed
//! places: EDK2 finds the digest algorithm at byte 32 of the SignedData (which holds only
//! when every outer length takes two bytes, true for any signature with a certificate)
//! and takes the image digest from the last bytes of the SpcIndirectDataContent.
//! `sbverify --cert` (Debian's sbsigntool) is the independent check in the tests.

use der::oid::ObjectIdentifier;
use der::Encode;
use sha2::{Digest, Sha256};

use super::pe::pe_checksum;
use super::uki_signer::{SignatureAlgorithm, UkiSigner};

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SPC_INDIRECT_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4");
const SPC_SP_OPUS_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.12");
const SPC_PE_IMAGE_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.15");

/// WIN_CERTIFICATE: revision 2.0, type PKCS_SIGNED_DATA.
const WIN_CERT_REVISION_2_0: u16 = 0x0200;
const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;
const IMAGE_DIRECTORY_ENTRY_SECURITY: usize = 4;
const PE32_PLUS: u16 = 0x20b;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticodeError {
    #[error("not a PE32+ image: {0}")]
    NotPe(String),
    #[error("the image is signed already")]
    AlreadySigned,
    #[error("encoding the signature: {0}")]
    Encode(String),
}

/// Where the parts of a PE32+ image the hash skips or walks are.
struct Layout {
    checksum: usize,
    security_entry: usize,
    size_of_headers: usize,
    /// (file offset, size) of each section's raw data, in file order.
    sections: Vec<(usize, usize)>,
    /// The attribute certificate table, if there is one.
    certificates: Option<(usize, usize)>,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, AuthenticodeError> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| AuthenticodeError::NotPe(format!("truncated at byte {at}")))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, AuthenticodeError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| AuthenticodeError::NotPe(format!("truncated at byte {at}")))
}

fn layout(image: &[u8]) -> Result<Layout, AuthenticodeError> {
    let bad = |what: &str| AuthenticodeError::NotPe(what.to_string());
    if image.get(..2) != Some(b"MZ") {
        return Err(bad("no MZ header"));
    }
    let pe = u32_at(image, 0x3c)? as usize;
    if image.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err(bad("no PE signature"));
    }
    let coff = pe + 4;
    let section_count = usize::from(u16_at(image, coff + 2)?);
    let optional_size = usize::from(u16_at(image, coff + 16)?);
    let opt = coff + 20;
    if u16_at(image, opt)? != PE32_PLUS {
        return Err(bad("the optional header is not PE32+"));
    }
    if u32_at(image, opt + 108)? as usize <= IMAGE_DIRECTORY_ENTRY_SECURITY {
        return Err(bad("no certificate table entry among the data directories"));
    }
    let security_entry = opt + 112 + 8 * IMAGE_DIRECTORY_ENTRY_SECURITY;
    let size_of_headers = u32_at(image, opt + 60)? as usize;
    if size_of_headers > image.len() || size_of_headers < security_entry + 8 {
        return Err(bad("SizeOfHeaders is outside the file"));
    }
    let mut sections = Vec::with_capacity(section_count);
    for i in 0..section_count {
        let header = opt + optional_size + 40 * i;
        let size = u32_at(image, header + 16)? as usize;
        let offset = u32_at(image, header + 20)? as usize;
        if size == 0 {
            continue;
        }
        if offset.checked_add(size).is_none_or(|end| end > image.len()) {
            return Err(bad("a section's raw data lies outside the file"));
        }
        sections.push((offset, size));
    }
    sections.sort_unstable();
    let (cert_offset, cert_size) = (
        u32_at(image, security_entry)? as usize,
        u32_at(image, security_entry + 4)? as usize,
    );
    let certificates = if cert_size == 0 {
        None
    } else if cert_offset.checked_add(cert_size) != Some(image.len()) {
        return Err(bad("the certificate table is not at the end of the file"));
    } else {
        Some((cert_offset, cert_size))
    };
    Ok(Layout {
        checksum: opt + 64,
        security_entry,
        size_of_headers,
        sections,
        certificates,
    })
}

/// The Authenticode SHA-256 image hash: the headers without CheckSum and the certificate
/// table entry, each section's raw data in file order, then whatever follows the sections
/// up to the certificate table.
pub fn image_hash(image: &[u8]) -> Result<[u8; 32], AuthenticodeError> {
    let l = layout(image)?;
    let mut h = Sha256::new();
    h.update(&image[..l.checksum]);
    h.update(&image[l.checksum + 4..l.security_entry]);
    h.update(&image[l.security_entry + 8..l.size_of_headers]);
    let mut hashed = l.size_of_headers;
    for &(offset, size) in &l.sections {
        h.update(&image[offset..offset + size]);
        hashed = hashed.max(offset + size);
    }
    let end = l.certificates.map_or(image.len(), |(offset, _)| offset);
    if end > hashed {
        h.update(&image[hashed..end]);
    }
    Ok(h.finalize().into())
}

/// `image` with an Authenticode signature by `signer` appended, the certificate table
/// entry pointing at it and the CheckSum updated.
pub fn sign(image: &[u8], signer: &UkiSigner) -> Result<Vec<u8>, AuthenticodeError> {
    let l = layout(image)?;
    if l.certificates.is_some() {
        return Err(AuthenticodeError::AlreadySigned);
    }
    // The table starts 8-byte aligned; the padding before it is hashed as trailing data.
    let mut out = image.to_vec();
    out.resize(image.len().next_multiple_of(8), 0);
    let hash = image_hash(&out)?;
    let pkcs7 = signed_data(&hash, signer)?;
    let length = (8 + pkcs7.len()).next_multiple_of(8);
    let table_offset = out.len();
    let too_large = || AuthenticodeError::Encode("the signed image would exceed 4 GiB".into());
    let length32 = u32::try_from(length).map_err(|_| too_large())?;
    let offset32 = u32::try_from(table_offset).map_err(|_| too_large())?;
    out.extend_from_slice(&length32.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_REVISION_2_0.to_le_bytes());
    out.extend_from_slice(&WIN_CERT_TYPE_PKCS_SIGNED_DATA.to_le_bytes());
    out.extend_from_slice(&pkcs7);
    out.resize(table_offset + length, 0);
    out[l.security_entry..l.security_entry + 4].copy_from_slice(&offset32.to_le_bytes());
    out[l.security_entry + 4..l.security_entry + 8].copy_from_slice(&length32.to_le_bytes());
    let checksum = pe_checksum(&out);
    out[l.checksum..l.checksum + 4].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// One DER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
}

/// `[n]` constructed: EXPLICIT tagging, or IMPLICIT over a SET/SEQUENCE.
fn context(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

fn oid(o: &ObjectIdentifier) -> Vec<u8> {
    tlv(0x06, o.as_bytes())
}

fn octets(b: &[u8]) -> Vec<u8> {
    tlv(0x04, b)
}

/// AlgorithmIdentifier with NULL parameters (SHA-256, rsaEncryption).
fn algorithm_with_null(o: &ObjectIdentifier) -> Vec<u8> {
    sequence(&[&oid(o), &[0x05, 0x00]])
}

fn attribute(kind: &ObjectIdentifier, value: &[u8]) -> Vec<u8> {
    sequence(&[&oid(kind), &set(&[value])])
}

/// SpcIndirectDataContent: "a PE image" (SpcPeImageData with no flags and the obsolete
/// file link every signer writes), then the image's SHA-256 DigestInfo, last.
fn spc_indirect_data_content(image_hash: &[u8; 32]) -> Vec<u8> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    // flags: empty BIT STRING; file: [0] EXPLICIT SpcLink.file [2] EXPLICIT
    // SpcString.unicode [0] IMPLICIT BMPString.
    let pe_image_data = sequence(&[
        &[0x03, 0x01, 0x00],
        &context(0, &context(2, &tlv(0x80, &obsolete))),
    ]);
    sequence(&[
        &sequence(&[&oid(&SPC_PE_IMAGE_DATA), &pe_image_data]),
        &sequence(&[&algorithm_with_null(&SHA256), &octets(image_hash)]),
    ])
}

/// The SignedData ContentInfo (PKCS#7 v1.5, versions 1) over the image hash.
fn signed_data(image_hash: &[u8; 32], signer: &UkiSigner) -> Result<Vec<u8>, AuthenticodeError> {
    let encode = |e: der::Error| AuthenticodeError::Encode(e.to_string());
    let content = spc_indirect_data_content(image_hash);
    // The message digest covers the content's value, without its SEQUENCE tag and length.
    let header = if content[1] < 0x80 {
        2
    } else {
        2 + usize::from(content[1] & 0x7f)
    };
    let content_digest = Sha256::digest(&content[header..]);
    let mut attributes = [
        attribute(&CONTENT_TYPE, &oid(&SPC_INDIRECT_DATA)),
        attribute(&SPC_SP_OPUS_INFO, &sequence(&[])),
        attribute(&MESSAGE_DIGEST, &octets(&content_digest)),
    ];
    // DER orders a SET OF by the encodings.
    attributes.sort();
    let attributes: Vec<&[u8]> = attributes.iter().map(Vec::as_slice).collect();
    // What is signed is the attributes as a SET; the SignerInfo holds them as [0] IMPLICIT.
    let signature = signer.sign(&set(&attributes));
    let signature_algorithm = match signer.algorithm() {
        SignatureAlgorithm::Rsa => algorithm_with_null(&RSA_ENCRYPTION),
        SignatureAlgorithm::EcdsaP256 => sequence(&[&oid(&ECDSA_WITH_SHA256)]),
    };
    let tbs = &signer.certificate().tbs_certificate;
    let issuer_and_serial = sequence(&[
        &tbs.issuer.to_der().map_err(encode)?,
        &tbs.serial_number.to_der().map_err(encode)?,
    ]);
    let version_1 = [0x02, 0x01, 0x01];
    let signer_info = sequence(&[
        &version_1,
        &issuer_and_serial,
        &algorithm_with_null(&SHA256),
        &context(0, &attributes.concat()),
        &signature_algorithm,
        &octets(&signature),
    ]);
    let certificate = signer.certificate().to_der().map_err(encode)?;
    let signed = sequence(&[
        &version_1,
        &set(&[&algorithm_with_null(&SHA256)]),
        &sequence(&[&oid(&SPC_INDIRECT_DATA), &context(0, &content)]),
        &context(0, &certificate),
        &set(&[&signer_info]),
    ]);
    Ok(sequence(&[&oid(&SIGNED_DATA), &context(0, &signed)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::pe::{PeImage, READ_ONLY_DATA};
    use crate::emit::uki_signer::tests::openssl_key_and_cert;
    use std::path::Path;
    use std::process::Command;

    fn unsigned() -> Vec<u8> {
        let mut image = crate::emit::efi_stub::pe_from_elf(
            &crate::emit::efi_stub::tests::tiny_shared_object(None),
            "tiny.so",
        )
        .unwrap();
        image
            .push_section(".linux", b"MZ-kernel".repeat(100), READ_ONLY_DATA)
            .unwrap();
        image.to_bytes().unwrap()
    }

    fn signer(newkey: &[&str]) -> Option<(UkiSigner, String)> {
        let Some((key, cert)) = openssl_key_and_cert(newkey) else {
            harmony_test_support::skip("tool openssl not installed: Debian package openssl");
            return None;
        };
        Some((UkiSigner::from_pem(&key, &cert).unwrap(), cert))
    }

    /// `sbverify --cert CERT FILE`: (accepted, its output).
    fn sbverify(dir: &Path, cert: &str, image: &[u8]) -> Option<(bool, String)> {
        let (cert_path, image_path) = (dir.join("db.crt"), dir.join("uki.efi"));
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&image_path, image).unwrap();
        let out = Command::new("sbverify")
            .arg("--cert")
            .arg(&cert_path)
            .arg(&image_path)
            .output()
            .ok()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some((out.status.success(), text))
    }

    #[test]
    fn sbverify_accepts_our_rsa_and_ecdsa_signatures_and_refuses_tampering() {
        let dir = tempfile::tempdir().unwrap();
        for newkey in [
            &["-newkey", "rsa:2048"][..],
            &["-newkey", "rsa:4096"],
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
        ] {
            let Some((signer, cert)) = signer(newkey) else {
                return;
            };
            let image = unsigned();
            let signed = sign(&image, &signer).unwrap();
            assert_eq!(image_hash(&signed).unwrap(), image_hash(&image).unwrap());
            let Some((ok, text)) = sbverify(dir.path(), &cert, &signed) else {
                harmony_test_support::skip(
                    "tool sbverify not installed: Debian package sbsigntool",
                );
                return;
            };
            assert!(
                ok && text.contains("Signature verification OK"),
                "{newkey:?}: {text}"
            );
            assert_eq!(sign(&image, &signer).unwrap(), signed, "deterministic");

            // One byte of the kernel changed: the hash no longer matches.
            let mut tampered = signed.clone();
            let at = tampered.windows(9).position(|w| w == b"MZ-kernel").unwrap();
            tampered[at + 3] ^= 1;
            let (ok, text) = sbverify(dir.path(), &cert, &tampered).unwrap();
            assert!(!ok, "a tampered image was accepted: {text}");
            // Another certificate than the signer's is not trusted.
            let (_, other) = super::super::uki_signer::tests::openssl_key_and_cert(newkey).unwrap();
            let (ok, text) = sbverify(dir.path(), &other, &signed).unwrap();
            assert!(!ok, "accepted under a foreign certificate: {text}");
        }
    }

    #[test]
    fn edk2_finds_the_digest_algorithm_at_byte_32_and_the_digest_last() {
        let Some((signer, _)) = signer(&["-newkey", "rsa:2048"]) else {
            return;
        };
        let image = unsigned();
        let signed = sign(&image, &signer).unwrap();
        let l = layout(&signed).unwrap();
        let (offset, size) = l.certificates.unwrap();
        assert_eq!(offset % 8, 0);
        assert_eq!(size % 8, 0);
        assert_eq!(u32_at(&signed, offset).unwrap() as usize, size);
        let pkcs7 = &signed[offset + 8..offset + size];
        assert_eq!(&pkcs7[..2], &[0x30, 0x82], "two-byte outer length");
        assert_eq!(&pkcs7[32..32 + 9], SHA256.as_bytes());
        let content = spc_indirect_data_content(&image_hash(&image).unwrap());
        assert!(content.ends_with(&image_hash(&image).unwrap()));
        assert_eq!(pe_checksum(&signed), u32_at(&signed, l.checksum).unwrap());
    }

    #[test]
    fn signed_images_and_non_pe_files_are_refused() {
        let Some((signer, _)) = signer(&["-newkey", "rsa:2048"]) else {
            return;
        };
        let signed = sign(&unsigned(), &signer).unwrap();
        assert_eq!(
            sign(&signed, &signer),
            Err(AuthenticodeError::AlreadySigned)
        );
        assert!(matches!(
            sign(b"MZ but nothing else", &signer),
            Err(AuthenticodeError::NotPe(_))
        ));
        let image: PeImage = crate::emit::efi_stub::pe_from_elf(
            &crate::emit::efi_stub::tests::tiny_shared_object(None),
            "tiny.so",
        )
        .unwrap();
        assert!(image_hash(&image.to_bytes().unwrap()).is_ok());
    }
}
