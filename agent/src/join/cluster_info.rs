//! The `kube-public/cluster-info` ConfigMap as kube-apiserver returns it: `data.kubeconfig`
//! (kept as the exact string the JWS signs) and one `jws-kubeconfig-<token-id>` per
//! bootstrap token that kube-controller-manager's bootstrap signer has signed it with.

use std::collections::BTreeMap;

pub const PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
const KUBECONFIG_KEY: &str = "kubeconfig";
const SIGNATURE_PREFIX: &str = "jws-kubeconfig-";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// Raw, never re-serialised: the signature covers these bytes.
    pub kubeconfig: String,
    /// Token id → detached JWS.
    pub signatures: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
struct ConfigMap {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

impl ClusterInfo {
    pub fn parse(body: &[u8]) -> Result<ClusterInfo, String> {
        let cm: ConfigMap = serde_json::from_slice(body)
            .map_err(|e| format!("cluster-info is not a ConfigMap in JSON: {e}"))?;
        if cm.kind != "ConfigMap" {
            return Err(format!(
                "cluster-info: kind is {:?}, expected \"ConfigMap\"",
                cm.kind
            ));
        }
        let mut data = cm.data;
        let kubeconfig = data
            .remove(KUBECONFIG_KEY)
            .ok_or("cluster-info has no data.kubeconfig")?;
        let signatures = data
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(SIGNATURE_PREFIX)?.to_string(), v)))
            .collect();
        Ok(ClusterInfo {
            kubeconfig,
            signatures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_raw_kubeconfig_and_every_signature() {
        // The shape kube-apiserver sends (fields it adds that we ignore included).
        let body = r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cluster-info",
            "namespace":"kube-public","uid":"0c5c1f2a","resourceVersion":"321"},
            "data":{"jws-kubeconfig-abcdef":"eyJ..c2ln","jws-kubeconfig-zyx987":"eyJ..b3Ro",
            "kubeconfig":"apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: \"\"\n"}}"#;
        let info = ClusterInfo::parse(body.as_bytes()).unwrap();
        assert_eq!(
            info.kubeconfig,
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.0.0.1:6443\n  name: \"\"\n"
        );
        assert_eq!(info.signatures["abcdef"], "eyJ..c2ln");
        assert_eq!(info.signatures.len(), 2);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (body, why) in [
            ("<html>", "not a ConfigMap in JSON"),
            (r#"{"kind":"Status","code":404}"#, "kind is \"Status\""),
            (r#"{"kind":"ConfigMap","data":{}}"#, "no data.kubeconfig"),
            (
                r#"{"kind":"ConfigMap","data":{"kubeconfig":7}}"#,
                "not a ConfigMap",
            ),
        ] {
            let e = ClusterInfo::parse(body.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{body}: {e}");
        }
    }
}
