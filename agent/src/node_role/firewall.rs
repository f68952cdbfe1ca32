//! The node's inbound firewall: an nftables ruleset rendered from `harmony.firewall`,
//! the role and the pod network.
//!
//! It lives in its own table, `inet harmony`, and never touches another: kube-proxy,
//! the CNI and anyone else keep their tables. The file replaces only our table, in one
//! `nft -f` transaction (create-if-missing, delete, define), so a reload is atomic and
//! never leaves the node open or half-filtered.
//!
//! Policy: input is default-deny; output and forward are not filtered here (forwarded
//! pod traffic is the CNI's and kube-proxy's business).

use std::fmt::Write;

use ignition::node_settings::{Cidr, Cni, NodeSettings, Protocol, ProxyMode, Role};

/// Where the ruleset is written.
pub const PATH: &str = "/etc/nftables.d/harmony.nft";
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "harmony";
/// The kernel log prefix of dropped packets (`dmesg | grep harmony-drop`).
pub const DROP_LOG_PREFIX: &str = "harmony-drop: ";

/// Kubernetes' inbound ports of each role (kubernetes.io "Ports and Protocols").
fn kubernetes_ports(role: Role) -> Vec<(&'static str, Protocol, &'static str)> {
    use Protocol::{Tcp, Udp};
    match role {
        Role::ControlPlane => vec![
            ("6443", Tcp, "kube-apiserver"),
            ("2379-2380", Tcp, "etcd client and peer"),
            ("10250", Tcp, "kubelet API"),
            ("10257", Tcp, "kube-controller-manager"),
            ("10259", Tcp, "kube-scheduler"),
        ],
        Role::Worker => vec![
            ("10250", Tcp, "kubelet API"),
            ("10256", Tcp, "kube-proxy health"),
            ("30000-32767", Tcp, "NodePort services"),
            ("30000-32767", Udp, "NodePort services"),
        ],
    }
}

/// The ruleset file, exactly as written and loaded.
pub fn render(s: &NodeSettings) -> String {
    let mut r = Ruleset::default();
    r.line("# Harmony node firewall, rendered by harmony-agent from the `harmony:` node");
    r.line("# settings. Load with `nft -f`: it replaces table inet harmony (and nothing else)");
    r.line("# in one transaction. Do not edit: the next render overwrites it.");
    r.line(&format!("table {FAMILY} {TABLE}"));
    r.line(&format!("delete table {FAMILY} {TABLE}"));
    r.line(&format!("table {FAMILY} {TABLE} {{"));
    r.line("\tchain input {");
    r.rule("type filter hook input priority filter; policy drop;");
    r.blank();
    r.rule("iif \"lo\" accept comment \"loopback\"");
    // ICMP errors (path MTU, unreachable) and ping; IPv6 neighbour discovery and MLD,
    // before the conntrack verdicts: ND packets have no connection to be related to.
    r.rule(
        "icmp type { echo-request, destination-unreachable, time-exceeded, \
         parameter-problem } counter accept comment \"essential ICMP\"",
    );
    r.rule(
        "icmpv6 type { echo-request, destination-unreachable, packet-too-big, \
         time-exceeded, parameter-problem, nd-router-solicit, nd-router-advert, \
         nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, \
         mld-listener-report, mld2-listener-report } counter accept \
         comment \"essential ICMPv6 and neighbour discovery\"",
    );
    r.rule("ct state established,related accept comment \"replies and related\"");
    r.rule("ct state invalid counter drop comment \"invalid\"");
    r.blank();
    for cidr in &s.firewall.ssh_sources {
        r.rule(&format!(
            "{} tcp dport 22 counter accept comment \"ssh\"",
            saddr(cidr)
        ));
    }
    for (ports, proto, what) in kubernetes_ports(s.role) {
        r.rule(&format!(
            "{} dport {ports} counter accept comment \"{what}\"",
            proto_name(proto)
        ));
    }
    match s.firewall.cni {
        Cni::Vxlan => r.rule(
            "udp dport { 4789, 8472 } counter accept comment \"VXLAN (IANA 4789, Linux/flannel 8472)\"",
        ),
        Cni::Bgp => r.rule("tcp dport 179 counter accept comment \"BGP\""),
        Cni::Ipip => r.rule("ip protocol 4 counter accept comment \"IP-in-IP\""),
        Cni::None => {}
    }
    if s.proxy_mode() == Some(ProxyMode::Ipvs) {
        // In IPVS mode kube-proxy puts every ClusterIP on the dummy kube-ipvs0 as a local
        // address: pod→ClusterIP traffic passes this chain before IPVS (LOCAL_IN, later
        // priority) rewrites it, so the service range must be let in.
        for cidr in &s.firewall.service_cidrs {
            r.rule(&format!(
                "{} counter accept comment \"IPVS ClusterIPs (local on kube-ipvs0)\"",
                daddr(cidr)
            ));
        }
    }
    for (i, rule) in s.firewall.rules.iter().enumerate() {
        let Ok((lo, hi)) = rule.ports.bounds() else {
            continue; // unreachable: validation rejected the settings
        };
        let ports = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        for cidr in &rule.sources {
            r.rule(&format!(
                "{} {} dport {ports} counter accept comment \"firewall.rules[{i}]\"",
                saddr(cidr),
                proto_name(rule.protocol)
            ));
        }
    }
    r.blank();
    r.rule(&format!(
        "limit rate 5/second burst 10 packets log prefix \"{DROP_LOG_PREFIX}\" level info"
    ));
    r.rule("counter drop comment \"default deny\"");
    r.line("\t}");
    r.line("}");
    r.text
}

#[derive(Default)]
struct Ruleset {
    text: String,
}

impl Ruleset {
    fn line(&mut self, l: &str) {
        let _ = writeln!(self.text, "{l}");
    }
    fn rule(&mut self, l: &str) {
        let _ = writeln!(self.text, "\t\t{l}");
    }
    fn blank(&mut self) {
        self.text.push('\n');
    }
}

fn proto_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

fn family(c: &Cidr) -> &'static str {
    if c.addr.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn saddr(c: &Cidr) -> String {
    format!("{} saddr {c}", family(c))
}

fn daddr(c: &Cidr) -> String {
    format!("{} daddr {c}", family(c))
}

#[cfg(test)]
mod tests;
