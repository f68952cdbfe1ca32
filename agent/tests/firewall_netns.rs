//! The rendered firewall, loaded with the real `nft` into a network namespace and probed
//! over veth from a second one: exactly the allowed TCP and UDP ports answer, on IPv4
//! and IPv6, SSH only from the allowed source, and another table (as kube-proxy would
//! keep) survives every reload. Needs root (CI runs as root); nothing outside the two
//! namespaces is touched.
//!
//! The client has two addresses per family. The server has two as well, and host
//! routes in the client send traffic for the server's first address from the client's
//! first (allowed) address and for the second from the second: probing the server's
//! second address is probing "from the disallowed source".

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use harmony_agent::node_role::{firewall, live};
use ignition::node_settings::NodeSettings;

/// How long a probe waits for an answer before calling the port closed: a dropped
/// packet never answers, so some wait is the only way to tell (probes run in parallel).
const NO_ANSWER_AFTER: Duration = Duration::from_secs(2);

const SRV_V4: &str = "10.231.0.1";
const SRV_V4_VIA_OTHER_SOURCE: &str = "10.231.0.11";
const SRV_V6: &str = "fd42:231::1";
const SRV_V6_VIA_OTHER_SOURCE: &str = "fd42:231::11";
const ALLOWED_V4: &str = "10.231.0.2";
const OTHER_V4: &str = "10.231.0.3";
const ALLOWED_V6: &str = "fd42:231::2";
const OTHER_V6: &str = "fd42:231::3";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Allowed,
    Other,
}

/// Deletes the namespace (and the veth end in it) when the test ends, however it ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _cleanup = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {}", args.join(" "));
    String::from_utf8(out.stdout).unwrap()
}

/// Run `f` on a thread that has entered the namespace; sockets it makes stay in there.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    thread::spawn(move || {
        let fd = File::open(&path).unwrap();
        nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

fn tool_missing() -> Option<&'static str> {
    ["nft", "ip"]
        .into_iter()
        .find(|t| Command::new(t).arg("-V").output().is_err())
}

fn setup(srv: &str, cli: &str) -> (Netns, Netns) {
    run("ip", &["netns", "add", srv]);
    let srv_guard = Netns(srv.to_string());
    run("ip", &["netns", "add", cli]);
    let cli_guard = Netns(cli.to_string());
    // Both ends are made inside the namespaces: the host's links are never touched.
    run(
        "ip",
        &[
            "-n", cli, "link", "add", "vc", "type", "veth", "peer", "name", "vs", "netns", srv,
        ],
    );
    for (ns, dev, addrs) in [
        (
            srv,
            "vs",
            [
                SRV_V4,
                SRV_V4_VIA_OTHER_SOURCE,
                SRV_V6,
                SRV_V6_VIA_OTHER_SOURCE,
            ],
        ),
        (cli, "vc", [ALLOWED_V4, OTHER_V4, ALLOWED_V6, OTHER_V6]),
    ] {
        for a in addrs {
            let prefix = if a.contains(':') { "/64" } else { "/24" };
            run(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{a}{prefix}"),
                    "dev",
                    dev,
                    "nodad",
                ],
            );
        }
        run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        run("ip", &["-n", ns, "link", "set", dev, "up"]);
    }
    // Host routes pin the source address of each probe (IPv6 source selection would
    // otherwise be free to pick either address of the prefix).
    for (dst, src) in [
        (format!("{SRV_V4}/32"), ALLOWED_V4),
        (format!("{SRV_V6}/128"), ALLOWED_V6),
        (format!("{SRV_V4_VIA_OTHER_SOURCE}/32"), OTHER_V4),
        (format!("{SRV_V6_VIA_OTHER_SOURCE}/128"), OTHER_V6),
    ] {
        run(
            "ip",
            &["-n", cli, "route", "add", &dst, "dev", "vc", "src", src],
        );
    }
    (srv_guard, cli_guard)
}

/// Listeners on every probed port, bound to `[::]` (both families): TCP accepts, UDP
/// echoes what it gets.
fn listen(srv: &str, tcp: BTreeSet<u16>, udp: BTreeSet<u16>) {
    in_netns(srv, move || {
        for port in tcp {
            let l = TcpListener::bind(("::", port)).unwrap();
            thread::spawn(move || {
                for conn in l.incoming() {
                    drop(conn);
                }
            });
        }
        for port in udp {
            let s = UdpSocket::bind(("::", port)).unwrap();
            thread::spawn(move || {
                let mut buf = [0u8; 64];
                while let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..n], from);
                }
            });
        }
    });
}

#[derive(Debug, Clone)]
struct Probe {
    proto: Proto,
    port: u16,
    v6: bool,
    source: Source,
    expect_open: bool,
}

fn target(v6: bool, source: Source) -> IpAddr {
    match (v6, source) {
        (false, Source::Allowed) => SRV_V4,
        (false, Source::Other) => SRV_V4_VIA_OTHER_SOURCE,
        (true, Source::Allowed) => SRV_V6,
        (true, Source::Other) => SRV_V6_VIA_OTHER_SOURCE,
    }
    .parse()
    .unwrap()
}

/// Whether the port answered: a TCP handshake completed, or a UDP echo came back.
fn answers(p: &Probe) -> bool {
    let to = SocketAddr::new(target(p.v6, p.source), p.port);
    match p.proto {
        Proto::Tcp => match TcpStream::connect_timeout(&to, NO_ANSWER_AFTER) {
            Ok(_) => true,
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => false,
            Err(e) => panic!("{p:?}: unexpected {e} (a listener is on every probed port)"),
        },
        Proto::Udp => {
            let s = UdpSocket::bind(if p.v6 { "[::]:0" } else { "0.0.0.0:0" }).unwrap();
            s.set_read_timeout(Some(NO_ANSWER_AFTER)).unwrap();
            let msg = format!("probe {}", p.port);
            s.send_to(msg.as_bytes(), to).unwrap();
            let mut buf = [0u8; 64];
            match s.recv_from(&mut buf) {
                Ok((n, _)) => {
                    assert_eq!(&buf[..n], msg.as_bytes());
                    true
                }
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => false,
                Err(e) => panic!("{p:?}: unexpected {e}"),
            }
        }
    }
}

/// Every probe in parallel from the client namespace; (probe, answered).
fn probe_all(cli: &str, probes: &[Probe]) -> Vec<(Probe, bool)> {
    let handles: Vec<_> = probes
        .iter()
        .cloned()
        .map(|p| {
            let cli = cli.to_string();
            thread::spawn(move || {
                let got = in_netns(&cli, {
                    let p = p.clone();
                    move || answers(&p)
                });
                (p, got)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// `(proto, port, source, open?)` for both families.
fn probes(spec: &[(Proto, u16, Source, bool)]) -> Vec<Probe> {
    spec.iter()
        .flat_map(|&(proto, port, source, expect_open)| {
            [false, true].map(|v6| Probe {
                proto,
                port,
                v6,
                source,
                expect_open,
            })
        })
        .collect()
}

/// One line per role, family, protocol and source: the open and closed ports, with
/// `!` before any that did not do what was expected.
fn table(role: &str, results: &[(Probe, bool)]) -> (String, usize) {
    let mut text = String::new();
    let mut wrong = 0;
    for v6 in [false, true] {
        for proto in [Proto::Tcp, Proto::Udp] {
            for source in [Source::Allowed, Source::Other] {
                let mut rows: Vec<_> = results
                    .iter()
                    .filter(|(p, _)| p.v6 == v6 && p.proto == proto && p.source == source)
                    .collect();
                rows.sort_by_key(|(p, _)| p.port);
                if rows.is_empty() {
                    continue;
                }
                let list = |open: bool| {
                    rows.iter()
                        .filter(|(_, got)| *got == open)
                        .map(|(p, got)| {
                            let bad = p.expect_open != *got;
                            format!("{}{}", if bad { "!" } else { "" }, p.port)
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                wrong += rows.iter().filter(|(p, got)| p.expect_open != *got).count();
                text.push_str(&format!(
                    "{role:<17} {} {} from {:<7} open: {:<45} closed: {}\n",
                    if v6 { "v6" } else { "v4" },
                    if proto == Proto::Tcp { "tcp" } else { "udp" },
                    if source == Source::Allowed {
                        "allowed"
                    } else {
                        "other"
                    },
                    list(true),
                    list(false)
                ));
            }
        }
    }
    (text, wrong)
}

const CLUSTER: &str = "cluster:\n  api_endpoints: [\"https://api:6443\"]\n  \
    bootstrap_token: abcdef.0123456789abcdef\n  ca_cert_hashes: \
    [\"sha256:7f9a3c4b5e6d7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708\"]\n";

fn settings(role: &str, cni: &str) -> NodeSettings {
    NodeSettings::from_yaml_str(&format!(
        "{CLUSTER}role: {role}\nfirewall:\n  cni: {cni}\n  \
         ssh_sources: [{ALLOWED_V4}/32, \"{ALLOWED_V6}/128\"]\n  rules:\n    \
         - {{ports: \"8080-8090\", protocol: tcp, sources: [{ALLOWED_V4}/32, \"{ALLOWED_V6}/128\"]}}\n    \
         - {{ports: 5353, protocol: udp, sources: [0.0.0.0/0, \"::/0\"]}}\n"
    ))
    .unwrap()
}

fn load(srv: &str, dir: &Path, name: &str, s: &NodeSettings) {
    let file = dir.join(name);
    std::fs::write(&file, firewall::render(s)).unwrap();
    in_netns(srv, move || {
        live::load_ruleset(Path::new("/usr/sbin/nft"), &file)
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"));
}

fn nft_in(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", ns, "nft"];
    all.extend_from_slice(args);
    output("ip", &all)
}

#[test]
fn exactly_the_allowed_ports_answer_and_other_tables_survive() {
    if let Some(tool) = tool_missing() {
        harmony_test_support::skip(format!("tool {tool} not installed"));
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        harmony_test_support::skip("network namespaces need root");
        return;
    }
    let pid = std::process::id();
    let (srv, cli) = (
        format!("harmony-test-fws{pid}"),
        format!("harmony-test-fwc{pid}"),
    );
    let _guards = setup(&srv, &cli);
    let dir = tempfile::tempdir().unwrap();

    // What kube-proxy (nftables mode) would have made before us.
    let other = dir.path().join("kube-proxy.nft");
    std::fs::write(
        &other,
        "table ip kube-proxy {\n\tset cluster-ips { type ipv4_addr; elements = { 10.96.0.1 } }\n\
         \tchain forward { type filter hook forward priority filter; policy accept; counter; }\n}\n",
    )
    .unwrap();
    run(
        "ip",
        &["netns", "exec", &srv, "nft", "-f", other.to_str().unwrap()],
    );

    use Proto::{Tcp, Udp};
    use Source::{Allowed, Other};
    let worker = probes(&[
        (Tcp, 22, Allowed, true),
        (Tcp, 22, Other, false),
        (Tcp, 6443, Allowed, false),
        (Tcp, 2379, Allowed, false),
        (Tcp, 10249, Allowed, false),
        (Tcp, 10250, Allowed, true),
        (Tcp, 10250, Other, true),
        (Tcp, 10251, Allowed, false),
        (Tcp, 10255, Allowed, false),
        (Tcp, 10256, Allowed, true),
        (Tcp, 10257, Allowed, false),
        (Tcp, 29999, Allowed, false),
        (Tcp, 30000, Allowed, true),
        (Tcp, 30000, Other, true),
        (Tcp, 31000, Allowed, true),
        (Tcp, 32767, Allowed, true),
        (Tcp, 32768, Allowed, false),
        (Tcp, 179, Allowed, false),
        (Tcp, 4789, Allowed, false),
        (Tcp, 5353, Allowed, false),
        (Tcp, 8079, Allowed, false),
        (Tcp, 8080, Allowed, true),
        (Tcp, 8080, Other, false),
        (Tcp, 8090, Allowed, true),
        (Tcp, 8091, Allowed, false),
        (Udp, 53, Allowed, false),
        (Udp, 4788, Allowed, false),
        (Udp, 4789, Allowed, true),
        (Udp, 8472, Allowed, true),
        (Udp, 8473, Allowed, false),
        (Udp, 5353, Allowed, true),
        (Udp, 5353, Other, true),
        (Udp, 10250, Allowed, false),
        (Udp, 29999, Allowed, false),
        (Udp, 30000, Allowed, true),
        (Udp, 32767, Allowed, true),
        (Udp, 32768, Allowed, false),
    ]);
    let control_plane = probes(&[
        (Tcp, 22, Allowed, true),
        (Tcp, 22, Other, false),
        (Tcp, 179, Allowed, true),
        (Tcp, 2378, Allowed, false),
        (Tcp, 2379, Allowed, true),
        (Tcp, 2380, Allowed, true),
        (Tcp, 2381, Allowed, false),
        (Tcp, 6443, Allowed, true),
        (Tcp, 6443, Other, true),
        (Tcp, 6444, Allowed, false),
        (Tcp, 10250, Allowed, true),
        (Tcp, 10256, Allowed, false),
        (Tcp, 10257, Allowed, true),
        (Tcp, 10258, Allowed, false),
        (Tcp, 10259, Allowed, true),
        (Tcp, 10260, Allowed, false),
        (Tcp, 30000, Allowed, false),
        (Tcp, 8085, Allowed, true),
        (Tcp, 8085, Other, false),
        (Udp, 4789, Allowed, false),
        (Udp, 5353, Allowed, true),
        (Udp, 30000, Allowed, false),
    ]);
    let ports = |proto: Proto| -> BTreeSet<u16> {
        worker
            .iter()
            .chain(&control_plane)
            .filter(|p| p.proto == proto)
            .map(|p| p.port)
            .collect()
    };
    listen(&srv, ports(Tcp), ports(Udp));

    let mut report = String::new();
    let mut wrong = 0;
    for (role, cni, spec) in [
        ("worker", "vxlan", &worker),
        ("control-plane", "bgp", &control_plane),
    ] {
        // The second load replaces the first in place: a re-apply.
        load(
            &srv,
            dir.path(),
            &format!("{role}.nft"),
            &settings(role, cni),
        );
        let (text, bad) = table(&format!("{role}/{cni}"), &probe_all(&cli, spec));
        report.push_str(&text);
        wrong += bad;
    }
    println!("firewall probe results (! = not as expected):\n{report}");

    // ICMP (and, for v6, neighbour discovery) still works through the default deny.
    if Command::new("busybox").arg("true").status().is_ok() {
        for (args, addr) in [(["ping", "-4"], SRV_V4), (["ping", "-6"], SRV_V6)] {
            let ok = Command::new("ip")
                .args(["netns", "exec", &cli, "busybox"])
                .args(args)
                .args(["-c", "1", "-W", "2", addr])
                .output()
                .unwrap()
                .status
                .success();
            println!(
                "icmp echo {addr}: {}",
                if ok { "answered" } else { "NO ANSWER" }
            );
            assert!(ok, "ping {addr} through the firewall");
        }
    } else {
        harmony_test_support::skip(
            "icmp echo: tool busybox not installed: Debian package busybox-static",
        );
    }

    // Drops were counted (and logged, rate-limited) by the last rule.
    let chain = nft_in(&srv, &["list", "chain", "inet", "harmony", "input"]);
    let drops: u64 = chain
        .lines()
        .find(|l| l.contains("comment \"default deny\""))
        .and_then(|l| l.split("counter packets ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no default-deny counter in:\n{chain}"));
    println!("default-deny counter after the control-plane probes: {drops} packets");
    assert!(drops > 0);
    assert!(chain.contains("log prefix \"harmony-drop: \""));

    // The other table is untouched after two loads, and ours exists once.
    let tables = nft_in(&srv, &["list", "tables"]);
    assert_eq!(
        tables
            .lines()
            .filter(|l| l.trim() == "table inet harmony")
            .count(),
        1,
        "{tables}"
    );
    let kube = nft_in(&srv, &["list", "table", "ip", "kube-proxy"]);
    assert!(
        kube.contains("10.96.0.1") && kube.contains("chain forward"),
        "{kube}"
    );
    println!("table ip kube-proxy survived both loads:\n{kube}");

    assert_eq!(wrong, 0, "ports not as expected (marked !):\n{report}");
}
