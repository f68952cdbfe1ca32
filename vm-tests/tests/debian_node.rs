//! debian-node (image-recipes/debian-node.yaml: systemd, containerd, nftables, IPVS),
//! built once per machine per inputs by [`debian_node_image`] and booted ONCE from its
//! qcow2 under OVMF, as `harmony run OUT --format qcow2` boots it: every test in this file
//! asserts one thing about that one boot ([`node_boot`]), which costs minutes under TCG.
//! Others who need a booted debian-node add what they need to [`node_boot`]'s config
//! and probes, and a test here that reads it.

#[path = "../../agent/tests/join_server/mod.rs"]
mod join_server;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use harmony::run::forward::Forward;
use harmony::run::medium::{DiskFormat, Format, MediumChoice};
use harmony::run::{Vm, VmOptions, FIRSTBOOT_MARKER};
use harmony_vm_tests::{debian_node_image, echo_requested, free_port, openscap, write_config};
use join_server::{cluster_kubeconfig, configmap_json, openssl_jws, ApiServer, Pki};
use serde_json::json;

/// systemd, containerd, the join and the agent's unit wait under TCG take their time.
const BOOT: Duration = Duration::from_secs(1200);

/// What the node's own probes print on the console (units with
/// `StandardOutput=journal+console`), each line starting with its tag.
const PROBE_TAGS: [&str; 5] = [
    "IPVS-PROBE",
    "GETCAP",
    "KUBELET-ARGS",
    "KUBELET-CONFIG",
    "SSH-OTHER-SOURCE",
];

/// Node settings: a worker that joins the stand-in API server (port filled in), with a
/// firewall that lets 10.0.2.2 (the host as QEMU's user network shows it) reach 8080 and
/// SSH, lets only 192.0.2.0/24 reach 8081, IPVS with the round-robin scheduler, and
/// kubelet settings the stand-in kubelet must be started with.
fn node_settings(api_port: u16, ca_pin: &str) -> String {
    format!(
        "cluster:
  api_endpoints: [\"https://10.0.2.2:{api_port}\"]
  bootstrap_token: abcdef.0123456789abcdef
  ca_cert_hashes: [\"{ca_pin}\"]
  # The NIC gets its address from networkd while first boot runs.
  discovery_timeout_seconds: 600
role: worker
node:
  labels: {{example.com/rack: r1}}
kubelet:
  max_pods: 150
firewall:
  ssh_sources: [10.0.2.2/32]
  rules:
    - {{ports: 8080, protocol: tcp, sources: [10.0.2.2/32]}}
    - {{ports: 8081, protocol: tcp, sources: [192.0.2.0/24]}}
ipvs:
  enabled: true
  scheduler: rr
"
    )
}

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
    # -t30: the client's EOF comes first, and socat's default 0.5 s wait for the echo
    # after it was too short under TCG on a loaded host (`echo: I/O error`).
    ip netns exec real$n socat -t30 TCP-LISTEN:80,fork,reuseaddr SYSTEM:"echo real$n" &
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
    # -t: after its own EOF the client waits that long for the answer (socat's default
    # 0.5 s was too short under TCG: the server's echo then hit a closed socket).
    answers="$answers $(socat -t30 -T30 - TCP:$vip:80 </dev/null || echo none)"
done
echo "IPVS-TABLE $(ipvsadm -Ln -t $vip:80 | tr -s ' \n' ' ')"
echo "IPVS-PROBE$answers"
"#;

/// SSH from a source outside `ssh_sources`: a network namespace behind a veth pair (as a
/// pod is) connects to the node's port 22; the banner it read, if any, goes to the console.
const SSH_SOURCE_PROBE: &str = r#"#!/bin/sh
ip netns add sshsrc
ip link add veth-sshsrc type veth peer name eth0 netns sshsrc
ip addr add 10.250.9.1/24 dev veth-sshsrc
ip link set veth-sshsrc up
ip -n sshsrc addr add 10.250.9.2/24 dev eth0
ip -n sshsrc link set lo up
ip -n sshsrc link set eth0 up
banner=$(ip netns exec sshsrc socat -T10 - TCP:10.250.9.1:22,connect-timeout=10 </dev/null 2>/dev/null | head -n 1 || true)
echo "SSH-OTHER-SOURCE [$banner]"
"#;

/// The capability the image's build step gave ping, as the booted node's getcap reads it
/// (and ping's mode: no setuid bit is needed).
const GETCAP_PROBE: &str = "#!/bin/sh
echo \"GETCAP $(getcap /usr/bin/ping) mode $(stat -c %a /usr/bin/ping)\"
";

/// A stand-in kubelet (Debian ships none): it prints the flags it was started with and
/// the KubeletConfiguration its `--config` names, checks its bootstrap kubeconfig, then
/// stays up as kubelet does.
const STAND_IN_KUBELET: &str = r#"#!/bin/sh
config=""
for arg in "$@"; do
    case "$arg" in --config=*) config="${arg#--config=}" ;; esac
done
echo "KUBELET-ARGS $*"
echo "KUBELET-CONFIG $(grep -E '^(maxPods|cgroupDriver):' "$config" | tr '\n' ' ')bootstrap $(stat -c %a /etc/kubernetes/bootstrap-kubelet.conf)"
exec sleep infinity
"#;

/// kubelet.service as kubeadm's packages make it (kubelet.service + 10-kubeadm.conf in
/// one file), running the stand-in.
const KUBELET_UNIT: &str = r#"[Unit]
Description=kubelet (stand-in)

[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"#;

fn socat_unit(port: u16, answer: &str) -> String {
    format!(
        "[Unit]\nDescription=answers {answer} on tcp {port}\nAfter=network.target\n\n\
         [Service]\nExecStart=/usr/bin/socat TCP-LISTEN:{port},fork,reuseaddr SYSTEM:'echo {answer}'\n\n\
         [Install]\nWantedBy=multi-user.target\n"
    )
}

/// A oneshot unit that runs `script` once the node is up and prints to the console.
fn probe_unit(description: &str, script: &str) -> String {
    format!(
        "[Unit]\nDescription={description}\nAfter=network.target\n\n\
         [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={script}\n\
         StandardOutput=journal+console\n\n[Install]\nWantedBy=multi-user.target\n"
    )
}

/// A file entry of an Ignition config.
fn file(path: &str, mode: u32, contents: &str) -> serde_json::Value {
    json!({"path": path, "mode": mode,
           "contents": {"source": format!("data:,{}", urlencode(contents))}})
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

/// What the one boot showed.
struct NodeBoot {
    /// The first-boot report.
    report: serde_json::Value,
    /// Seconds from QEMU's start to the report on the console.
    secs_to_report: f64,
    /// The probe lines, by tag ([`PROBE_TAGS`]), from the tag on.
    probes: Vec<String>,
    /// Through host forwards: 8080 (allowed from 10.0.2.2), 8081 (192.0.2.0/24 only).
    allowed: String,
    other_source: String,
    /// `ssh` from the host through the forward to 22, with the config's key and with
    /// another key.
    ssh_configured: Ssh,
    ssh_other: Ssh,
    /// Requests the stand-in API server answered (discovery: unverified, then pinned).
    api_hits: usize,
    ca_pin: String,
}

impl NodeBoot {
    fn probe(&self, tag: &str) -> &str {
        self.probes
            .iter()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| panic!("no {tag} line: {:?}", self.probes))
    }

    /// The report's entry for unit `name`.
    fn unit(&self, name: &str) -> &serde_json::Value {
        self.report["units"]
            .as_array()
            .expect("units[]")
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the report: {}", self.report))
    }
}

/// What one `ssh` run printed.
#[derive(Debug)]
struct Ssh {
    succeeded: bool,
    stdout: String,
    stderr: String,
}

/// `ssh core@127.0.0.1 echo SSH-LOGIN-OK` through the forward at `port`, with `key` only.
fn ssh(port: u16, key: &Path) -> Ssh {
    let out = std::process::Command::new("ssh")
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
        .expect("ssh (Debian package openssh-client; scripts/setup-host.sh)");
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    Ssh {
        succeeded: out.status.success(),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// A new ed25519 key pair at `dir/name` (and `.pub`).
fn keygen(dir: &Path, name: &str) -> std::path::PathBuf {
    let key = dir.join(name);
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (Debian package openssh-client; scripts/setup-host.sh)");
    assert!(st.success(), "ssh-keygen failed");
    key
}

/// The one boot every test here reads: debian-node's qcow2 under OVMF with a config that
/// writes and enables units, node settings (firewall, IPVS, kubelet) that join the
/// stand-in API server on the host, a stand-in kubelet, and probes. A failed boot is
/// kept as its error, so every test reports it and none boots again.
fn node_boot() -> &'static NodeBoot {
    static BOOTED: OnceLock<Result<NodeBoot, String>> = OnceLock::new();
    match BOOTED.get_or_init(boot) {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

fn boot() -> Result<NodeBoot, String> {
    let out = debian_node_image();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pki = Pki::new(&tmp.path().join("pki"));
    let kubeconfig = cluster_kubeconfig("https://10.0.2.2:6443", &pki.ca_pem);
    let sig = openssl_jws(&kubeconfig, "abcdef", "0123456789abcdef");
    let server = ApiServer::start(&pki, configmap_json(&kubeconfig, &[("abcdef", sig)]));
    let api_port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("the stand-in API server's port")?;
    let units = json!([
        {
            "name": "harmony-hello.service",
            "enabled": true,
            "contents": "[Unit]\nDescription=written by first boot\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'echo hello > /run/harmony-hello'\n\n[Install]\nWantedBy=multi-user.target\n"
        },
        // In the image, disabled (the CNI DHCP daemon): the config only enables it.
        {"name": "cni-dhcp.service", "enabled": true},
        {"name": "containerd.service"},
        {"name": "probe-allowed.service", "enabled": true, "contents": socat_unit(8080, "allowed-8080")},
        {"name": "probe-other-source.service", "enabled": true, "contents": socat_unit(8081, "other-8081")},
        {"name": "ipvs-probe.service", "enabled": true, "contents":
            probe_unit("IPVS round robin through a virtual IP", "/usr/local/sbin/ipvs-probe")},
        {"name": "getcap-probe.service", "enabled": true, "contents":
            probe_unit("file capabilities on the booted root", "/usr/local/sbin/getcap-probe")},
        // Written, not enabled: the join enables and starts it.
        {"name": "kubelet.service", "contents": KUBELET_UNIT},
        {"name": "ssh.service"},
        {"name": "ssh-source-probe.service", "enabled": true, "contents":
            probe_unit("SSH from a source outside ssh_sources", "/usr/local/sbin/ssh-source-probe")}
    ]);
    let (configured_key, other_key) = (
        keygen(tmp.path(), "configured"),
        keygen(tmp.path(), "other"),
    );
    let public = std::fs::read_to_string(configured_key.with_extension("pub"))
        .map_err(|e| format!("the configured key: {e}"))?;
    let config = json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [public.trim()]}]},
        "storage": {"files": [
            file("/etc/harmony/node.yaml", 0o600, &node_settings(api_port, &pki.ca_pin)),
            file("/usr/local/sbin/ssh-source-probe", 0o755, SSH_SOURCE_PROBE),
            file("/usr/local/sbin/ipvs-probe", 0o755, IPVS_PROBE),
            file("/usr/local/sbin/getcap-probe", 0o755, GETCAP_PROBE),
            file("/usr/local/bin/kubelet", 0o755, STAND_IN_KUBELET)
        ]},
        "systemd": {"units": units}
    });
    let cfg = write_config(tmp.path(), "node.ign", &config);
    let (allowed, other, ssh_port) = (free_port(), free_port(), free_port());
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
            Forward::loopback_tcp(ssh_port, 22),
        ],
        ..VmOptions::new(out)
    };
    let started = Instant::now();
    let vm = Vm::boot(&opts).map_err(|e| format!("starting QEMU: {e}"))?;
    let result = probe(&vm, started, allowed, other);
    // sshd may take a while after the report (host keys made at its first start).
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut ssh_configured = ssh(ssh_port, &configured_key);
    while result.is_ok() && !ssh_configured.succeeded && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(3));
        ssh_configured = ssh(ssh_port, &configured_key);
    }
    let ssh_other = ssh(ssh_port, &other_key);
    let tail = vm.tail().join("\n");
    vm.shutdown().map_err(|e| format!("stopping QEMU: {e}"))?;
    let (report, secs_to_report, probes, answers) = result.map_err(|e| format!("{e}\n{tail}"))?;
    let (allowed, other_source) = answers;
    println!("harmony run to the first-boot report (qcow2, OVMF): {secs_to_report:.1} s");
    println!("probe 8080 from 10.0.2.2: {allowed:?}; 8081: {other_source:?}");
    println!("ssh with the configured key: {ssh_configured:?}; with another: {ssh_other:?}");
    for p in &probes {
        println!("{p}");
    }
    Ok(NodeBoot {
        report,
        secs_to_report,
        probes,
        allowed,
        other_source,
        ssh_configured,
        ssh_other,
        api_hits: server.hits(),
        ca_pin: pki.ca_pin.clone(),
    })
}

type Probed = (serde_json::Value, f64, Vec<String>, (String, String));

/// Read the report and every probe line off the console (in whatever order they come),
/// then probe the firewall through the forwards.
fn probe(vm: &Vm, started: Instant, allowed: u16, other: u16) -> Result<Probed, String> {
    let seen: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let report_at: Mutex<Option<(String, f64)>> = Mutex::new(None);
    vm.wait_for_line(
        |l| {
            let mut seen = seen.lock().unwrap();
            let mut report = report_at.lock().unwrap();
            if let Some(at) = l.find(FIRSTBOOT_MARKER) {
                if report.is_none() {
                    *report = Some((
                        l[at + FIRSTBOOT_MARKER.len()..].to_string(),
                        started.elapsed().as_secs_f64(),
                    ));
                }
            }
            for tag in PROBE_TAGS {
                if let Some(at) = l.find(tag) {
                    if !seen.iter().any(|s| s.starts_with(tag)) {
                        seen.push(l[at..].trim().to_string());
                    }
                }
            }
            report.is_some() && seen.len() == PROBE_TAGS.len()
        },
        BOOT,
    )
    .map_err(|e| {
        format!(
            "waiting for the report and the probes {PROBE_TAGS:?} (seen {:?}): {e}",
            seen.lock().unwrap()
        )
    })?;
    let (json, secs) = report_at.into_inner().unwrap().ok_or("no report")?;
    let report: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("the report: {e}: {json}"))?;
    // The NIC may get its address from networkd's DHCP after the report.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut answer = read_answer(allowed);
    while answer.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(2));
        answer = read_answer(allowed);
    }
    let answers = (answer, read_answer(other));
    Ok((report, secs, seen.into_inner().unwrap(), answers))
}

/// Units the config writes and enables, and one the image has but leaves disabled
/// (cni-dhcp.service, the CNI DHCP daemon) that the config only enables, are active in
/// the same boot, as Ignition would have them; containerd (enabled by its package) is
/// active too. Before first boot told systemd about them, the named units stayed inactive
/// until the next boot and the report had no state at all.
#[test]
fn units_the_config_writes_or_enables_are_active_in_the_same_boot() {
    let boot = node_boot();
    let r = &boot.report;
    assert_eq!(r["status"], "success", "{r}");
    for name in [
        "harmony-hello.service",
        "cni-dhcp.service",
        "containerd.service",
        "probe-allowed.service",
        "probe-other-source.service",
        "ipvs-probe.service",
        "getcap-probe.service",
        "ssh-source-probe.service",
        "ssh.service",
    ] {
        assert_eq!(boot.unit(name)["state"], "active", "{name}: {r}");
    }
    assert_eq!(boot.unit("harmony-hello.service")["enabled"], true, "{r}");
    assert_eq!(boot.unit("cni-dhcp.service")["enabled"], true, "{r}");
    println!(
        "harmony run to the first-boot report (qcow2, OVMF): {:.1} s",
        boot.secs_to_report
    );
}

/// The firewall is live in the guest: through host forwards (the guest sees the host as
/// 10.0.2.2), a port allowed from 10.0.2.2 answers, a port allowed only from
/// 192.0.2.0/24 stays silent although its listener is active; SSH answers 10.0.2.2 (in
/// `ssh_sources`: the login test below) and stays silent to a pod-like source in the
/// guest (10.250.9.2, outside `ssh_sources`) although sshd is active.
#[test]
fn firewall_is_live_in_the_booted_node() {
    let boot = node_boot();
    let r = &boot.report;
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
    assert_eq!(boot.allowed, "allowed-8080");
    assert_eq!(
        boot.other_source, "",
        "8081 is allowed only from 192.0.2.0/24"
    );
    assert_eq!(
        boot.probe("SSH-OTHER-SOURCE"),
        "SSH-OTHER-SOURCE []",
        "ssh_sources is 10.0.2.2/32: no SSH banner for 10.250.9.2"
    );
}

/// L3/L4 load balancing in the guest: an IPVS virtual service (NAT, rr) towards two real
/// servers answers through its virtual IP in turn: real1 real2 real1 real2.
#[test]
fn ipvs_balances_round_robin_in_the_booted_node() {
    let probe = node_boot().probe("IPVS-PROBE");
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

/// A file capability set by a build step (the recipe's `run:` gives ping cap_net_raw
/// instead of setuid) is on the booted root: read back from the step's namespace in the
/// form the booted kernel honours, carried by the squashfs, seen by getcap in the node.
#[test]
fn a_capability_set_by_a_build_step_is_on_the_booted_root() {
    let probe = node_boot().probe("GETCAP");
    assert_eq!(probe, "GETCAP /usr/bin/ping cap_net_raw=ep mode 755");
}

/// The join with a kubelet in the image: discovery against the stand-in API server,
/// kubelet's files written, then kubelet enabled and started through systemd from inside
/// sysinit.target without waiting for its job (`systemctl enable --now` there would hang
/// the boot for ever): the stand-in kubelet runs with the flags kubeadm's drop-in builds
/// from the written files and the KubeletConfiguration the node role wrote.
#[test]
fn a_stand_in_kubelet_is_started_with_the_written_flags_and_config() {
    let boot = node_boot();
    let r = &boot.report;
    assert_eq!(r["status"], "success", "{r}");
    let join = &r["join"];
    assert_eq!(join["ca_pin"], boot.ca_pin.as_str(), "{r}");
    assert_eq!(join["server"], "https://10.0.2.2:6443", "{r}");
    assert!(
        join["kubelet"].as_str().is_some_and(
            |k| k.starts_with("enabled and started kubelet.service through systemd over D-Bus")
        ),
        "{r}"
    );
    assert_eq!(boot.unit("kubelet.service")["state"], "active", "{r}");
    // Unverified, then pinned: two requests from the guest.
    assert_eq!(boot.api_hits, 2);
    let args = boot.probe("KUBELET-ARGS");
    for flag in [
        "--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf",
        "--kubeconfig=/etc/kubernetes/kubelet.conf",
        "--config=/var/lib/kubelet/config.yaml",
        "--node-labels=example.com/rack=r1",
    ] {
        assert!(args.split_whitespace().any(|a| a == flag), "{flag}: {args}");
    }
    assert_eq!(
        boot.probe("KUBELET-CONFIG"),
        "KUBELET-CONFIG cgroupDriver: systemd maxPods: 150 bootstrap 600"
    );
}

/// `harmony verify` on the built debian-node: the whole CIS profile (26 rules) passes.
/// OpenSCAP beside it: ssg-debian's nearest content, the Debian 11 data stream (there is
/// none for Debian 12) with its ANSSI DAT-NT28 average profile (it has no CIS profile),
/// on the image's root. That content's platform check reads /etc/debian_version as
/// `11.N`: the scanned copy says 11.0 (the only change to it), or every rule would be
/// "not applicable". Its failures are docs/openscap-debian-node-failures.tsv's entries,
/// each with why: the test fails when OpenSCAP fails a rule the table does not list
/// (a regression, or a rule to explain) or no longer fails one it lists (take it out).
#[test]
fn harmony_verify_passes_and_openscap_failures_are_the_tables_on_debian_node() {
    let out = debian_node_image();
    let report = harmony::verify::verify(out).unwrap();
    println!(
        "harmony verify on debian-node: {} passed, {} failed, {} not applicable, {} excluded (of {})",
        report.passed,
        report.failed,
        report.not_applicable,
        report.excluded,
        report.rules.len()
    );
    assert!(report.ok(), "{}", report.text());
    assert_eq!(report.failed, 0);

    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("rootfs");
    openscap::materialise_image(out, &root);
    let version = root.join("etc/debian_version");
    let was = std::fs::read_to_string(&version).unwrap();
    assert!(was.starts_with("12."), "debian-node is Debian 12: {was}");
    std::fs::write(&version, "11.0\n").unwrap();
    let scan = openscap::scan(
        &root,
        work.path(),
        "ssg-debian11-ds.xml",
        "xccdf_org.ssgproject.content_profile_anssi_np_nt28_average",
    );
    println!(
        "OpenSCAP ANSSI DAT-NT28 average (ssg-debian, Debian 11) on debian-node: {}",
        scan.summary()
    );
    assert_eq!(
        scan.count("error"),
        0,
        "OpenSCAP could not evaluate some rules"
    );
    assert!(
        scan.count("pass") > 0,
        "nothing evaluated: {}",
        scan.summary()
    );
    let table_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openscap-debian-node-failures.tsv");
    let table: BTreeSet<String> = std::fs::read_to_string(&table_path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                f.len(),
                2,
                "{}: `{l}`: want rule<TAB>why",
                table_path.display()
            );
            f[0].to_string()
        })
        .collect();
    let failing = scan.with("fail");
    let unexplained: Vec<&String> = failing.difference(&table).collect();
    let fixed: Vec<&String> = table.difference(&failing).collect();
    assert!(
        unexplained.is_empty() && fixed.is_empty(),
        "OpenSCAP fails rules {} does not list: {unexplained:?}; it lists rules OpenSCAP no \
         longer fails (take them out): {fixed:?}",
        table_path.display()
    );
}

/// Issue 14 item 9: a user and key from the config; a real `ssh` from the host through a
/// forward logs in with that key (Ignition puts it in `~/.ssh/authorized_keys.d/ignition`,
/// the agent's sshd drop-in makes sshd read it), and a second key not in the config is
/// refused. The firewall lets 10.0.2.2 (the host, as QEMU's user network shows it) reach SSH.
#[test]
fn ssh_logs_in_with_the_configured_key_and_refuses_another() {
    let boot = node_boot();
    let (login, refused) = (&boot.ssh_configured, &boot.ssh_other);
    assert!(
        login.succeeded && login.stdout == "SSH-LOGIN-OK",
        "the configured key: {login:?}"
    );
    assert!(
        !refused.succeeded,
        "a key not in the config logged in: {refused:?}"
    );
    assert!(refused.stderr.contains("Permission denied"), "{refused:?}");
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
