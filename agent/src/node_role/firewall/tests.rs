use std::process::Command;

use ignition::node_settings::NodeSettings;

use super::*;

const CLUSTER: &str = "cluster:\n  api_endpoints: [\"https://api:6443\"]\n  \
    bootstrap_token: abcdef.0123456789abcdef\n  ca_cert_hashes: \
    [\"sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\"]\n";

fn settings(rest: &str) -> NodeSettings {
    NodeSettings::from_yaml_str(&format!("{CLUSTER}{rest}")).unwrap()
}

fn worker() -> NodeSettings {
    settings(
        "role: worker\nfirewall:\n  ssh_sources: [192.0.2.0/24, \"2001:db8::/32\"]\n  cni: vxlan\n  \
         rules:\n    - {ports: \"8080-8090\", protocol: tcp, sources: [10.0.0.0/8, \"fd00::/8\"]}\n    \
         - {ports: 53, protocol: udp, sources: [0.0.0.0/0, \"::/0\"]}\n",
    )
}

/// The whole file for a worker: what `nft -f` gets, line for line.
#[test]
fn a_worker_ruleset_line_for_line() {
    let expected = "\
# Harmony node firewall, rendered by harmony-agent from the `harmony:` node
# settings. Load with `nft -f`: it replaces table inet harmony (and nothing else)
# in one transaction. Do not edit: the next render overwrites it.
table inet harmony
delete table inet harmony
table inet harmony {
\tchain input {
\t\ttype filter hook input priority filter; policy drop;

\t\tiif \"lo\" accept comment \"loopback\"
\t\ticmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } counter accept comment \"essential ICMP\"
\t\ticmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, mld-listener-report, mld2-listener-report } counter accept comment \"essential ICMPv6 and neighbour discovery\"
\t\tct state established,related accept comment \"replies and related\"
\t\tct state invalid counter drop comment \"invalid\"

\t\tip saddr 192.0.2.0/24 tcp dport 22 counter accept comment \"ssh\"
\t\tip6 saddr 2001:db8::/32 tcp dport 22 counter accept comment \"ssh\"
\t\ttcp dport 10250 counter accept comment \"kubelet API\"
\t\ttcp dport 10256 counter accept comment \"kube-proxy health\"
\t\ttcp dport 30000-32767 counter accept comment \"NodePort services\"
\t\tudp dport 30000-32767 counter accept comment \"NodePort services\"
\t\tudp dport { 4789, 8472 } counter accept comment \"VXLAN (IANA 4789, Linux/flannel 8472)\"
\t\tip saddr 10.0.0.0/8 tcp dport 8080-8090 counter accept comment \"firewall.rules[0]\"
\t\tip6 saddr fd00::/8 tcp dport 8080-8090 counter accept comment \"firewall.rules[0]\"
\t\tip saddr 0.0.0.0/0 udp dport 53 counter accept comment \"firewall.rules[1]\"
\t\tip6 saddr ::/0 udp dport 53 counter accept comment \"firewall.rules[1]\"

\t\tlimit rate 5/second burst 10 packets log prefix \"harmony-drop: \" level info
\t\tcounter drop comment \"default deny\"
\t}
}
";
    assert_eq!(render(&worker()), expected);
}

#[test]
fn never_flushes_the_ruleset_and_replaces_only_its_own_table() {
    let text = render(&worker());
    assert!(!text.contains("flush"), "{text}");
    let tables: Vec<_> = text.lines().filter(|l| l.contains("table ")).collect();
    assert!(
        tables.iter().all(|l| l.contains("table inet harmony")),
        "{tables:?}"
    );
}

#[test]
fn control_plane_ports_and_no_worker_ports() {
    let text = render(&settings("role: control-plane\n"));
    for port in ["6443", "2379-2380", "10250", "10257", "10259"] {
        assert!(
            text.contains(&format!("tcp dport {port} counter accept")),
            "{port}"
        );
    }
    assert!(!text.contains("30000-32767"));
    assert!(!text.contains("10256"));
    // No SSH sources: no SSH rule at all, so port 22 falls to the default deny.
    assert!(!text.contains("dport 22"));
}

#[test]
fn cni_choices() {
    let with = |cni: &str| {
        render(&settings(&format!(
            "role: worker\nfirewall: {{cni: {cni}}}\n"
        )))
    };
    assert!(with("bgp").contains("\t\ttcp dport 179 counter accept comment \"BGP\"\n"));
    assert!(with("ipip").contains("\t\tip protocol 4 counter accept comment \"IP-in-IP\"\n"));
    assert!(with("vxlan").contains("udp dport { 4789, 8472 }"));
    let none = with("none");
    assert!(!none.contains("179") && !none.contains("4789") && !none.contains("ip protocol"));
}

#[test]
fn ipvs_lets_the_service_range_in() {
    let off = render(&settings("role: worker\n"));
    assert!(!off.contains("daddr"));
    let on = render(&settings(
        "role: worker\nipvs: {enabled: true}\nfirewall: {service_cidrs: [10.96.0.0/12, \"fd00:96::/108\"]}\n",
    ));
    assert!(on.contains("\t\tip daddr 10.96.0.0/12 counter accept comment \"IPVS ClusterIPs"));
    assert!(on.contains("\t\tip6 daddr fd00:96::/108 counter accept"));
    let default = render(&settings("role: worker\nipvs: {enabled: true}\n"));
    assert!(default.contains("ip daddr 10.96.0.0/12 counter accept"));
}

/// The kernel's own parser is the judge: `nft -c` in a fresh network namespace (it
/// checks the whole transaction against the kernel and changes nothing).
#[test]
fn nft_accepts_every_variant() {
    if Command::new("nft").arg("--version").output().is_err()
        || Command::new("unshare").arg("--version").output().is_err()
    {
        harmony_test_support::skip(
            "tool nft or unshare not installed: Debian packages nftables, util-linux",
        );
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        harmony_test_support::skip("nft -c needs root for a network namespace");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let variants = [
        render(&worker()),
        render(&settings("role: control-plane\nfirewall: {cni: bgp}\n")),
        render(&settings(
            "role: worker\nfirewall: {cni: ipip}\nipvs: {enabled: true}\n",
        )),
    ];
    for (i, text) in variants.iter().enumerate() {
        let file = dir.path().join(format!("{i}.nft"));
        std::fs::write(&file, text).unwrap();
        let out = Command::new("unshare")
            .args(["--net", "nft", "-c", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "variant {i}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
