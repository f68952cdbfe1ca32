//! kube-proxy in IPVS mode: the IPVS modules (the schedulers kube-proxy checks for, and
//! the chosen one). The config and modules-load.d file are [`super::kube_proxy`]'s.
//!
//! IPVS mode is deprecated upstream in favour of nftables mode (GA since 1.33); the
//! settings ask for IPVS, so that is what is prepared here.

use ignition::node_settings::{IpvsScheduler, IpvsSettings};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_follow_the_scheduler() {
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
        s.scheduler = IpvsScheduler::Sh;
        assert_eq!(modules(&s).len(), 5);
        assert!(modules(&s).ends_with(&["ip_vs_sh".to_string(), "nf_conntrack".to_string()]));
    }
}
