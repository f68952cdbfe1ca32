//! `harmony push --sign-key` and `verify: {key}` against a real registry on loopback
//! (Debian's `docker-registry`). The independent check is skopeo reading the signature
//! manifest and payload from the registry and openssl verifying the ECDSA signature over
//! the payload with the public key. (skopeo's own `sigstoreSigned` policy check cannot be
//! used here: Debian bookworm's skopeo 1.9.3 is built with sigstore disabled and rejects
//! every such policy with "Debian-local change: sigstore disabled".) A recipe whose base
//! says `verify` builds from the signed image and is refused, naming the problem, for an
//! unsigned one and one signed with another key.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use harmony::build::default_base::ensure_default_base;
use support::*;

/// An ECDSA P-256 key pair made by openssl: (private PKCS#8 PEM, public PEM).
fn key_pair(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&key));
    run(Command::new("openssl")
        .arg("pkey")
        .arg("-in")
        .arg(&key)
        .arg("-pubout")
        .arg("-out")
        .arg(&public));
    (key, public)
}

/// What the registry holds beside `image` (`HOST/REPO`) for `digest`, read by skopeo: the
/// signature manifest's layer (its payload bytes and the base64 signature annotation).
fn skopeo_signature(work: &Path, image: &str, digest: &str) -> Result<(Vec<u8>, String), String> {
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{image}:{tag}"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).to_string());
    }
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json",
        "{manifest}"
    );
    let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap()
        .to_string();
    let dest = tempfile::tempdir_in(work).unwrap();
    run(Command::new("skopeo")
        .args(["copy", "--insecure-policy", "--src-tls-verify=false"])
        .arg(format!("docker://{image}:{tag}"))
        .arg(format!("dir:{}", dest.path().display())));
    let hex = layer["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let payload = std::fs::read(dest.path().join(hex)).unwrap();
    Ok((payload, signature))
}

/// `openssl dgst -sha256 -verify PUBLIC -signature SIG PAYLOAD`: true when it verifies.
fn openssl_verifies(work: &Path, public: &Path, payload: &[u8], signature_b64: &str) -> bool {
    use base64::Engine;
    let payload_file = work.join("payload.json");
    let signature_file = work.join("signature.der");
    std::fs::write(&payload_file, payload).unwrap();
    std::fs::write(
        &signature_file,
        base64::engine::general_purpose::STANDARD
            .decode(signature_b64)
            .unwrap(),
    )
    .unwrap();
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&signature_file)
        .arg(&payload_file)
        .output()
        .unwrap()
        .status
        .success()
}

fn build_from(work: &Path, name: &str, base: &str, public: &Path) -> Output {
    let recipe = work.join(format!("{name}.yaml"));
    std::fs::write(
        &recipe,
        format!(
            "name: {name}\nversion: 1.0.0\n\
             base:\n  image: docker://{base}\n  verify:\n    key: {}\n\
             outputs: [oci]\n",
            public.display()
        ),
    )
    .unwrap();
    harmony()
        .arg("build")
        .arg(&recipe)
        .arg("--out")
        .arg(work.join(format!("out-{name}")))
        .arg("--cache")
        .arg(work.join("cache"))
        .output()
        .unwrap()
}

#[test]
fn signed_push_verifies_with_openssl_and_recipes_refuse_unsigned_and_wrongly_signed_bases() {
    if !tools_present() {
        return;
    }
    let registry = Registry::start(None);
    let work = tempfile::tempdir().unwrap();
    let (signer, signer_pub) = key_pair(work.path(), "signer");
    let (other, other_pub) = key_pair(work.path(), "other");
    let layout = ensure_default_base(&cache_dir(), 0).expect("default base");
    let digest = layout_digest(&layout);

    let push = |repo: &str, key: Option<&Path>| {
        let mut cmd = harmony();
        cmd.arg("push").arg(&layout).arg(registry.at(repo));
        if let Some(key) = key {
            cmd.arg("--sign-key").arg(key);
        }
        String::from_utf8(run(&mut cmd).stdout).unwrap()
    };
    let printed = push("harmony/signed:1", Some(&signer));
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    assert!(
        printed.contains(&format!("{}:{sig_tag}", registry.at("harmony/signed"))),
        "{printed}"
    );
    push("harmony/unsigned:1", None);
    push("harmony/wrong:1", Some(&other));

    // skopeo reads what the registry holds, openssl checks the signature.
    let (payload, signature) =
        skopeo_signature(work.path(), &registry.at("harmony/signed"), &digest).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        claims,
        serde_json::json!({
            "critical": {
                "identity": {"docker-reference": registry.at("harmony/signed")},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": null,
        })
    );
    assert!(openssl_verifies(
        work.path(),
        &signer_pub,
        &payload,
        &signature
    ));
    let (other_payload, other_signature) =
        skopeo_signature(work.path(), &registry.at("harmony/wrong"), &digest).unwrap();
    assert!(!openssl_verifies(
        work.path(),
        &signer_pub,
        &other_payload,
        &other_signature
    ));
    assert!(openssl_verifies(
        work.path(),
        &other_pub,
        &other_payload,
        &other_signature
    ));
    let unsigned = skopeo_signature(work.path(), &registry.at("harmony/unsigned"), &digest);
    assert!(unsigned.is_err(), "a signature for the unsigned push");

    // A recipe's base with verify: {key}.
    let signed = build_from(
        work.path(),
        "signed",
        &format!("{}@{digest}", registry.at("harmony/signed")),
        &signer_pub,
    );
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let unsigned = build_from(
        work.path(),
        "unsigned",
        &format!("{}@{digest}", registry.at("harmony/unsigned")),
        &signer_pub,
    );
    let err = String::from_utf8_lossy(&unsigned.stderr);
    assert!(!unsigned.status.success());
    assert!(
        err.contains("verifying the base image's signature")
            && err.contains(&format!(
                "not signed: no signature manifest at tag {sig_tag}"
            )),
        "{err}"
    );
    let wrong = build_from(
        work.path(),
        "wrong",
        &format!("{}@{digest}", registry.at("harmony/wrong")),
        &signer_pub,
    );
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success());
    assert!(
        err.contains("verifies with the key")
            && err.contains("the signature does not verify with this key"),
        "{err}"
    );
    assert!(!work.path().join("out-wrong").exists());
}
