//! Kubernetes' syntax rules for what a node declares about itself: label keys and
//! values, taints, and the label namespaces a kubelet may set on its own node (the
//! NodeRestriction rules kubelet applies to `--node-labels`). Each check returns why a
//! string is wrong, or nothing.

/// Where a taint lets pods go.
pub const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.…)*`, at most 253 characters (RFC 1123 subdomain).
pub fn dns_subdomain(s: &str) -> Option<String> {
    if s.is_empty() || s.len() > 253 {
        return Some(format!("{s:?} must be 1-253 characters"));
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Some(format!(
                "{s:?} is not a DNS subdomain (lowercase letters, digits, '-' and '.', \
                 each part 1-63 characters starting and ending with a letter or digit)"
            ));
        }
    }
    None
}

/// A label name or value body: alphanumeric at both ends, `-_.` inside, at most 63.
fn name_part(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && alnum(bytes[0])
        && alnum(bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|&b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
}

/// `[prefix/]name`: prefix a DNS subdomain, name 1-63 characters `[A-Za-z0-9][-A-Za-z0-9_.]*[A-Za-z0-9]`.
pub fn qualified_name(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if let Some(why) = dns_subdomain(p) {
            return Some(format!("key {key:?}: prefix {why}"));
        }
    }
    if !name_part(name) {
        return Some(format!(
            "key {key:?}: name must be 1-63 characters of letters, digits, '-', '_' or '.', \
             starting and ending with a letter or digit"
        ));
    }
    None
}

/// Empty, or like a name part.
pub fn label_value(value: &str) -> Option<String> {
    if value.is_empty() || name_part(value) {
        return None;
    }
    Some(format!(
        "value {value:?} must be empty or 1-63 characters of letters, digits, '-', '_' or '.', \
         starting and ending with a letter or digit"
    ))
}

/// Labels kubelet may set on its own node although they are in a Kubernetes namespace.
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// Namespaces (and their subdomains) reserved for the kubelet's own labels.
const KUBELET_NAMESPACES: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

fn in_namespace(prefix: &str, ns: &str) -> bool {
    prefix == ns || prefix.ends_with(&format!(".{ns}"))
}

/// kubelet refuses to start with a `--node-labels` key in the kubernetes.io or k8s.io
/// namespaces outside its allowed set (node-role.kubernetes.io included: the role is
/// given by `role`, and set by the control plane).
pub fn kubelet_may_set(key: &str) -> Option<String> {
    let (prefix, _) = key.split_once('/')?;
    let reserved = in_namespace(prefix, "kubernetes.io") || in_namespace(prefix, "k8s.io");
    let allowed = KUBELET_LABELS.contains(&key)
        || KUBELET_NAMESPACES.iter().any(|ns| in_namespace(prefix, ns));
    (reserved && !allowed).then(|| {
        format!(
            "key {key:?} is in a Kubernetes-reserved namespace that kubelet may not set on \
             its node (allowed there: kubelet.kubernetes.io/*, node.kubernetes.io/*, {})",
            KUBELET_LABELS.join(", ")
        )
    })
}

/// A parsed taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub effect: &'a str,
}

/// `key=value:Effect` or `key:Effect`.
pub fn taint(s: &str) -> Result<Taint<'_>, String> {
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not a taint (key=value:Effect or key:Effect)"))?;
    if !TAINT_EFFECTS.contains(&effect) {
        return Err(format!(
            "{s:?}: effect {effect:?} is not one of {}",
            TAINT_EFFECTS.join(", ")
        ));
    }
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    if let Some(why) = qualified_name(key).or_else(|| label_value(value)) {
        return Err(format!("{s:?}: {why}"));
    }
    Ok(Taint { key, value, effect })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys() {
        for ok in [
            "app",
            "a",
            "example.com/tier",
            "my-co.example.com/rack_row.1",
            "A9",
        ] {
            assert_eq!(qualified_name(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "name must be 1-63"),
            ("-app", "name must be"),
            ("app-", "name must be"),
            ("Example.com/x", "prefix"),
            ("a/b/c", "name must be"),
            ("/x", "prefix \"\" must be 1-253"),
            ("example.com/", "name must be"),
            (&"x".repeat(64), "name must be 1-63"),
        ] {
            let err = qualified_name(bad).unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(err.contains(why), "{bad}: {err}");
        }
        let at_limit = format!("{}/x", ["a"; 127].join("."));
        assert_eq!(qualified_name(&at_limit), None);
        let long_prefix = format!("{}/x", ["a"; 128].join("."));
        assert!(qualified_name(&long_prefix).unwrap().contains("1-253"));
    }

    #[test]
    fn label_values() {
        assert_eq!(label_value(""), None);
        assert_eq!(label_value("v1.2_x-y"), None);
        assert!(label_value("with space").is_some());
        assert!(label_value("-x").is_some());
        assert!(label_value(&"v".repeat(64)).is_some());
        assert_eq!(label_value(&"v".repeat(63)), None);
    }

    #[test]
    fn reserved_namespaces() {
        for ok in [
            "app",
            "example.com/x",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "node.kubernetes.io/anything",
            "team.node.kubernetes.io/x",
            "kubelet.kubernetes.io/y",
            "notkubernetes.io/x",
        ] {
            assert_eq!(kubelet_may_set(ok), None, "{ok}");
        }
        for bad in [
            "node-role.kubernetes.io/control-plane",
            "kubernetes.io/role",
            "k8s.io/x",
            "foo.k8s.io/x",
        ] {
            assert!(kubelet_may_set(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn taints() {
        assert_eq!(
            taint("dedicated=infra:NoSchedule").unwrap(),
            Taint {
                key: "dedicated",
                value: "infra",
                effect: "NoSchedule"
            }
        );
        assert_eq!(
            taint("example.com/gpu:NoExecute").unwrap(),
            Taint {
                key: "example.com/gpu",
                value: "",
                effect: "NoExecute"
            }
        );
        for (bad, why) in [
            ("dedicated=infra", "is not a taint"),
            (
                "dedicated=infra:NoSchedul",
                "effect \"NoSchedul\" is not one of",
            ),
            ("dedicated=infra:noschedule", "is not one of"),
            ("=x:NoSchedule", "name must be"),
            ("k=bad value:NoSchedule", "value \"bad value\""),
        ] {
            let err = taint(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
