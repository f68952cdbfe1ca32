//! The kernel settings every Kubernetes node needs: forwarding (pods are routed through
//! the node; CIS's `ip_forward=0` is overridden here on purpose), bridged traffic seen
//! by netfilter (kube-proxy and most CNIs rely on it; needs br_netfilter), and a
//! conntrack table as large as kube-proxy's own minimum (it sets no less itself).
//! Persisted in sysctl.d for later boots, applied now by writing /proc/sys.

use std::path::Path;

pub const PATH: &str = "/etc/sysctl.d/90-harmony-node.conf";
/// What the values below need loaded first.
pub const MODULES: [&str; 2] = ["br_netfilter", "nf_conntrack"];
pub const MODULES_LOAD_PATH: &str = "/etc/modules-load.d/harmony-node.conf";

pub const VALUES: [(&str, &str); 5] = [
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv6.conf.all.forwarding", "1"),
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    // kube-proxy's conntrack.min.
    ("net.netfilter.nf_conntrack_max", "131072"),
];

pub fn file() -> String {
    let mut t = String::from(
        "# Rendered by harmony-agent: what a Kubernetes node needs (forwarding on, on purpose).\n",
    );
    for (k, v) in VALUES {
        t.push_str(&format!("{k} = {v}\n"));
    }
    t
}

/// `net.ipv4.ip_forward` → `HOST/proc/sys/net/ipv4/ip_forward`.
pub fn proc_path(host: &Path, key: &str) -> std::path::PathBuf {
    host.join("proc/sys").join(key.replace('.', "/"))
}

/// Write each value to /proc/sys; the first failure names its key.
pub fn apply(host: &Path, values: &[(String, String)]) -> Result<(), String> {
    for (k, v) in values {
        let path = proc_path(host, k);
        std::fs::write(&path, format!("{v}\n"))
            .map_err(|e| format!("{k} = {v} ({}): {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_proc_paths() {
        assert!(file().contains("\nnet.ipv4.ip_forward = 1\n"));
        assert!(file().contains("\nnet.bridge.bridge-nf-call-iptables = 1\n"));
        assert_eq!(
            proc_path(Path::new("/"), "net.bridge.bridge-nf-call-iptables"),
            Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables")
        );
    }

    #[test]
    fn apply_writes_each_value_and_names_the_failing_key() {
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("proc/sys/net/ipv4")).unwrap();
        let ok = vec![("net.ipv4.ip_forward".to_string(), "1".to_string())];
        apply(host.path(), &ok).unwrap();
        assert_eq!(
            std::fs::read_to_string(host.path().join("proc/sys/net/ipv4/ip_forward")).unwrap(),
            "1\n"
        );
        let bad = vec![(
            "net.bridge.bridge-nf-call-iptables".to_string(),
            "1".to_string(),
        )];
        let err = apply(host.path(), &bad).unwrap_err();
        assert!(
            err.starts_with("net.bridge.bridge-nf-call-iptables = 1 ("),
            "{err}"
        );
    }
}
