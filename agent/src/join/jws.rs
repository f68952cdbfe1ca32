//! The detached JWS that signs cluster-info (RFC 7515 appendix F, as Kubernetes'
//! cluster-bootstrap writes it): `base64url(header) + ".." + base64url(signature)`, the
//! header exactly `{"alg":"HS256","kid":"<token-id>"}`, HMAC-SHA256 keyed with the token's
//! 16-character SECRET over `base64url(header) + "." + base64url(kubeconfig)`.
//!
//! cluster-bootstrap checks a signature by computing its own and comparing the strings,
//! so any other header (another alg, extra fields, other spacing) fails; we do the same,
//! with a constant-time comparison of the MAC.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Why a signature is not the one the token would make. Deliberately without the
/// secret or the expected MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("not a detached JWS (expected HEADER..SIGNATURE)")]
    NotDetached,
    #[error("its header is not {{\"alg\":\"HS256\",\"kid\":\"{0}\"}}")]
    Header(String),
    #[error("its signature is not base64url")]
    Encoding,
    #[error("its HMAC-SHA256 does not match the bootstrap token")]
    Mismatch,
}

fn header_b64(token_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{token_id}"}}"#))
}

fn signing_input(header_b64: &str, content: &[u8]) -> Vec<u8> {
    format!("{header_b64}.{}", URL_SAFE_NO_PAD.encode(content)).into_bytes()
}

/// Check `detached` against `content` (the raw kubeconfig string, byte for byte).
pub fn verify(
    detached: &str,
    content: &[u8],
    token_id: &str,
    token_secret: &str,
) -> Result<(), JwsError> {
    let (header, signature) = detached.split_once("..").ok_or(JwsError::NotDetached)?;
    if signature.contains('.') {
        return Err(JwsError::NotDetached);
    }
    let expected_header = header_b64(token_id);
    if header != expected_header {
        return Err(JwsError::Header(token_id.to_string()));
    }
    let mac = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| JwsError::Encoding)?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_secret.as_bytes());
    // ring compares in constant time.
    ring::hmac::verify(&key, &signing_input(&expected_header, content), &mac)
        .map_err(|_| JwsError::Mismatch)
}

/// The signature kube-controller-manager's bootstrap signer would write; tests use it
/// to build servers (and check it against vectors made elsewhere).
#[cfg(test)]
pub fn sign(content: &[u8], token_id: &str, token_secret: &str) -> String {
    let header = header_b64(token_id);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, token_secret.as_bytes());
    let tag = ring::hmac::sign(&key, &signing_input(&header, content));
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Kubernetes' own vectors: staging/src/k8s.io/cluster-bootstrap/token/jws/jws_test.go.
    const CONTENT: &str = "Hello from the other side. I must have called a thousand times.";
    const ID: &str = "joshua";

    #[test]
    fn kubernetes_vectors_verify() {
        for (secret, content, sig) in [
            (
                "my voice is my passcode",
                CONTENT,
                "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8",
            ),
            (
                "my voice is my passcode",
                "",
                "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..7Ui1ALizW4jXphVUB7xUqC9vLYLL9RZeOFfVLoB7Tgk",
            ),
            (
                "my voice is my passcode. my voice is my passcode",
                CONTENT,
                "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..SFoKn0-YxqnvpSExt4LuCZ_7pvIBdX3SoUO_NsTpkdg",
            ),
        ] {
            assert_eq!(verify(sig, content.as_bytes(), ID, secret), Ok(()), "{sig}");
            assert_eq!(sign(content.as_bytes(), ID, secret), sig);
        }
    }

    #[test]
    fn python_hmac_vector_verifies() {
        // Made independently:
        // python3 -c 'import hmac,hashlib,base64,json; b=lambda x: base64.urlsafe_b64encode(x).rstrip(b"=");
        //   h=b(b"{\"alg\":\"HS256\",\"kid\":\"abcdef\"}"); c=b"apiVersion: v1\nkind: Config\n";
        //   print((h+b".."+b(hmac.new(b"0123456789abcdef", h+b"."+b(c), hashlib.sha256).digest())).decode())'
        let sig =
            "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..vH_kT4yiol-nrAWgjfCYqvum5wsKETXe0S7OOp1VgnE";
        let content = b"apiVersion: v1\nkind: Config\n";
        assert_eq!(verify(sig, content, "abcdef", "0123456789abcdef"), Ok(()));
    }

    #[test]
    fn anything_else_fails() {
        let good = sign(CONTENT.as_bytes(), ID, "my voice is my passcode");
        let v = |sig: &str, content: &str, id: &str, secret: &str| {
            verify(sig, content.as_bytes(), id, secret)
        };
        let secret = "my voice is my passcode";
        assert_eq!(
            v(&good, CONTENT, ID, "my voice is my passcodE"),
            Err(JwsError::Mismatch)
        );
        // One byte more in the kubeconfig (a re-serialised YAML would differ like this).
        assert_eq!(
            v(&good, &format!("{CONTENT}\n"), ID, secret),
            Err(JwsError::Mismatch)
        );
        assert_eq!(
            v(&good, CONTENT, "joshub", secret),
            Err(JwsError::Header("joshub".into()))
        );
        let attached = good.replacen("..", ".Y29udGVudA.", 1);
        assert_eq!(
            v(&attached, CONTENT, ID, secret),
            Err(JwsError::NotDetached)
        );
        assert_eq!(v("", CONTENT, ID, secret), Err(JwsError::NotDetached));
        let (_, mac) = good.split_once("..").unwrap();
        let none_alg = format!(
            "{}..{mac}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"joshua"}"#)
        );
        assert_eq!(
            v(&none_alg, CONTENT, ID, secret),
            Err(JwsError::Header(ID.into()))
        );
        let spaced = format!(
            "{}..{mac}",
            URL_SAFE_NO_PAD.encode(r#"{"alg": "HS256", "kid": "joshua"}"#)
        );
        assert_eq!(
            v(&spaced, CONTENT, ID, secret),
            Err(JwsError::Header(ID.into()))
        );
        let bad_b64 = format!("{}..{}*", header_b64(ID), &mac[1..]);
        assert_eq!(v(&bad_b64, CONTENT, ID, secret), Err(JwsError::Encoding));
        let short_mac = URL_SAFE_NO_PAD.encode(&URL_SAFE_NO_PAD.decode(mac).unwrap()[..16]);
        let truncated = format!("{}..{short_mac}", header_b64(ID));
        assert_eq!(v(&truncated, CONTENT, ID, secret), Err(JwsError::Mismatch));
    }
}
