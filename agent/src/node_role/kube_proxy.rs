//! kube-proxy's mode (`harmony.kube_proxy.mode`, or `harmony.ipvs.enabled`): the node's
//! KubeProxyConfiguration, and the kernel modules that mode's rules need, loaded now and
//! at every boot (modules-load.d), so kube-proxy finds them whatever it may autoload.
//!
//! Which to pick: nftables (GA since Kubernetes 1.33, upstream's recommendation); IPVS is
//! deprecated upstream (KEP-5495, warnings since 1.35) and kept for clusters that use it;
//! iptables is kube-proxy's default, for older clusters and CNIs that expect it.

use ignition::node_settings::{NodeSettings, ProxyMode};

use super::ipvs;

/// Where the node's kube-proxy config is written: for a kube-proxy run with
/// `--config`, or to feed the cluster's kube-proxy ConfigMap.
pub const CONFIG_PATH: &str = "/etc/kubernetes/kube-proxy.yaml";

/// nftables mode's rules: the nat chains (DNAT to endpoints, masquerade), conntrack
/// state, `fib daddr type local` for NodePorts, `numgen random` to pick an endpoint,
/// reject for services without endpoints.
const NFTABLES_MODULES: [&str; 9] = [
    "nf_tables",
    "nf_conntrack",
    "nft_ct",
    "nft_chain_nat",
    "nft_nat",
    "nft_masq",
    "nft_fib_inet",
    "nft_numgen",
    "nft_reject_inet",
];

/// iptables mode's matches and targets (both iptables back ends use the xt_ ones;
/// nft_compat carries them into nf_tables for iptables-nft).
const IPTABLES_MODULES: [&str; 11] = [
    "nf_conntrack",
    "nf_nat",
    "x_tables",
    "nft_compat",
    "xt_conntrack",
    "xt_comment",
    "xt_mark",
    "xt_MASQUERADE",
    "xt_statistic",
    "xt_addrtype",
    "xt_nat",
];

/// The modules-load.d file of a mode (IPVS keeps the name it always had).
pub fn modules_load_path(mode: ProxyMode) -> String {
    format!("/etc/modules-load.d/harmony-{}.conf", mode.name())
}

pub fn modules(settings: &NodeSettings, mode: ProxyMode) -> Vec<String> {
    match mode {
        ProxyMode::Ipvs => ipvs::modules(&settings.ipvs),
        ProxyMode::Nftables => NFTABLES_MODULES.map(String::from).to_vec(),
        ProxyMode::Iptables => IPTABLES_MODULES.map(String::from).to_vec(),
    }
}

pub fn modules_load_file(mode: ProxyMode, modules: &[String]) -> String {
    format!(
        "# Rendered by harmony-agent: kube-proxy's {} mode (harmony.kube_proxy).\n{}\n",
        mode.name(),
        modules.join("\n")
    )
}

pub fn config(settings: &NodeSettings, mode: ProxyMode) -> String {
    let mut y = format!(
        "# Rendered by harmony-agent from harmony.kube_proxy (and harmony.ipvs).\n\
         apiVersion: kubeproxy.config.k8s.io/v1alpha1\n\
         kind: KubeProxyConfiguration\n\
         mode: {}\n",
        mode.name()
    );
    if mode == ProxyMode::Ipvs {
        y.push_str(&format!(
            "ipvs:\n  scheduler: {}\n  strictARP: {}\n",
            ipvs::scheduler_name(settings.ipvs.scheduler),
            settings.ipvs.strict_arp
        ));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> NodeSettings {
        NodeSettings::from_yaml_str(&format!("role: worker\n{extra}")).unwrap()
    }

    #[test]
    fn each_mode_writes_its_config() {
        let s = settings("kube_proxy: {mode: nftables}\n");
        assert_eq!(
            config(&s, ProxyMode::Nftables),
            "# Rendered by harmony-agent from harmony.kube_proxy (and harmony.ipvs).\n\
             apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
             mode: nftables\n"
        );
        assert!(config(&s, ProxyMode::Iptables).ends_with("\nmode: iptables\n"));
        let s = settings("kube_proxy: {mode: ipvs}\nipvs: {scheduler: lc, strict_arp: true}\n");
        assert!(config(&s, ProxyMode::Ipvs)
            .ends_with("\nmode: ipvs\nipvs:\n  scheduler: lc\n  strictARP: true\n"));
    }

    #[test]
    fn each_mode_loads_its_modules() {
        let s = settings("");
        assert_eq!(modules(&s, ProxyMode::Ipvs)[0], "ip_vs");
        assert!(modules(&s, ProxyMode::Nftables).contains(&"nft_numgen".to_string()));
        assert!(modules(&s, ProxyMode::Iptables).contains(&"xt_statistic".to_string()));
        assert_eq!(
            modules_load_path(ProxyMode::Ipvs),
            "/etc/modules-load.d/harmony-ipvs.conf"
        );
        assert_eq!(
            modules_load_file(ProxyMode::Nftables, &["nf_tables".into()]),
            "# Rendered by harmony-agent: kube-proxy's nftables mode (harmony.kube_proxy).\n\
             nf_tables\n"
        );
    }
}
