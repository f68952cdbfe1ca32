//! Point a kubeconfig at the node-local API proxy. kubelet and client-go use one server
//! URL and never fail over (FACTS.md), so HA without a VIP means kubelet talks to
//! 127.0.0.1 and the proxy picks a live API server. 127.0.0.1 is not a SAN of the API
//! server's certificate: `tls-server-name` names one that is, and the CA stays the same.

use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KubeconfigError {
    #[error("kubeconfig is not YAML: {0}")]
    Yaml(String),
    #[error("kubeconfig has no clusters[].cluster to point at the local proxy")]
    NoClusters,
    #[error("kubeconfig clusters[{0}].cluster is not a mapping")]
    NotAMapping(usize),
}

/// Every cluster's `server` becomes `https://127.0.0.1:PORT` with `tls-server-name`;
/// everything else (CA, users, contexts) is kept.
pub fn via_local_proxy(
    kubeconfig: &str,
    port: u16,
    tls_server_name: &str,
) -> Result<String, KubeconfigError> {
    let mut doc: Value =
        serde_yaml_ng::from_str(kubeconfig).map_err(|e| KubeconfigError::Yaml(e.to_string()))?;
    let clusters = doc
        .get_mut("clusters")
        .and_then(Value::as_sequence_mut)
        .filter(|c| !c.is_empty())
        .ok_or(KubeconfigError::NoClusters)?;
    for (i, named) in clusters.iter_mut().enumerate() {
        let cluster = named
            .get_mut("cluster")
            .and_then(Value::as_mapping_mut)
            .ok_or(KubeconfigError::NotAMapping(i))?;
        cluster.insert("server".into(), format!("https://127.0.0.1:{port}").into());
        cluster.insert("tls-server-name".into(), tls_server_name.into());
    }
    serde_yaml_ng::to_string(&doc).map_err(|e| KubeconfigError::Yaml(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOTSTRAP: &str = "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTi0tLS0t
    server: https://10.0.0.10:8443
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: tls-bootstrap-token-user}
  name: tls-bootstrap-token-user@kubernetes
current-context: tls-bootstrap-token-user@kubernetes
users:
- name: tls-bootstrap-token-user
  user: {token: abcdef.0123456789abcdef}
";

    #[test]
    fn server_becomes_the_local_proxy_with_a_server_name() {
        let out = via_local_proxy(BOOTSTRAP, 6444, "kubernetes").unwrap();
        let v: Value = serde_yaml_ng::from_str(&out).unwrap();
        let c = &v["clusters"][0]["cluster"];
        assert_eq!(c["server"], "https://127.0.0.1:6444");
        assert_eq!(c["tls-server-name"], "kubernetes");
        assert_eq!(c["certificate-authority-data"], "LS0tLS1CRUdJTi0tLS0t");
        assert_eq!(v["users"][0]["user"]["token"], "abcdef.0123456789abcdef");
        assert_eq!(v["current-context"], "tls-bootstrap-token-user@kubernetes");
        // Applying it twice changes nothing more.
        assert_eq!(via_local_proxy(&out, 6444, "kubernetes").unwrap(), out);
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert_eq!(
            via_local_proxy("apiVersion: v1\nkind: Config\n", 6444, "kubernetes"),
            Err(KubeconfigError::NoClusters)
        );
        assert_eq!(
            via_local_proxy("clusters: [{name: a, cluster: x}]\n", 6444, "kubernetes"),
            Err(KubeconfigError::NotAMapping(0))
        );
        assert!(matches!(
            via_local_proxy("clusters: [\n", 6444, "kubernetes"),
            Err(KubeconfigError::Yaml(_))
        ));
    }
}
