//! A node's `/etc/harmony/node.yaml` in three parts, so a Vaquero template can assemble
//! it from what Vaquero knows: the cluster part (the same for every node of a site: the
//! site's metadata), the role (the template itself: one per role) and the node part
//! (labels, pod CIDR: the host's metadata). Concatenated they are one YAML mapping, and
//! the per-node Ignition carries exactly the same bytes.

use std::collections::BTreeMap;

use base64::Engine;
use ignition::node_settings::Role;

use super::model::ClusterDoc;

/// A YAML string scalar that no YAML 1.1 or 1.2 reader takes for anything else.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPart(pub String);

impl ClusterPart {
    pub fn new(c: &ClusterDoc) -> ClusterPart {
        let mut s = String::from("cluster:\n  api_endpoints:\n");
        for e in &c.api_endpoints {
            s += &format!("  - {}\n", quoted(e));
        }
        s += &format!("  bootstrap_token: {}\n", quoted(&c.bootstrap_token));
        s += "  ca_cert_hashes:\n";
        for h in &c.ca_cert_hashes {
            s += &format!("  - {}\n", quoted(h));
        }
        ClusterPart(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePart(pub String);

impl NodePart {
    pub fn new(labels: &BTreeMap<String, String>, pod_cidr: &str) -> NodePart {
        let mut s = String::from("node:\n  labels:");
        if labels.is_empty() {
            s += " {}\n";
        } else {
            s += "\n";
            for (k, v) in labels {
                s += &format!("    {}: {}\n", quoted(k), quoted(v));
            }
        }
        s += &format!("kubelet:\n  pod_cidr: {}\n", quoted(pod_cidr));
        NodePart(s)
    }
}

pub fn role_part(role: Role) -> &'static str {
    match role {
        Role::ControlPlane => "role: control-plane\n",
        Role::Worker => "role: worker\n",
    }
}

/// The role part as a data URL a template can hold literally.
pub fn role_data_url(role: Role) -> &'static str {
    match role {
        Role::ControlPlane => "data:,role:%20control-plane%0A",
        Role::Worker => "data:,role:%20worker%0A",
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::ControlPlane => "control-plane",
        Role::Worker => "worker",
    }
}

/// Base64 data URL: safe inside JSON, YAML and a Go template whatever the text holds.
pub fn data_url(text: &str) -> String {
    format!(
        "data:;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeYaml {
    pub cluster: ClusterPart,
    pub role: Role,
    pub node: NodePart,
}

impl NodeYaml {
    pub fn text(&self) -> String {
        format!("{}{}{}", self.cluster.0, role_part(self.role), self.node.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ignition::node_settings::NodeSettings;

    #[test]
    fn the_parts_make_one_valid_settings_document() {
        let cluster = ClusterPart::new(&ClusterDoc {
            api_endpoints: vec!["https://10.0.0.10:6443".into()],
            bootstrap_token: "abcdef.0123456789abcdef".into(),
            ca_cert_hashes: vec![format!("sha256:{}", "a".repeat(64))],
            pod_cidr: "10.244.0.0/16".into(),
            node_pod_prefix: None,
        });
        // "0123" would be a number unquoted: it must stay the string the inventory gave.
        let labels = BTreeMap::from([("zone".to_string(), "0123".to_string())]);
        let y = NodeYaml {
            cluster,
            role: Role::Worker,
            node: NodePart::new(&labels, "10.244.3.0/24"),
        };
        let s = NodeSettings::from_yaml_str(&y.text()).unwrap();
        assert_eq!(s.role, Role::Worker);
        assert_eq!(s.node.labels["zone"], "0123");
        assert_eq!(s.kubelet.pod_cidr.unwrap().to_string(), "10.244.3.0/24");
        assert_eq!(
            s.cluster.unwrap().bootstrap_token.expose(),
            "abcdef.0123456789abcdef"
        );
        let no_labels = NodePart::new(&BTreeMap::new(), "10.244.0.0/24");
        assert!(no_labels.0.contains("labels: {}"));
    }

    #[test]
    fn role_data_urls_say_what_role_part_says() {
        for role in [Role::Worker, Role::ControlPlane] {
            let decoded = ignition::data_url::decode(role_data_url(role))
                .map(|d| String::from_utf8(d).unwrap());
            assert_eq!(decoded.as_deref(), Ok(role_part(role)));
        }
    }
}
