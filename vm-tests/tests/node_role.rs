//! The node role in the booted default image: a cloud-config with `harmony:` settings
//! enabling IPVS (and the firewall, always on) makes the agent load the IPVS and
//! netfilter modules itself (the image has no modprobe and no modules.dep), set the
//! sysctls, tighten /var/log and write the firewall; a late `runcmd` then shows
//! /proc/modules, /proc/net/ip_vs, /proc/sys, /var/log and the ruleset on the console.
//!
//! The default image is busybox-only and has no `nft`: the ruleset is written (0600,
//! table inet harmony) and its load is reported skipped with a warning, as it must be;
//! loading it into a real kernel is agent/tests/firewall_netns.rs's part. (Handing the
//! guest the host's nft and its ~4.5 MB of libraries through the config made first boot
//! under TCG far slower than this test may take.)
//!
//! Join comes after all of this and retries an unreachable API server for minutes:
//! the test has what it needs by then and stops the VM.

use std::time::Duration;

use harmony::run::{Vm, VmOptions};
use harmony_vm_tests::{default_image, echo_requested};

const BOOT: Duration = Duration::from_secs(240);
const LINE: Duration = Duration::from_secs(60);

const SETTINGS: &str = r#"harmony:
  cluster:
    api_endpoints: ["https://10.0.2.2:6443"]
    bootstrap_token: abcdef.0123456789abcdef
    ca_cert_hashes: ["sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708"]
  role: worker
  node:
    labels: {example.com/rack: r1}
  firewall:
    ssh_sources: [10.0.2.0/24]
    cni: vxlan
  ipvs:
    enabled: true
    scheduler: wrr
    strict_arp: true
"#;

const RUNCMD: &str = r#"runcmd:
  - [sh, -c, "echo NR-MODULES $(cut -d' ' -f1 /proc/modules | grep -E '^(ip_vs|ip_vs_rr|ip_vs_wrr|ip_vs_sh|nf_conntrack|br_netfilter|nf_tables|nft_ct|nft_limit|nft_log)$' | sort | tr '\n' ' ')"]
  - [sh, -c, "test -r /proc/net/ip_vs && echo NR-IPVS-PRESENT $(head -1 /proc/net/ip_vs)"]
  - [sh, -c, "echo NR-SYSCTL ip_forward=$(cat /proc/sys/net/ipv4/ip_forward) bridge_nf_call_iptables=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables) nf_conntrack_max=$(cat /proc/sys/net/netfilter/nf_conntrack_max)"]
  - [sh, -c, "echo NR-LOGDIR $(stat -c %a /var/log)"]
  - [sh, -c, "echo NR-RULESET $(stat -c %a /etc/nftables.d/harmony.nft) $(grep -c 'counter accept' /etc/nftables.d/harmony.nft) $(grep -m1 '^table' /etc/nftables.d/harmony.nft)"]
"#;

fn wait(vm: &Vm, marker: &str) -> String {
    let line = vm
        .wait_for_line(|l| l.contains(marker), LINE)
        .unwrap_or_else(|e| panic!("no {marker} line: {e}"));
    let text = line[line.find(marker).unwrap() + marker.len()..]
        .trim()
        .to_string();
    println!("{marker} {text}");
    text
}

#[test]
fn ipvs_modules_sysctls_log_permissions_and_the_firewall_in_the_booted_image() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("user-data");
    std::fs::write(&cfg, format!("#cloud-config\n{SETTINGS}{RUNCMD}")).unwrap();
    let vm = Vm::boot(&VmOptions {
        ignition: Some(cfg),
        echo: echo_requested(),
        ..VmOptions::new(default_image())
    })
    .expect("boot");

    // Every node role step, as the agent reports it on the console.
    let mut steps = Vec::new();
    for _ in 0..6 {
        let line = vm
            .wait_for_line(|l| l.contains("harmony-agent: node role: "), BOOT)
            .expect("node role step line");
        let step = line[line.find("node role: ").unwrap() + 11..]
            .trim()
            .to_string();
        println!("step {step}");
        let done = step.starts_with("load-firewall");
        steps.push(step);
        if done {
            break;
        }
    }
    for (i, name) in [
        "tighten-log-permissions /var/log: Done",
        "load-modules node: Done",
        "load-modules ipvs: Done",
        "set-sysctls: Done",
    ]
    .iter()
    .enumerate()
    {
        assert!(steps[i].starts_with(name), "step {i}: {}", steps[i]);
    }
    let firewall = "load-firewall /etc/nftables.d/harmony.nft: Skipped: nft is not installed";
    assert!(steps[4].starts_with(firewall), "{}", steps[4]);

    let modules = wait(&vm, "NR-MODULES");
    for m in [
        "br_netfilter",
        "ip_vs",
        "ip_vs_rr",
        "ip_vs_sh",
        "ip_vs_wrr",
        "nf_conntrack",
    ] {
        assert!(
            modules.split(' ').any(|x| x == m),
            "{m} not loaded: {modules}"
        );
    }
    let ipvs = wait(&vm, "NR-IPVS-PRESENT");
    assert!(ipvs.starts_with("IP Virtual Server version"), "{ipvs}");
    assert_eq!(
        wait(&vm, "NR-SYSCTL"),
        "ip_forward=1 bridge_nf_call_iptables=1 nf_conntrack_max=131072"
    );
    assert_eq!(wait(&vm, "NR-LOGDIR"), "750");
    // 0600; ICMP, ICMPv6, ssh, 4 worker port rules, vxlan, the IPVS Service range.
    assert_eq!(wait(&vm, "NR-RULESET"), "600 9 table inet harmony");
    vm.shutdown().unwrap();
}
