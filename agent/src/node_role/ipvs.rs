//! kube-proxy in IPVS mode: the IPVS modules (the schedulers kube-proxy checks for, and
//! the chosen one), persisted in modules-load.d, and the KubeProxyConfiguration.
//!
//! IPVS mode is deprecated upstream in favour of nftables mode (GA since 1.33); the
//! settings ask for IPVS, so that is what is prepared here.

use ignition::node_settings::{IpvsScheduler, IpvsSettings};

pub const MODULES_LOAD_PATH: &str = "/etc/modules-load.d/harmony-ipvs.conf";
/// Where the node's kube-proxy config is written: for a kube-proxy run with
/// `--config`, or to feed the cluster's kube-proxy ConfigMap.
pub const KUBE_PROXY_CONFIG_PATH: &str = "/etc/kubernetes/kube-proxy.yaml";

pub fn scheduler_name(s: IpvsScheduler) -> &'static str {
    match s {
        IpvsScheduler::Rr => "rr",
        IpvsScheduler::Wrr => "wrr",
        IpvsScheduler::Lc => "lc",
        IpvsScheduler::Wlc => "wlc",
        IpvsScheduler::Lblc => "lblc",
        IpvsScheduler::Lblcr => "lblcr",
        IpvsScheduler::Sh => "sh",
        IpvsScheduler::Dh => "dh",
        IpvsScheduler::Sed => "sed",
        IpvsScheduler::Nq => "nq",
    }
}

/// ip_vs, the rr/wrr/sh schedulers kube-proxy probes for, the chosen one, nf_conntrack.
pub fn modules(ipvs: &IpvsSettings) -> Vec<String> {
    let mut m: Vec<String> = ["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh"]
        .map(String::from)
        .to_vec();
    let chosen = format!("ip_vs_{}", scheduler_name(ipvs.scheduler));
    if !m.contains(&chosen) {
        m.push(chosen);
    }
    m.push("nf_conntrack".to_string());
    m
}

pub fn modules_load_file(modules: &[String]) -> String {
    format!(
        "# Rendered by harmony-agent: kube-proxy's IPVS mode (harmony.ipvs).\n{}\n",
        modules.join("\n")
    )
}

pub fn kube_proxy_config(ipvs: &IpvsSettings) -> String {
    format!(
        "# Rendered by harmony-agent from harmony.ipvs.\n\
         apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
         kind: KubeProxyConfiguration\n\
         mode: ipvs\n\
         ipvs:\n  scheduler: {}\n  strictARP: {}\n",
        scheduler_name(ipvs.scheduler),
        ipvs.strict_arp
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_and_config() {
        let mut s = IpvsSettings {
            enabled: true,
            scheduler: IpvsScheduler::Lc,
            strict_arp: true,
        };
        assert_eq!(
            modules(&s),
            [
                "ip_vs",
                "ip_vs_rr",
                "ip_vs_wrr",
                "ip_vs_sh",
                "ip_vs_lc",
                "nf_conntrack"
            ]
        );
        assert_eq!(
            kube_proxy_config(&s),
            "# Rendered by harmony-agent from harmony.ipvs.\napiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
             kind: KubeProxyConfiguration\nmode: ipvs\nipvs:\n  scheduler: lc\n  strictARP: true\n"
        );
        s.scheduler = IpvsScheduler::Sh;
        assert_eq!(modules(&s).len(), 5);
        assert!(modules_load_file(&modules(&s)).ends_with("\nip_vs_sh\nnf_conntrack\n"));
    }
}
