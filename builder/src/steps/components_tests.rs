//! A component layer carries the names of the node secrets its process needs, never a
//! value (issue 12 item 4): a recipe that tries to give one is refused, and the layer a
//! recipe naming every secret makes holds none of the values a node would be given.

use std::path::Path;
use std::sync::Arc;

use super::components::component_step;
use crate::oci::{open_image, ImageDetails, LayoutWriter};
use crate::recipe::parse;
use crate::tree::layer::{diff_trees, encode_layer, Change};
use crate::tree::{Entry, Kind, Meta, Tree};

const BASE: &str = "name: n\nversion: '1'\nbase: oci-layout:base:latest\n";

/// A one-file layout standing in for an upstream image; returns its digest.
fn layout(dir: &Path) -> String {
    let mut t = Tree::new();
    t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
    t.insert(
        "etc/os-release",
        Entry {
            kind: Kind::File(Arc::new(b"ID=fixture\n".to_vec())),
            meta: Meta::new(0o644),
        },
    )
    .unwrap();
    let mut w = LayoutWriter::create(dir, 0).unwrap();
    w.add_layer(
        &encode_layer(&diff_trees(&Tree::new(), &t), 0).unwrap(),
        "fixture",
    )
    .unwrap();
    w.finish(&ImageDetails {
        tag: "fixture".into(),
        ..Default::default()
    })
    .unwrap()
}

/// A base the step can run on (busybox init).
fn base_tree() -> Tree {
    let mut t = Tree::new();
    t.mkdir_all("etc", &Meta::new(0o755)).unwrap();
    t.insert(
        "etc/inittab",
        Entry::file(b"::sysinit:/bin/true\n".to_vec(), 0o644),
    )
    .unwrap();
    t
}

#[test]
fn a_recipe_gives_no_secret_value_and_the_layer_holds_only_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    let digest = layout(&dir);
    let image = format!("oci-layout:{}@{digest}", dir.display());
    // What a recipe could say before: every one is now an error naming the field.
    let baked = format!(
        "{BASE}components:
  - {{name: keepalived, image: '{image}', values: {{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, password: kp-s3cr}}}}
  - {{name: fluent-bit, image: '{image}', values: {{splunk_host: s, splunk_token: hec-s3cret-token}}}}
  - {{name: consul, image: '{image}', values: {{server: true, encrypt: pUqJrVyVRj5jsiYEkM/tFQ==}}}}
  - {{name: sensu-backend, image: '{image}', values: {{pagerduty_key: pd-s3cret-key}}}}
"
    );
    let errors = parse(&baked, "r.yaml", tmp.path()).unwrap_err().0;
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "components[0].values.password",
            "components[1].values.splunk_token",
            "components[2].values.encrypt",
            "components[3].values.pagerduty_key"
        ]
    );
    for e in &errors {
        assert!(e.problem.contains("never baked"), "{e}");
        assert!(!e.problem.contains("s3c"), "{e}");
    }

    let named = format!(
        "{BASE}components:
  - {{name: keepalived, image: '{image}', values: {{interface: eth0, virtual_ip: 192.0.2.10, router_id: 51, authentication: pass}}}}
  - {{name: fluent-bit, image: '{image}', values: {{splunk_host: s}}}}
  - {{name: consul, image: '{image}', values: {{server: true, gossip_encryption: true}}}}
  - {{name: sensu-backend, image: '{image}', values: {{pagerduty: true}}}}
  - {{name: elasticsearch, image: '{image}'}}
"
    );
    let recipe = parse(&named, "r.yaml", tmp.path()).unwrap();
    let source = open_image(&recipe.components[0].image, &tmp.path().join("cache")).unwrap();
    let tree = base_tree();
    let mut secrets_named = Vec::new();
    for item in &recipe.components {
        let out = component_step(&tree, item, &source).unwrap();
        for (path, change) in &out.changes.0 {
            let Change::Put(Entry {
                kind: Kind::File(bytes),
                ..
            }) = change
            else {
                continue;
            };
            let text = String::from_utf8_lossy(bytes);
            for value in [
                "kp-s3cr",
                "hec-s3cret-token",
                "pUqJrVyVRj5",
                "pd-s3cret-key",
            ] {
                assert!(!text.contains(value), "{path} holds a secret value");
            }
            if path.ends_with("component.json") {
                let doc: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                for s in doc["secrets"].as_array().unwrap() {
                    secrets_named.push(s["name"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(
        secrets_named,
        [
            "keepalived-password",
            "splunk-hec-token",
            "consul-gossip-key",
            "pagerduty-integration-key",
            "elastic-password"
        ]
    );
}
