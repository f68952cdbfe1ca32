//! Host names → addresses without NSS: an IP literal, or the first match in `/etc/hosts`.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

pub fn resolve(host: &str, port: u16, hosts_file: Option<&Path>) -> Result<SocketAddr, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let file = hosts_file.unwrap_or(Path::new("/etc/hosts"));
    let text = std::fs::read_to_string(file).unwrap_or_default();
    lookup(&text, host)
        .map(|ip| SocketAddr::new(ip, port))
        .ok_or_else(|| {
            format!(
                "cannot resolve {host:?}: not an IP address and not in {} (the agent has no DNS client)",
                file.display()
            )
        })
}

fn lookup(hosts: &str, name: &str) -> Option<IpAddr> {
    hosts.lines().find_map(|l| {
        let l = l.split('#').next().unwrap_or("");
        let mut it = l.split_whitespace();
        let ip = it.next()?.parse::<IpAddr>().ok()?;
        it.any(|n| n.eq_ignore_ascii_case(name)).then_some(ip)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_hosts_file() {
        let text =
            "# c\n127.0.0.1 localhost\n10.0.2.2  pxe pxe.lan # the host\n::1 ip6-localhost\n";
        assert_eq!(lookup(text, "PXE.lan"), Some("10.0.2.2".parse().unwrap()));
        assert_eq!(lookup(text, "ip6-localhost"), Some("::1".parse().unwrap()));
        assert_eq!(lookup(text, "other"), None);
        assert_eq!(
            resolve("[::1]", 80, None).unwrap(),
            "[::1]:80".parse().unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hosts");
        std::fs::write(&f, text).unwrap();
        assert_eq!(
            resolve("pxe", 69, Some(&f)).unwrap(),
            "10.0.2.2:69".parse().unwrap()
        );
        assert!(resolve("nowhere", 69, Some(&f))
            .unwrap_err()
            .contains("no DNS client"));
    }
}
