//! `ignition.proxy`: which proxy, if any, a URL is fetched through. `noProxy` entries are
//! read as Ignition reads them (Go's `golang.org/x/net/http/httpproxy`, which Ignition's
//! fetcher uses): `*` for every host; an IP address or CIDR; a domain, which matches itself
//! and its subdomains (`example.com`), or its subdomains only (`.example.com`, and
//! `*.example.com` as `.example.com`); each optionally with `:port`. An entry may hold
//! several, comma-separated. Unlike Go, `localhost` and loopback addresses are not
//! exempt unless listed: the proxy is used for exactly what `noProxy` does not name.

use std::net::IpAddr;

use ignition::spec::Proxy;

/// The proxy URL for `scheme://host:port`, or `None` to connect directly.
pub fn for_url<'p>(proxy: &'p Proxy, scheme: &str, host: &str, port: u16) -> Option<&'p str> {
    let chosen = match scheme {
        "https" => proxy.https_proxy.as_deref(),
        "http" => proxy.http_proxy.as_deref(),
        _ => None,
    }
    .filter(|p| !p.is_empty())?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let bypass = proxy
        .no_proxy
        .iter()
        .flatten()
        .flat_map(|entry| entry.split(','))
        .any(|entry| matches(entry, &host, port));
    (!bypass).then_some(chosen)
}

/// Whether one `noProxy` entry names `host` (lower case, no brackets) at `port`.
fn matches(entry: &str, host: &str, port: u16) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    if entry.is_empty() {
        return false;
    }
    if entry == "*" {
        return true;
    }
    let ip = host.parse::<IpAddr>().ok();
    if let Some((net, bits)) = entry.split_once('/') {
        return match (net.parse::<IpAddr>(), bits.parse::<u32>(), ip) {
            (Ok(net), Ok(bits), Some(ip)) => in_cidr(ip, net, bits),
            _ => false,
        };
    }
    let (name, entry_port) = split_port(&entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let Ok(entry_ip) = name.parse::<IpAddr>() {
        return ip == Some(entry_ip);
    }
    let name = name.strip_prefix('*').unwrap_or(name);
    match name.strip_prefix('.') {
        Some(_) => host.ends_with(name),
        None => host == name || host.ends_with(&format!(".{name}")),
    }
}

/// `name:port`, `[v6]:port`, `[v6]`, a bare IPv6 address, or `name`.
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        if let Some((addr, after)) = rest.split_once(']') {
            return (addr, after.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
    }
    if entry.parse::<IpAddr>().is_ok() {
        return (entry, None);
    }
    match entry.rsplit_once(':') {
        Some((name, port)) => match port.parse() {
            Ok(p) => (name, Some(p)),
            Err(_) => (entry, None),
        },
        None => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(no_proxy: &[&str]) -> Proxy {
        Proxy {
            http_proxy: Some("http://proxy:3128".into()),
            https_proxy: None,
            no_proxy: Some(no_proxy.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn no_proxy_entries_as_go_reads_them() {
        let p = proxy(&[
            "example.com",
            ".lan",
            "*.corp",
            "10.0.2.2",
            "192.168.0.0/16, fd00::/8",
            "svc:8080",
            "[::1]:81",
        ]);
        let direct = |host: &str, port: u16| for_url(&p, "http", host, port).is_none();
        // A domain matches itself and its subdomains, never a longer name.
        assert!(direct("example.com", 80) && direct("www.EXAMPLE.com", 80));
        assert!(!direct("badexample.com", 80));
        // A leading dot (or *.) matches subdomains only.
        assert!(direct("pxe.lan", 80) && !direct("lan", 80));
        assert!(direct("a.corp", 80) && !direct("corp", 80));
        // Addresses, CIDRs (several in one comma-separated entry), ports.
        assert!(direct("10.0.2.2", 80) && !direct("10.0.2.3", 80));
        assert!(direct("192.168.7.1", 80) && direct("[fd00::5]", 80));
        assert!(!direct("172.16.0.1", 80));
        assert!(direct("svc", 8080) && !direct("svc", 80));
        assert!(direct("::1", 81) && !direct("::1", 80));
        // Loopback is proxied unless listed (Go would not proxy it).
        assert!(!direct("127.0.0.1", 80) && !direct("localhost", 80));
        assert_eq!(for_url(&p, "http", "other", 80), Some("http://proxy:3128"));
        // No httpsProxy: https goes direct; `*` bypasses everything.
        assert!(for_url(&p, "https", "other", 443).is_none());
        assert!(for_url(&proxy(&["*"]), "http", "other", 80).is_none());
    }
}
