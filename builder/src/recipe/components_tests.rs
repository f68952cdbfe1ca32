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
