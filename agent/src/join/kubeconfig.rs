//! The kubeconfig inside cluster-info (one cluster: its server URL and CA bundle) and the
//! `bootstrap-kubelet.conf` built from it, as kubeadm's `CreateWithToken` writes it.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// kubeadm's names for the cluster and the bootstrap user.
const CLUSTER_NAME: &str = "kubernetes";
const TOKEN_USER: &str = "tls-bootstrap-token-user";

/// The one cluster cluster-info describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredCluster {
    /// Where kubelet will talk to (kubeadm's controlPlaneEndpoint), which need not be
    /// the endpoint discovery used.
    pub server: String,
    /// The CA bundle as PEM, exactly as certificate-authority-data held it.
    pub ca_pem: Vec<u8>,
    /// Its certificates, DER.
    pub ca_certs: Vec<Vec<u8>>,
}

pub fn parse_cluster(kubeconfig: &str) -> Result<DiscoveredCluster, String> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(kubeconfig)
        .map_err(|e| format!("data.kubeconfig is not YAML: {e}"))?;
    let clusters = doc
        .get("clusters")
        .and_then(|c| c.as_sequence())
        .ok_or("data.kubeconfig has no clusters list")?;
    if clusters.len() != 1 {
        return Err(format!(
            "data.kubeconfig must hold exactly one cluster, it holds {}",
            clusters.len()
        ));
    }
    let cluster = clusters[0]
        .get("cluster")
        .ok_or("data.kubeconfig: clusters[0] has no cluster")?;
    let text = |key: &str| -> Result<&str, String> {
        cluster
            .get(key)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("data.kubeconfig: clusters[0].cluster.{key} is missing"))
    };
    let server = text("server")?.to_string();
    let authority = server
        .strip_prefix("https://")
        .ok_or_else(|| format!("data.kubeconfig: server {server:?} is not https://"))?;
    if authority.is_empty()
        || authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"\"'\\#".contains(&b))
    {
        return Err(format!("data.kubeconfig: server {server:?} is not a URL"));
    }
    let ca_pem = STANDARD
        .decode(text("certificate-authority-data")?.trim())
        .map_err(|e| {
            format!("data.kubeconfig: clusters[0].cluster.certificate-authority-data is not base64: {e}")
        })?;
    let ca_certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(&ca_pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("data.kubeconfig: certificate-authority-data: {e}"))?;
    if ca_certs.is_empty() {
        return Err(
            "data.kubeconfig: certificate-authority-data holds no PEM certificate".to_string(),
        );
    }
    Ok(DiscoveredCluster {
        server,
        ca_pem,
        ca_certs,
    })
}

/// `/etc/kubernetes/bootstrap-kubelet.conf`: the discovered server and CA, the
/// bootstrap token as the user's bearer token. A secret: written 0600.
pub fn bootstrap_kubelet_conf(cluster: &DiscoveredCluster, token: &str) -> Vec<u8> {
    let context = format!("{TOKEN_USER}@{CLUSTER_NAME}");
    format!(
        "apiVersion: v1\n\
         clusters:\n\
         - cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: {CLUSTER_NAME}\n\
         contexts:\n\
         - context:\n    cluster: {CLUSTER_NAME}\n    user: {TOKEN_USER}\n  name: {context}\n\
         current-context: {context}\n\
         kind: Config\n\
         preferences: {{}}\n\
         users:\n\
         - name: {TOKEN_USER}\n  user:\n    token: {token}\n",
        ca = STANDARD.encode(&cluster.ca_pem),
        server = cluster.server,
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = include_str!("testdata/ca-ec.crt");

    fn cluster_info_kubeconfig(server: &str, ca_data: &str) -> String {
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca_data}\n    server: {server}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {{}}\nusers: null\n"
        )
    }

    #[test]
    fn reads_kubeadms_cluster_info_kubeconfig() {
        let text = cluster_info_kubeconfig("https://10.0.0.10:6443", &STANDARD.encode(CA));
        let c = parse_cluster(&text).unwrap();
        assert_eq!(c.server, "https://10.0.0.10:6443");
        assert_eq!(c.ca_pem, CA.as_bytes());
        assert_eq!(c.ca_certs.len(), 1);
    }

    #[test]
    fn bootstrap_conf_is_a_kubeconfig_with_the_token() {
        let text = cluster_info_kubeconfig("https://api.example:6443", &STANDARD.encode(CA));
        let c = parse_cluster(&text).unwrap();
        let conf = bootstrap_kubelet_conf(&c, "abcdef.0123456789abcdef");
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&conf).unwrap();
        let cluster = &v["clusters"][0]["cluster"];
        assert_eq!(cluster["server"].as_str(), Some("https://api.example:6443"));
        assert_eq!(
            STANDARD
                .decode(cluster["certificate-authority-data"].as_str().unwrap())
                .unwrap(),
            CA.as_bytes()
        );
        assert_eq!(
            v["users"][0]["user"]["token"].as_str(),
            Some("abcdef.0123456789abcdef")
        );
        assert_eq!(
            v["current-context"].as_str(),
            Some("tls-bootstrap-token-user@kubernetes")
        );
        assert_eq!(
            v["contexts"][0]["context"]["cluster"].as_str(),
            Some("kubernetes")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let ca = STANDARD.encode(CA);
        for (text, why) in [
            ("- a".to_string(), "no clusters list"),
            (
                "clusters: []".to_string(),
                "exactly one cluster, it holds 0",
            ),
            (
                cluster_info_kubeconfig("http://10.0.0.1:6443", &ca),
                "is not https://",
            ),
            (
                cluster_info_kubeconfig("\"https://a b:1\"", &ca),
                "is not a URL",
            ),
            (
                cluster_info_kubeconfig("https://a:1", "not*base64"),
                "certificate-authority-data is not base64",
            ),
            (
                cluster_info_kubeconfig("https://a:1", &STANDARD.encode("hello")),
                "holds no PEM certificate",
            ),
            (
                "clusters:\n- cluster:\n    server: https://a:1\n".to_string(),
                "certificate-authority-data is missing",
            ),
        ] {
            let e = parse_cluster(&text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
