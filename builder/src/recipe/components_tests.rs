//! `components:` in the recipe: pinned images, strict values, errors with FILE:LINE.

use std::path::Path;

use super::*;

const MINIMAL: &str = "name: n\nversion: '1'\nbase: oci-layout:base:latest\n";
const PIN: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn errors(text: &str) -> Vec<String> {
    parse(text, "r.yaml", Path::new("/nonexistent"))
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_pinned_component_renders_its_config() {
    let text = format!(
        "{MINIMAL}components:\n  - name: prometheus\n    image: docker://docker.io/prom/prometheus@{PIN}\n    values: {{replica: b}}\n"
    );
    let r = parse(&text, "r.yaml", Path::new("/x")).unwrap();
    assert_eq!(r.components[0].name, "prometheus");
    assert_eq!(r.components[0].config_mount, "/etc/prometheus");
    assert!(r.components[0].rendered.files[0]
        .1
        .contains("replica: \"b\""));
}

#[test]
fn tag_only_and_missing_images_are_refused_naming_the_field_and_line() {
    let text = format!(
        "{MINIMAL}components:\n  - name: redis\n    image: docker://docker.io/library/redis:7\n  - name: vault\n"
    );
    let e = errors(&text);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("r.yaml:6: components[0].image: "), "{e:?}");
    assert!(e[0].contains("is not pinned"), "{e:?}");
    assert!(
        e[1].starts_with("r.yaml:7: components[1].image: required"),
        "{e:?}"
    );
    assert!(e[1].contains("docker.io/hashicorp/vault@sha256"), "{e:?}");
}

#[test]
fn unknown_components_and_value_keys_are_errors_with_lines() {
    let text = format!(
        "{MINIMAL}components:\n  - name: memcached\n    image: docker://x/y@{PIN}\n  - name: haproxy\n    image: oci-layout:h@{PIN}\n    values:\n      stats_prt: 1\n"
    );
    let e = errors(&text);
    assert!(
        e[0].starts_with("r.yaml:5: components[0].name: unknown component `memcached`"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("r.yaml:10: components[1].values.stats_prt: unknown field `stats_prt`"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{MINIMAL}components:\n  - name: haproxy\n    image: oci-layout:h@{PIN}\n    valus: {{}}\n"
    ));
    assert!(
        e[0].starts_with("r.yaml:7: components[0].valus: unknown field `valus`"),
        "{e:?}"
    );
}

#[test]
fn a_component_verify_key_is_read_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    // A P-256 public key as `openssl pkey -pubout` writes it.
    let key = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEglQ0iXkE3tNPDnnz/AWLJBdzCpkE\n\
Kbb7veHm0apk77kTTFoEDoG1+bPKhpOx9mczW4WvkHY/9Oc5D2BvDQPICw==\n\
-----END PUBLIC KEY-----\n";
    std::fs::write(dir.path().join("prom.pub"), key).unwrap();
    let text = format!(
        "{MINIMAL}components:\n  - name: prometheus\n    image: docker://docker.io/prom/prometheus@{PIN}\n    verify: {{key: prom.pub}}\n"
    );
    let r = parse(&text, "r.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.components[0].verify, Some(dir.path().join("prom.pub")));
    let err = errors(&text);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(
            "r.yaml:7: components[0].verify.key: /nonexistent/prom.pub: cannot read the key"
        ),
        "{err:?}"
    );
}
