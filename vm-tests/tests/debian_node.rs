//! debian-node (image-recipes/debian-node.yaml: systemd, containerd, nftables, IPVS),
//! built once per machine per inputs by [`debian_node_image`] and booted from its qcow2
//! under OVMF, as `harmony run OUT --format qcow2` boots it. Every test in this file
//! shares that one image; keep boots few (each costs about a minute under TCG).

use std::time::{Duration, Instant};

use harmony::run::forward::Forward;
use harmony::run::medium::{DiskFormat, Format, MediumChoice};
use harmony::run::{wait_for_first_boot, FirstBoot, Vm, VmOptions};
use harmony_vm_tests::{debian_node_image, echo_requested, write_config};
use serde_json::json;

/// systemd, containerd and the agent's unit wait under TCG take their time.
const BOOT: Duration = Duration::from_secs(900);

/// Boot debian-node's qcow2 under OVMF with `config` and return the first-boot report
/// and the seconds from QEMU's start to it.
fn boot_qcow2(config: &serde_json::Value) -> (FirstBoot, f64) {
    let out = debian_node_image();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "node.ign", config);
    let opts = VmOptions {
        ignition: Some(cfg),
        echo: echo_requested(),
        memory_mb: 2048,
        // TCG on a busy host can fail the kernel's IO-APIC timer check (seen here).
        extra_cmdline: vec!["no_timer_check".into()],
        medium: MediumChoice::Format(Format::Disk(DiskFormat::Qcow2)),
        ..VmOptions::new(out)
    };
    let started = Instant::now();
    let vm = Vm::boot(&opts).expect("starting QEMU");
    let report = wait_for_first_boot(&vm, BOOT)
        .unwrap_or_else(|e| panic!("first boot: {e}\n{}", vm.tail().join("\n")));
    let secs = started.elapsed().as_secs_f64();
    vm.shutdown().unwrap();
    (report, secs)
}

/// The report's entry for unit `name`.
fn unit<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["units"]
        .as_array()
        .expect("units[]")
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in the report: {report}"))
}

/// A unit the config writes and enables, and one the image has but leaves disabled
/// (cni-dhcp.service, the CNI DHCP daemon) that the config only enables, are both active
/// in the same boot, as Ignition would have them; containerd (enabled by its package) is
/// active too. Before systemd was told to reload, both named units stayed inactive until
/// the next boot and the report had no state at all.
#[test]
#[ignore = "not yet run against main: debian-node boots only with the squashfs writer that replaced backhand (README, debian-node); drop once it has passed here"]
fn units_the_config_writes_or_enables_are_active_in_the_same_boot() {
    let config = json!({
        "ignition": {"version": "3.3.0"},
        "systemd": {"units": [
            {
                "name": "harmony-hello.service",
                "enabled": true,
                "contents": "[Unit]\nDescription=written by first boot\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo hello > /run/harmony-hello'\n\n[Install]\nWantedBy=multi-user.target\n"
            },
            {"name": "cni-dhcp.service", "enabled": true},
            {"name": "containerd.service"}
        ]}
    });
    let (report, secs) = boot_qcow2(&config);
    let r = &report.json;
    println!("harmony run to the first-boot report (qcow2, OVMF): {secs:.1} s");
    println!("{}", report.line);
    assert_eq!(r["status"], "success", "{r}");
    for name in [
        "harmony-hello.service",
        "cni-dhcp.service",
        "containerd.service",
    ] {
        assert_eq!(unit(r, name)["state"], "active", "{name}: {r}");
    }
    assert_eq!(unit(r, "harmony-hello.service")["enabled"], true, "{r}");
    assert_eq!(unit(r, "cni-dhcp.service")["enabled"], true, "{r}");
}

/// Node settings without a cluster: a worker's firewall that lets 10.0.2.2 (the host as
/// QEMU's user network shows it) reach 8080, lets only 192.0.2.0/24 reach 8081 and SSH,
/// and IPVS with the round-robin scheduler.
const FIREWALL_AND_IPVS_SETTINGS: &str = "role: worker
firewall:
  ssh_sources: [192.0.2.0/24]
  rules:
    - {ports: 8080, protocol: tcp, sources: [10.0.2.2/32]}
    - {ports: 8081, protocol: tcp, sources: [192.0.2.0/24]}
ipvs:
  enabled: true
  scheduler: rr
";

/// Two real servers in network namespaces behind veth pairs (as pods are), a virtual IP
/// on a dummy interface (as kube-proxy's kube-ipvs0), an IPVS virtual service in NAT
/// mode with the round-robin scheduler, then four requests to the virtual IP from the
/// node itself; the answers and ipvsadm's table go to the console.
const IPVS_PROBE: &str = r#"#!/bin/sh
set -eu
vip=10.96.0.10
for n in 1 2; do
    ip netns add real$n
    ip link add veth-real$n type veth peer name eth0 netns real$n
    ip addr add 10.250.$n.1/24 dev veth-real$n
    ip link set veth-real$n up
    ip -n real$n addr add 10.250.$n.2/24 dev eth0
    ip -n real$n link set lo up
    ip -n real$n link set eth0 up
    ip -n real$n route add default via 10.250.$n.1
    ip netns exec real$n socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:"echo real$n" &
done
ip link add kube-ipvs0 type dummy
ip addr add $vip/32 dev kube-ipvs0
# kube-proxy sets this in IPVS mode: IPVS connections keep their conntrack entries, so
# the replies from the real servers are `established` for the firewall's input chain.
sysctl -qw net.ipv4.vs.conntrack=1
ipvsadm -A -t $vip:80 -s rr
ipvsadm -a -t $vip:80 -r 10.250.1.2:80 -m
ipvsadm -a -t $vip:80 -r 10.250.2.2:80 -m
for n in 1 2; do
    until ip netns exec real$n socat -T2 - TCP:127.0.0.1:80 </dev/null >/dev/null 2>&1; do sleep 0.2; done
done
answers=""
for i in 1 2 3 4; do
    answers="$answers $(socat -T5 - TCP:$vip:80 </dev/null || echo none)"
done
echo "IPVS-TABLE $(ipvsadm -Ln -t $vip:80 | tr -s ' \n' ' ')"
echo "IPVS-PROBE$answers"
"#;

fn socat_unit(port: u16, answer: &str) -> String {
    format!(
        "[Unit]\nDescription=answers {answer} on tcp {port}\nAfter=network.target\n\n\
         [Service]\nExecStart=/usr/bin/socat TCP-LISTEN:{port},fork,reuseaddr SYSTEM:'echo {answer}'\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// What a TCP client reads from `127.0.0.1:port` within a few seconds: slirp accepts
/// every connection first and closes it when the guest drops the SYN, so an answer is
/// read, never inferred from connect().
fn read_answer(port: u16) -> String {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim().to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// One boot of debian-node's qcow2 under OVMF with node settings and no cluster:
/// - the firewall is live in the guest: through host forwards (the guest sees the host as
///   10.0.2.2), a port allowed from 10.0.2.2 answers, a port allowed only from
///   192.0.2.0/24 stays silent although its listener is active, and SSH stays silent to
///   a source outside `ssh_sources` although sshd is active;
/// - L3/L4 load balancing in the guest: an IPVS virtual service (NAT, rr) towards two
///   real servers answers through its virtual IP in turn: real1 real2 real1 real2.
#[test]
#[ignore = "not yet run against main: debian-node boots only with the squashfs writer that replaced backhand (README, debian-node); drop once it has passed here"]
fn firewall_is_live_and_ipvs_balances_in_the_booted_node() {
    let out = debian_node_image();
    let units = json!([
        {"name": "probe-allowed.service", "enabled": true, "contents": socat_unit(8080, "allowed-8080")},
        {"name": "probe-other-source.service", "enabled": true, "contents": socat_unit(8081, "other-8081")},
        {"name": "ipvs-probe.service", "enabled": true, "contents":
            "[Unit]\nDescription=IPVS round robin through a virtual IP\nAfter=network.target\n\n\
             [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/usr/local/sbin/ipvs-probe\n\
             StandardOutput=journal+console\n\n[Install]\nWantedBy=multi-user.target\n"},
        {"name": "ssh.service"}
    ]);
    let config = json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [
            {"path": "/etc/harmony/node.yaml", "mode": 384,
             "contents": {"source": format!("data:,{}", urlencode(FIREWALL_AND_IPVS_SETTINGS))}},
            {"path": "/usr/local/sbin/ipvs-probe", "mode": 493,
             "contents": {"source": format!("data:,{}", urlencode(IPVS_PROBE))}}
        ]},
        "systemd": {"units": units}
    });
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "node.ign", &config);
    let (allowed, other, ssh) = (free_port(), free_port(), free_port());
    let opts = VmOptions {
        ignition: Some(cfg),
        echo: echo_requested(),
        memory_mb: 2048,
        // TCG on a busy host can fail the kernel's IO-APIC timer check (seen here).
        extra_cmdline: vec!["no_timer_check".into()],
        medium: MediumChoice::Format(Format::Disk(DiskFormat::Qcow2)),
        forwards: vec![
            Forward::loopback_tcp(allowed, 8080),
            Forward::loopback_tcp(other, 8081),
            Forward::loopback_tcp(ssh, 22),
        ],
        ..VmOptions::new(out)
    };
    let vm = Vm::boot(&opts).expect("starting QEMU");
    let ipvs = vm
        .wait_for_line(|l| l.contains("IPVS-PROBE"), BOOT)
        .unwrap_or_else(|e| panic!("no IPVS-PROBE line: {e}\n{}", vm.tail().join("\n")));
    let report = wait_for_first_boot(&vm, BOOT)
        .unwrap_or_else(|e| panic!("first boot: {e}\n{}", vm.tail().join("\n")));
    let r = &report.json;
    println!("{}", report.line);
    assert_eq!(r["status"], "success", "{r}");
    for name in [
        "probe-allowed.service",
        "probe-other-source.service",
        "ipvs-probe.service",
        "ssh.service",
    ] {
        assert_eq!(unit(r, name)["state"], "active", "{name}: {r}");
    }
    let firewall = r["node_role"]
        .as_array()
        .expect("node_role[]")
        .iter()
        .find(|s| {
            s["step"]
                .as_str()
                .is_some_and(|s| s.starts_with("load-firewall"))
        })
        .unwrap_or_else(|| panic!("no load-firewall step: {r}"));
    assert_eq!(firewall["outcome"], "done", "{r}");

    // The NIC gets its address from networkd's DHCP, possibly after the report.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answer = read_answer(allowed);
    while answer.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        answer = read_answer(allowed);
    }
    let silent_other = read_answer(other);
    let silent_ssh = read_answer(ssh);
    vm.shutdown().unwrap();
    println!("probe 8080 from 10.0.2.2: {answer:?}; 8081: {silent_other:?}; ssh: {silent_ssh:?}");
    assert_eq!(answer, "allowed-8080");
    assert_eq!(silent_other, "", "8081 is allowed only from 192.0.2.0/24");
    assert_eq!(
        silent_ssh, "",
        "ssh_sources is 192.0.2.0/24: no SSH banner for 10.0.2.2"
    );

    let probe = ipvs[ipvs.find("IPVS-PROBE").unwrap()..].trim().to_string();
    println!("{probe}");
    let answers: Vec<&str> = probe.split_whitespace().skip(1).collect();
    assert_eq!(answers.len(), 4, "{probe}");
    let mut seen = answers.clone();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(
        seen,
        ["real1", "real2"],
        "both real servers answer: {probe}"
    );
    assert!(
        answers[0] != answers[1] && answers[0] == answers[2] && answers[1] == answers[3],
        "round robin alternates: {probe}"
    );
}

/// Issue 14 item 9: a user and key from the config; a real `ssh` from the host through a
/// forward logs in with that key (Ignition puts it in `~/.ssh/authorized_keys.d/ignition`,
/// the agent's sshd drop-in makes sshd read it), and a second key not in the config is
/// refused. The firewall lets 10.0.2.2 (the host, as QEMU's user network shows it) reach SSH.
#[test]
#[ignore = "not yet run against main: debian-node boots only with the squashfs writer that replaced backhand (README, debian-node); drop once it has passed here"]
fn ssh_logs_in_with_the_configured_key_and_refuses_another() {
    let out = debian_node_image();
    let tmp = tempfile::tempdir().unwrap();
    let keygen = |name: &str| {
        let key = tmp.path().join(name);
        let st = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (Debian package openssh-client; scripts/setup-host.sh)");
        assert!(st.success(), "ssh-keygen failed");
        key
    };
    let (configured, other) = (keygen("configured"), keygen("other"));
    let public = std::fs::read_to_string(configured.with_extension("pub")).unwrap();
    let config = json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [public.trim()]}]},
        "storage": {"files": [
            {"path": "/etc/harmony/node.yaml", "mode": 384,
             "contents": {"source": format!("data:,{}", urlencode("role: worker\nfirewall:\n  ssh_sources: [10.0.2.2/32]\n"))}}
        ]},
        "systemd": {"units": [{"name": "ssh.service"}]}
    });
    let cfg = write_config(tmp.path(), "node.ign", &config);
    let port = free_port();
    let opts = VmOptions {
        ignition: Some(cfg),
        echo: echo_requested(),
        memory_mb: 2048,
        // TCG on a busy host can fail the kernel's IO-APIC timer check (seen here).
        extra_cmdline: vec!["no_timer_check".into()],
        medium: MediumChoice::Format(Format::Disk(DiskFormat::Qcow2)),
        forwards: vec![Forward::loopback_tcp(port, 22)],
        ..VmOptions::new(out)
    };
    let vm = Vm::boot(&opts).expect("starting QEMU");
    let report = wait_for_first_boot(&vm, BOOT)
        .unwrap_or_else(|e| panic!("first boot: {e}\n{}", vm.tail().join("\n")));
    let r = &report.json;
    println!("{}", report.line);
    assert_eq!(r["status"], "success", "{r}");
    assert_eq!(unit(r, "ssh.service")["state"], "active", "{r}");
    let ssh = |key: &std::path::Path| {
        std::process::Command::new("ssh")
            .args(["-p", &port.to_string(), "-i"])
            .arg(key)
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=20",
                "core@127.0.0.1",
                "echo",
                "SSH-LOGIN-OK",
            ])
            .output()
            .expect("ssh (Debian package openssh-client; scripts/setup-host.sh)")
    };
    // The NIC gets its address from networkd's DHCP, possibly after the report.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut login = ssh(&configured);
    while !login.status.success() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(3));
        login = ssh(&configured);
    }
    let refused = ssh(&other);
    vm.shutdown().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    println!(
        "configured key: {:?} {:?}; other key: {:?}",
        text(&login.stdout),
        text(&login.stderr),
        text(&refused.stderr)
    );
    assert_eq!(
        text(&login.stdout),
        "SSH-LOGIN-OK",
        "{}",
        text(&login.stderr)
    );
    assert!(
        !refused.status.success(),
        "a key not in the config logged in"
    );
    assert!(
        text(&refused.stderr).contains("Permission denied"),
        "{}",
        text(&refused.stderr)
    );
}

/// Percent-encoding for a `data:,` URL (RFC 2397): everything but unreserved characters.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
