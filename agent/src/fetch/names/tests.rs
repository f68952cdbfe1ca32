//! Names through a real DNS server: dnsmasq on a loopback address of this run's own, port
//! 53 (resolv.conf has no port), serving only the test's names (`--no-resolv --no-hosts
//! --addn-hosts`, authoritative for `lab.example` so an unknown name is NXDOMAIN). The
//! resolv.conf and hosts file are the test's: the host's are never read.

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use super::resolve;
use crate::fetch::tests::{dnsmasq, own_loopback};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn ips(addrs: Vec<SocketAddr>) -> Vec<IpAddr> {
    addrs.into_iter().map(|a| a.ip()).collect()
}

#[test]
fn names_resolve_through_dnsmasq_with_search_domains_a_and_aaaa() {
    let dir = tempfile::tempdir().unwrap();
    let names = write(
        dir.path(),
        "names",
        "10.20.30.40 config.lab.example\nfd00::40 config.lab.example\n\
         fd00::41 v6only.lab.example\n127.0.0.1 web.lab.example\n",
    );
    let ip = own_loopback(53);
    let _server = dnsmasq(
        &ip,
        53,
        &[
            "--port=53".to_string(),
            "--no-resolv".to_string(),
            "--no-hosts".to_string(),
            format!("--addn-hosts={}", names.display()),
            "--local=/lab.example/".to_string(),
        ],
    );
    let resolv = write(
        dir.path(),
        "resolv.conf",
        &format!("nameserver {ip}\nsearch lab.example\noptions timeout:2 attempts:2\n"),
    );
    let empty_hosts = write(dir.path(), "hosts", "");
    let dns = |name: &str| resolve(name, 80, Some(&empty_hosts), Some(&resolv));

    // A before AAAA, as glibc orders them; a name with AAAA only gets its IPv6 address.
    assert_eq!(
        ips(dns("config.lab.example").unwrap()),
        ["10.20.30.40".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        ips(dns("v6only.lab.example").unwrap()),
        ["fd00::41".parse::<IpAddr>().unwrap()]
    );
    // A single label is tried in the search domain.
    assert_eq!(
        dns("config").unwrap(),
        ["10.20.30.40:80".parse::<SocketAddr>().unwrap()]
    );
    let err = dns("missing.lab.example").unwrap_err();
    assert!(
        err.starts_with("cannot resolve \"missing.lab.example\": no such name")
            && err.contains(&format!("nameservers {ip}:53 from {}", resolv.display())),
        "{err}"
    );

    // The hosts file comes first, as glibc's `hosts: files dns`.
    let hosts = write(
        dir.path(),
        "hosts-override",
        "10.9.9.9 config.lab.example\n",
    );
    assert_eq!(
        ips(resolve("config.lab.example", 80, Some(&hosts), Some(&resolv)).unwrap()),
        ["10.9.9.9".parse::<IpAddr>().unwrap()]
    );

    // A fetch by name: the fetcher asks the same DNS.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Write};
        let (mut s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nby DNS")
            .unwrap();
    });
    let f = crate::fetch::NetFetcher {
        hosts_file: Some(empty_hosts.clone()),
        resolv_conf: Some(resolv.clone()),
        ..Default::default()
    };
    let body = ignition::Fetcher::fetch(&f, &format!("http://web:{port}/x")).unwrap();
    assert_eq!(body, b"by DNS");
}

#[test]
fn a_nameserver_that_does_not_answer_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // Bound on UDP and TCP, never answering.
    let ip = own_loopback(54);
    let _udp = UdpSocket::bind(format!("{ip}:53")).unwrap();
    let _tcp = TcpListener::bind(format!("{ip}:53")).unwrap();
    let resolv = write(
        dir.path(),
        "resolv.conf",
        &format!("nameserver {ip}\noptions timeout:1 attempts:1\n"),
    );
    let hosts = write(dir.path(), "hosts", "");
    let err = resolve("config.lab.example", 80, Some(&hosts), Some(&resolv)).unwrap_err();
    assert!(
        err.starts_with("cannot resolve \"config.lab.example\": ")
            && err.contains("timed out")
            && err.contains(&format!("nameservers {ip}:53 from {}", resolv.display())),
        "{err}"
    );
    // A resolv.conf that is not there is named.
    let err = resolve(
        "x.lab.example",
        80,
        Some(&hosts),
        Some(&dir.path().join("none")),
    )
    .unwrap_err();
    assert!(err.contains("reading") && err.contains("none"), "{err}");
    // Literals never ask anyone; without a resolv.conf there is no DNS.
    assert_eq!(
        resolve("[::1]", 80, Some(&hosts), Some(&resolv)).unwrap(),
        ["[::1]:80".parse::<SocketAddr>().unwrap()]
    );
    let err = resolve("x.lab.example", 80, Some(&hosts), None).unwrap_err();
    assert!(err.contains("no resolv.conf to ask DNS"), "{err}");
}
