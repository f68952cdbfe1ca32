//! The rules serde's shape cannot express. Every rule adds a problem with its path; all
//! of them are checked, so one pass reports everything wrong with a document.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::k8s_syntax::{dns_subdomain, kubelet_may_set, label_value, qualified_name, taint};
use super::{NodeSettings, ProxyMode, Role, SettingsProblem, MAX_MAX_PODS, MIN_POD_PIDS_LIMIT};

struct Problems(Vec<SettingsProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, problem: impl Into<String>) {
        self.0.push(SettingsProblem {
            path: path.into(),
            problem: problem.into(),
        });
    }
}

pub fn problems(s: &NodeSettings) -> Vec<SettingsProblem> {
    let mut p = Problems(Vec::new());
    cluster(s, &mut p);
    node(s, &mut p);
    kubelet(s, &mut p);
    firewall(s, &mut p);
    kube_proxy(s, &mut p);
    if let Some(ha) = &s.ha {
        super::ha::problems(ha, s.role, &mut p.0);
    }
    p.0
}

fn cluster(s: &NodeSettings, p: &mut Problems) {
    let Some(c) = &s.cluster else {
        return;
    };
    if let Some(t) = c
        .discovery_timeout_seconds
        .filter(|t| !(1..=3600).contains(t))
    {
        p.add(
            "cluster.discovery_timeout_seconds",
            format!("{t} is not 1..=3600 seconds"),
        );
    }
    if c.api_endpoints.is_empty() {
        p.add("cluster.api_endpoints", "at least one endpoint is required");
    }
    let mut seen = BTreeSet::new();
    for (i, url) in c.api_endpoints.iter().enumerate() {
        let path = format!("cluster.api_endpoints[{i}]");
        if let Err(why) = https_endpoint(url) {
            p.add(path, why);
        } else if !seen.insert(url.to_ascii_lowercase()) {
            p.add(path, format!("{url:?} is listed twice"));
        }
    }
    // The value is never echoed: an error message may end up in a report or a log.
    if !is_bootstrap_token(c.bootstrap_token.expose()) {
        p.add(
            "cluster.bootstrap_token",
            "must match [a-z0-9]{6}.[a-z0-9]{16} (the value is a secret and is not shown)",
        );
    }
    if c.ca_cert_hashes.is_empty() {
        p.add(
            "cluster.ca_cert_hashes",
            "at least one sha256:<hex> CA public key pin is required (joining without one \
             trusts whoever answers)",
        );
    }
    if let Some(cp) = &c.control_plane {
        if s.role != Role::ControlPlane {
            p.add(
                "cluster.control_plane",
                "is for control-plane nodes; this node's role is worker",
            );
        }
        if let Err(why) = host_port(&cp.endpoint) {
            p.add("cluster.control_plane.endpoint", why);
        }
        let key = cp.certificate_key.expose();
        if !(key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())) {
            p.add(
                "cluster.control_plane.certificate_key",
                "must be 64 hex digits, as `kubeadm certs certificate-key` prints \
                 (the value is a secret and is not shown)",
            );
        }
    }
    for (i, h) in c.ca_cert_hashes.iter().enumerate() {
        let hex = h.strip_prefix("sha256:");
        if !hex.is_some_and(|x| x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit())) {
            p.add(
                format!("cluster.ca_cert_hashes[{i}]"),
                format!("{h:?} is not sha256: followed by 64 hex digits"),
            );
        }
    }
}

fn is_bootstrap_token(t: &str) -> bool {
    let part = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    t.split_once('.')
        .is_some_and(|(id, secret)| part(id, 6) && part(secret, 16))
}

/// kubeadm's controlPlaneEndpoint: `host:port` (the same host rules as an endpoint URL).
fn host_port(text: &str) -> Result<(), String> {
    if text.contains("://") {
        return Err(format!("{text:?} must be host:port, without a scheme"));
    }
    https_endpoint(&format!("https://{text}")).map_err(|e| e.replace("https://", ""))
}

/// `https://host:port` with an explicit port and nothing after it but an optional `/`.
fn https_endpoint(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url:?} must start with https://"))?;
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err(format!(
            "{url:?} must be https://host:port with no path, query or user"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (addr, port) = v6
                .split_once("]:")
                .ok_or_else(|| format!("{url:?} must give a port: https://[addr]:port"))?;
            addr.parse::<Ipv6Addr>()
                .map_err(|_| format!("{url:?}: {addr:?} is not an IPv6 address"))?;
            (None, port)
        }
        None => {
            let (host, port) = authority
                .rsplit_once(':')
                .ok_or_else(|| format!("{url:?} must give a port: https://host:port"))?;
            (Some(host), port)
        }
    };
    if let Some(host) = host {
        let is_v4 = host.parse::<Ipv4Addr>().is_ok();
        let looks_numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        if !is_v4 && (looks_numeric || dns_subdomain(&host.to_ascii_lowercase()).is_some()) {
            return Err(format!(
                "{url:?}: {host:?} is not a host name or IPv4 address"
            ));
        }
    }
    match port.parse::<u16>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(format!("{url:?}: port {port:?} is not 1..=65535")),
    }
}

fn node(s: &NodeSettings, p: &mut Problems) {
    for (key, value) in &s.node.labels {
        let path = format!("node.labels.{key}");
        if let Some(why) = qualified_name(key)
            .or_else(|| kubelet_may_set(key))
            .or_else(|| label_value(value))
        {
            p.add(path, why);
        }
    }
    let mut seen = BTreeSet::new();
    for (i, t) in s.node.taints.iter().enumerate() {
        let path = format!("node.taints[{i}]");
        match taint(t) {
            Err(why) => p.add(path, why),
            // The API server keeps one taint per key and effect.
            Ok(t) if !seen.insert((t.key, t.effect)) => p.add(
                path,
                format!(
                    "a taint with key {:?} and effect {} is already given",
                    t.key, t.effect
                ),
            ),
            Ok(_) => {}
        }
    }
}

fn kubelet(s: &NodeSettings, p: &mut Problems) {
    let max = s.kubelet.max_pods;
    if max == 0 {
        p.add("kubelet.max_pods", "must be at least 1");
    } else if max > MAX_MAX_PODS {
        p.add(
            "kubelet.max_pods",
            format!("{max} exceeds {MAX_MAX_PODS}, the most a node is run with"),
        );
    }
    // Pods' addresses are not reused at once when pods churn: keep twice as many as pods.
    // The limit is max_pods's to respect, so the error names it (and the range it meets).
    if let Some(cidr) = &s.kubelet.pod_cidr {
        let usable = cidr.usable_addresses();
        if u128::from(max) * 2 > usable {
            p.add(
                "kubelet.max_pods",
                format!(
                    "{max} pods need 2 × {max} = {} pod addresses, but harmony.kubelet.pod_cidr \
                     {cidr} has {usable} usable addresses (at most {} pods; a /24 has 254 \
                     addresses and holds 127 pods, a /23 holds 255): lower max_pods or use a \
                     larger range",
                    u128::from(max) * 2,
                    usable / 2
                ),
            );
        }
    }
    let pids = s.kubelet.pod_pids_limit;
    if pids != -1 && pids < MIN_POD_PIDS_LIMIT {
        p.add(
            "kubelet.pod_pids_limit",
            format!(
                "{pids} is too small: a pod needs at least {MIN_POD_PIDS_LIMIT} processes \
                 (-1 means no limit)"
            ),
        );
    }
}

/// `ipvs.enabled: true` asks for IPVS mode: with another `kube_proxy.mode` one of the two
/// must go, rather than one silently winning.
fn kube_proxy(s: &NodeSettings, p: &mut Problems) {
    if let Some(k) = s
        .kube_proxy
        .as_ref()
        .filter(|k| s.ipvs.enabled && k.mode != ProxyMode::Ipvs)
    {
        p.add(
            "ipvs.enabled",
            format!(
                "true asks for kube-proxy's IPVS mode, but harmony.kube_proxy.mode is {}: \
                 drop ipvs.enabled (or set kube_proxy.mode: ipvs)",
                k.mode.name()
            ),
        );
    }
}

fn firewall(s: &NodeSettings, p: &mut Problems) {
    for (i, rule) in s.firewall.rules.iter().enumerate() {
        if let Err(why) = rule.ports.bounds() {
            p.add(format!("firewall.rules[{i}].ports"), why);
        }
        if rule.sources.is_empty() {
            p.add(
                format!("firewall.rules[{i}].sources"),
                "at least one source is required (from anywhere: 0.0.0.0/0 and ::/0)",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        for ok in [
            "https://api.example.com:6443",
            "https://api.example.com:6443/",
            "https://10.0.0.10:6443",
            "https://[fd00::10]:6443",
            "https://API.Example.com:443",
        ] {
            assert_eq!(https_endpoint(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("http://api:6443", "must start with https://"),
            ("https://api", "must give a port"),
            ("https://api:0", "port \"0\" is not 1..=65535"),
            ("https://api:65536", "is not 1..=65535"),
            ("https://api:6443/path", "no path"),
            ("https://u@api:6443", "no path, query or user"),
            ("https://[fd00::10]", "must give a port"),
            ("https://[zz::1]:6443", "is not an IPv6 address"),
            ("https://10.0.0.300:6443", "is not a host name or IPv4"),
            ("https://bad_host:6443", "is not a host name"),
            ("https://:6443", "is not a host name"),
        ] {
            let err = https_endpoint(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn tokens() {
        assert!(is_bootstrap_token("abcdef.0123456789abcdef"));
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef0",
            "abcdef.0123456789abcde-",
            "",
        ] {
            assert!(!is_bootstrap_token(bad), "{bad}");
        }
    }
}
