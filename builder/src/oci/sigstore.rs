//! Image signatures in sigstore's format, as cosign writes them, so that cosign, skopeo and
//! podman (`sigstoreSigned` in policy.json) verify what `harmony push --sign-key` signs.
//!
//! The signed payload is a "simple signing" document naming the repository and the image
//! manifest's digest; the ECDSA P-256 signature (SHA-256, ASN.1 DER, base64) sits in the
//! `dev.cosignproject.cosign/signature` annotation of the one layer of an OCI manifest
//! whose blob is the payload, pushed under the tag `sha256-<hex>.sig` of the same
//! repository. Keys are PEM: a PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) private
//! key to sign, a `PUBLIC KEY` to verify. cosign's own encrypted key files are not read.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey};

use super::client::{Body, Client, RegistryOptions};
use super::digest::sha256_digest;
use super::error::OciError;
use super::push::{check_digest_header, finish_upload, has_blob, start_upload};
use super::reference::canonical_host;

pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIGNATURE_TYPE: &str = "cosign container image signature";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Signature manifests and payloads are small; more than this is not a signature.
const MAX_SIGNATURE_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{path}: cannot read the key: {source}")]
    ReadKey {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not {expected} (PEM, ECDSA P-256): {problem}")]
    BadKey {
        path: String,
        expected: &'static str,
        problem: String,
    },
    #[error("{image}: not signed: no signature manifest at tag {tag}")]
    Unsigned { image: String, tag: String },
    #[error("{image}: no signature at tag {tag} verifies with the key {key}: {}", problems.join("; "))]
    NoValidSignature {
        image: String,
        tag: String,
        key: String,
        problems: Vec<String>,
    },
    #[error(transparent)]
    Oci(#[from] OciError),
}

/// The tag cosign stores an image's signatures under: `sha256-<hex>.sig`.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// The simple-signing payload (keys in cosign's order, which is also sorted order).
pub fn payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let doc = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    doc.to_string().into_bytes()
}

fn read_pem(path: &Path) -> Result<String, SignatureError> {
    std::fs::read_to_string(path).map_err(|source| SignatureError::ReadKey {
        path: path.display().to_string(),
        source,
    })
}

/// A PEM private key: PKCS#8 (`openssl genpkey -algorithm EC -pkeyopt
/// ec_paramgen_curve:P-256`) or SEC1 (`openssl ecparam -genkey -name prime256v1`).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, SignatureError> {
    let pem = read_pem(path)?;
    let key = if pem.contains("-----BEGIN EC PRIVATE KEY-----") {
        p256::SecretKey::from_sec1_pem(&pem).map_err(|e| e.to_string())
    } else {
        p256::SecretKey::from_pkcs8_pem(&pem).map_err(|e| e.to_string())
    };
    key.map(SigningKey::from)
        .map_err(|problem| SignatureError::BadKey {
            path: path.display().to_string(),
            expected: "a private key",
            problem,
        })
}

/// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `cosign generate-key-pair` and `openssl
/// pkey -pubout` write it.
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, SignatureError> {
    let pem = read_pem(path)?;
    VerifyingKey::from_public_key_pem(&pem).map_err(|e| SignatureError::BadKey {
        path: path.display().to_string(),
        expected: "a public key",
        problem: e.to_string(),
    })
}

/// The repository as signatures name it: `HOST/REPOSITORY`, Docker Hub as `docker.io`.
fn docker_reference(registry: &str, repository: &str) -> String {
    format!("{}/{repository}", canonical_host(registry))
}

/// Sign the image `manifest_digest` pushed to `registry/repository`: upload the payload
/// and a config, then the signature manifest under its `.sig` tag (replacing an earlier
/// one). Returns the signature's reference.
pub fn sign_pushed(
    registry: &str,
    repository: &str,
    manifest_digest: &str,
    key: &SigningKey,
    opts: &RegistryOptions,
) -> Result<String, SignatureError> {
    let payload = payload(&docker_reference(registry, repository), manifest_digest);
    let signature: Signature = key.sign(&payload);
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der());
    let payload_digest = sha256_digest(&payload);
    let config = serde_json::json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"diff_ids": [payload_digest], "type": "layers"},
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": config.len(), "digest": sha256_digest(&config)},
        "layers": [{
            "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
            "size": payload.len(),
            "digest": payload_digest,
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }],
    })
    .to_string()
    .into_bytes();

    let mut client = Client::new(registry, repository, opts, true);
    for blob in [&config, &payload] {
        put_blob(&mut client, blob)?;
    }
    let tag = signature_tag(manifest_digest);
    let url = format!("{}/manifests/{tag}", client.base);
    let response = client.send(
        "PUT",
        &url,
        &[("Content-Type", OCI_MANIFEST)],
        Body::Bytes(&manifest),
    )?;
    check_digest_header(&response, &sha256_digest(&manifest), &url)?;
    Ok(format!("docker://{registry}/{repository}:{tag}"))
}

fn put_blob(client: &mut Client, bytes: &[u8]) -> Result<(), OciError> {
    let digest = sha256_digest(bytes);
    if has_blob(client, &digest)? {
        return Ok(());
    }
    let location = start_upload(client)?;
    finish_upload(client, &location, &digest, Body::Bytes(bytes))
}

/// Require a signature by `key` over the image `manifest_digest` of `registry/repository`:
/// at least one layer of its `.sig` manifest must carry a signature that verifies over its
/// payload, and the payload must name this image's digest and repository.
pub fn verify_pulled(
    registry: &str,
    repository: &str,
    manifest_digest: &str,
    key: &VerifyingKey,
    key_path: &Path,
    opts: &RegistryOptions,
) -> Result<(), SignatureError> {
    let image = format!("docker://{registry}/{repository}@{manifest_digest}");
    let tag = signature_tag(manifest_digest);
    let mut client = Client::new(registry, repository, opts, false);
    let url = format!("{}/manifests/{tag}", client.base);
    let manifest = match client.try_send("GET", &url, &[("Accept", OCI_MANIFEST)], Body::Empty)? {
        Ok(response) => read_limited(response, &url)?,
        Err(refused) if refused.status == 404 => {
            return Err(SignatureError::Unsigned { image, tag });
        }
        Err(refused) => {
            return Err(OciError::Registry {
                url: format!("GET {url}"),
                problem: format!("HTTP {}: {}", refused.status, refused.body),
            }
            .into())
        }
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest).map_err(|e| OciError::Document {
            what: format!("{image}: signature manifest {tag}"),
            problem: e.to_string(),
        })?;
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        match check_layer(
            &mut client,
            layer,
            key,
            &docker_reference(registry, repository),
            manifest_digest,
        ) {
            Ok(()) => return Ok(()),
            Err(problem) => problems.push(format!("layer {i}: {problem}")),
        }
    }
    if problems.is_empty() {
        problems.push("the signature manifest has no layers".to_string());
    }
    Err(SignatureError::NoValidSignature {
        image,
        tag,
        key: key_path.display().to_string(),
        problems,
    })
}

/// One signature layer: payload blob fetched and checked against its digest, the
/// annotation's signature verified over it, then the payload's claims compared.
fn check_layer(
    client: &mut Client,
    layer: &serde_json::Value,
    key: &VerifyingKey,
    expected_reference: &str,
    manifest_digest: &str,
) -> Result<(), String> {
    if layer["mediaType"] != SIMPLE_SIGNING_MEDIA_TYPE {
        return Err(format!(
            "media type {} is not {SIMPLE_SIGNING_MEDIA_TYPE}",
            layer["mediaType"]
        ));
    }
    let signature = layer["annotations"][SIGNATURE_ANNOTATION]
        .as_str()
        .ok_or(format!("no {SIGNATURE_ANNOTATION} annotation"))?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|e| format!("signature is not base64: {e}"))?;
    let signature =
        Signature::from_der(&signature).map_err(|e| format!("signature is not ECDSA DER: {e}"))?;
    let digest = layer["digest"].as_str().ok_or("no digest")?;
    let url = format!("{}/blobs/{digest}", client.base);
    let response = client
        .send("GET", &url, &[], Body::Empty)
        .map_err(|e| e.to_string())?;
    let payload = read_limited(response, &url).map_err(|e| e.to_string())?;
    if sha256_digest(&payload) != digest {
        return Err(format!("payload does not match its digest {digest}"));
    }
    key.verify(&payload, &signature)
        .map_err(|_| "the signature does not verify with this key".to_string())?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    let critical = &claims["critical"];
    if critical["type"] != SIGNATURE_TYPE {
        return Err(format!(
            "payload type {} is not {SIGNATURE_TYPE:?}",
            critical["type"]
        ));
    }
    if critical["image"]["docker-manifest-digest"] != manifest_digest {
        return Err(format!(
            "signed for image {}, not {manifest_digest}",
            critical["image"]["docker-manifest-digest"]
        ));
    }
    let identity = critical["identity"]["docker-reference"]
        .as_str()
        .unwrap_or_default();
    // cosign writes the repository; a tag or digest after it still names the same one.
    let repository = identity.split_once('@').map_or(identity, |(r, _)| r);
    let repository = match repository.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => repository,
    };
    if repository != expected_reference {
        return Err(format!(
            "signed for repository {identity:?}, not {expected_reference:?}"
        ));
    }
    Ok(())
}

/// [`verify_pulled`] for an image the recipe names, `key_path` the recipe's `verify.key`.
pub fn require_signature(
    image: &super::ImageRef,
    manifest_digest: &str,
    key_path: &Path,
    opts: &RegistryOptions,
) -> Result<(), SignatureError> {
    let super::RegistryParts {
        registry,
        repository,
        ..
    } = image
        .registry_parts("signatures are read from a registry; verify needs a docker:// image")?;
    let key = load_verifying_key(key_path)?;
    verify_pulled(registry, repository, manifest_digest, &key, key_path, opts)?;
    tracing::info!("{image}: signature verified with {}", key_path.display());
    Ok(())
}

fn read_limited(response: ureq::Response, url: &str) -> Result<Vec<u8>, OciError> {
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_SIGNATURE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| OciError::Registry {
            url: url.to_string(),
            problem: e.to_string(),
        })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns_simple_signing_document() {
        let p = payload("127.0.0.1:5000/harmony/node", "sha256:abc");
        assert_eq!(
            String::from_utf8(p).unwrap(),
            "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/harmony/node\"},\
             \"image\":{\"docker-manifest-digest\":\"sha256:abc\"},\
             \"type\":\"cosign container image signature\"},\"optional\":null}"
        );
        assert_eq!(signature_tag("sha256:abc"), "sha256-abc.sig");
    }

    #[test]
    fn a_public_key_where_a_private_key_belongs_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key.pem");
        std::fs::write(
            &file,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let err = load_signing_key(&file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not a private key (PEM, ECDSA P-256)",
                file.display()
            )),
            "{err}"
        );
    }
}
