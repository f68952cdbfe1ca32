//! A stand-in for kube-apiserver's anonymous cluster-info endpoint (no real API server
//! can be had here), speaking the real protocol: TLS (rustls) with a certificate made by
//! the `openssl` CLI from a CA it also made (IP SANs 127.0.0.1 and 10.0.2.2, the host's
//! loopback as a QEMU guest sees it; vm-tests use this module too), HTTP/1.1, the ConfigMap as
//! JSON with `data.kubeconfig` and `jws-kubeconfig-<id>` exactly as kube-apiserver and
//! the bootstrap signer produce them, and a 404 `Status` for any other path.
//! The JWS is computed with `openssl dgst -hmac`, not with the code under test.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]
// Two test crates include this module and each uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A cluster CA (RSA, as kubeadm makes) and a serving certificate (ECDSA P-256) it signed.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    /// kubeadm's pin of the CA, by openssl (the documented any-key-type pipeline).
    pub ca_pin: String,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-subj",
                "/CN=kubernetes",
                "-days",
                "2",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=kube-apiserver",
            ],
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,IP:10.0.2.2,DNS:kubernetes\nextendedKeyUsage=serverAuth\n\
             basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "server.ext",
            ],
        );
        openssl(
            dir,
            &[
                "x509", "-noout", "-pubkey", "-in", "ca.crt", "-out", "ca.pub",
            ],
        );
        openssl(
            dir,
            &[
                "pkey", "-pubin", "-in", "ca.pub", "-outform", "DER", "-out", "ca.spki",
            ],
        );
        let spki = std::fs::read(dir.join("ca.spki")).unwrap();
        use sha2::Digest;
        Pki {
            dir: dir.to_path_buf(),
            ca_pem: std::fs::read_to_string(dir.join("ca.crt")).unwrap(),
            ca_pin: format!("sha256:{}", hex::encode(sha2::Sha256::digest(&spki))),
        }
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(self.dir.join("server.crt"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(self.dir.join("server.key")).unwrap();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        )
    }
}

/// cluster-info's kubeconfig as kubeadm writes it (`kubeadm init phase bootstrap-token`).
pub fn cluster_kubeconfig(server: &str, ca_pem: &str) -> String {
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    \
         server: {server}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\n\
         preferences: {{}}\nusers: null\n",
        STANDARD.encode(ca_pem)
    )
}

/// The bootstrap signer's detached JWS, by openssl.
pub fn openssl_jws(content: &str, token_id: &str, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{token_id}"}}"#));
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(content));
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-hmac", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 32);
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(out.stdout))
}

/// The ConfigMap as kube-apiserver serialises it.
pub fn configmap_json(kubeconfig: &str, signatures: &[(&str, String)]) -> Vec<u8> {
    let mut data = serde_json::Map::new();
    for (id, sig) in signatures {
        data.insert(format!("jws-kubeconfig-{id}"), sig.clone().into());
    }
    data.insert("kubeconfig".into(), kubeconfig.into());
    serde_json::to_vec(&serde_json::json!({
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": "cluster-info",
            "namespace": "kube-public",
            "uid": "5f1f3a8e-0d6c-4c55-9f34-4b1c9f2f1a11",
            "resourceVersion": "288",
            "creationTimestamp": "2026-11-25T10:00:00Z",
        },
        "data": data,
    }))
    .unwrap()
}

const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;

pub struct ApiServer {
    pub url: String,
    /// GETs of cluster-info answered.
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl ApiServer {
    pub fn start(pki: &Pki, configmap: Vec<u8>) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = pki.server_config();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let body = Arc::new(configmap);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = conn else { continue };
                let (config, body, h) = (config.clone(), body.clone(), h.clone());
                std::thread::spawn(move || serve(tcp, config, &body, &h));
            }
        });
        ApiServer {
            url: format!("https://127.0.0.1:{}", addr.port()),
            hits,
            stop,
            addr,
        }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _wake = TcpStream::connect(self.addr);
    }
}

/// HTTP/1.1 over TLS, keep-alive: requests until the client closes.
fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, body: &[u8], hits: &AtomicUsize) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut stream = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    loop {
        let mut request_line = String::new();
        if stream.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if stream.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let (status, payload) = if request_line.starts_with("GET ") && path == CLUSTER_INFO {
            hits.fetch_add(1, Ordering::SeqCst);
            ("200 OK", body)
        } else {
            ("404 Not Found", NOT_FOUND.as_bytes())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nAudit-Id: 0b6c1c47-2a57-4d5e-8d0e-5d3b2f2f7a10\r\n\
             Cache-Control: no-cache, private\r\nContent-Type: application/json\r\n\
             X-Kubernetes-Pf-Flowschema-Uid: 7a3f\r\nX-Kubernetes-Pf-Prioritylevel-Uid: 1c2d\r\n\
             Date: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Length: {}\r\n\r\n",
            payload.len()
        );
        let w = stream.get_mut();
        if w.write_all(head.as_bytes()).is_err() || w.write_all(payload).is_err() {
            return;
        }
        let _ = w.flush();
    }
}

/// An address where nothing listens (bound, then closed): connections are refused.
pub fn dead_endpoint() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("https://127.0.0.1:{port}")
}
