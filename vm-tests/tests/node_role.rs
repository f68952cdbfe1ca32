//! The node role in the booted default image: a cloud-config with `harmony:` settings
//! enabling IPVS (and the firewall, always on) makes the agent load the IPVS and
//! netfilter modules itself (the image has no modprobe and no modules.dep), set the
//! sysctls, tighten /var/log and load the firewall table; a late `runcmd` then shows
//! /proc/modules, /proc/net/ip_vs, /proc/sys and `nft list table inet harmony` on the
//! console.
//!
//! The default image is busybox-only and has no `nft`: the config gives the node the
//! host's `nft` and its libraries (behind a wrapper that runs them with their own
//! loader), as an operator's image would carry nft. Without nft on the host the test
//! still runs and checks that the load is reported skipped, with a warning.
//!
//! Join comes after all of this and retries an unreachable API server for minutes:
//! the test has what it needs by then and stops the VM.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harmony::run::{Vm, VmOptions};
use harmony_vm_tests::default_image;

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
  - [sh, -c, "if [ -x /usr/sbin/nft ]; then /usr/sbin/nft list table inet harmony | sed 's/^/NR-NFT /'; fi; echo NR-DONE"]
"#;

/// write_files entries that give the guest the host's nft: the binary, its libraries
/// and their loader under /opt/nft, and /usr/sbin/nft running them.
fn nft_files() -> Option<String> {
    let nft = Path::new("/usr/sbin/nft");
    if !nft.is_file() {
        return None;
    }
    let ldd = Command::new("ldd").arg(nft).output().ok()?;
    let mut files = vec![("nft".to_string(), nft.to_path_buf())];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // `libx.so => /path (0x…)`, `/lib64/ld-linux… (0x…)`; linux-vdso has no file.
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let name = Path::new(path).file_name()?.to_string_lossy().into_owned();
        if name.starts_with("ld-linux") {
            files.push(("ld.so".to_string(), path.into()));
        } else {
            files.push((name, path.into()));
        }
    }
    let mut yaml = String::new();
    for (name, path) in files {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -9c '{}' | base64 -w0", path.display()))
            .output()
            .ok()?;
        yaml.push_str(&format!(
            "  - path: /opt/nft/{name}\n    permissions: '0755'\n    encoding: gz+b64\n    content: {}\n",
            String::from_utf8(out.stdout).ok()?
        ));
    }
    yaml.push_str(
        "  - path: /usr/sbin/nft\n    permissions: '0755'\n    content: |\n      #!/bin/sh\n      \
         exec /opt/nft/ld.so --library-path /opt/nft /opt/nft/nft \"$@\"\n",
    );
    Some(yaml)
}

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
    let nft = nft_files();
    if nft.is_none() {
        println!("SKIPPED the firewall load (tool nft not installed on the host)");
    }
    let cfg = tmp.path().join("user-data");
    let mut text = format!("#cloud-config\n{SETTINGS}{RUNCMD}");
    if let Some(files) = &nft {
        text.push_str("write_files:\n");
        text.push_str(files);
    }
    std::fs::write(&cfg, text).unwrap();
    let vm = Vm::boot(&VmOptions {
        out_dir: default_image().to_path_buf(),
        ignition: Some(cfg),
        state: None,
        memory_mb: 1024,
        extra_cmdline: Vec::new(),
        extra_drives: Vec::new(),
        echo: std::env::var_os("HARMONY_TEST_ECHO").is_some(),
        medium: Default::default(),
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
    let firewall = if nft.is_some() {
        "load-firewall /etc/nftables.d/harmony.nft: Done"
    } else {
        "load-firewall /etc/nftables.d/harmony.nft: Skipped: nft is not installed"
    };
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
    if nft.is_some() {
        let mut table = Vec::new();
        loop {
            let line = vm
                .wait_for_line(|l| l.contains("NR-NFT") || l.contains("NR-DONE"), LINE)
                .expect("nft listing");
            if line.contains("NR-DONE") {
                break;
            }
            table.push(line[line.find("NR-NFT").unwrap() + 6..].to_string());
        }
        let table = table.join("\n");
        println!("nft list table inet harmony, in the guest:\n{table}");
        assert!(table.contains("table inet harmony"), "{table}");
        assert!(table.contains("policy drop"), "{table}");
        assert!(
            table.contains("ip saddr 10.0.2.0/24 tcp dport 22"),
            "{table}"
        );
        assert!(table.contains("ip daddr 10.96.0.0/12"), "{table}");
    }
    vm.shutdown().unwrap();
}
