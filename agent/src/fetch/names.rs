//! Host names → addresses without NSS, in glibc's default order (`hosts: files dns`): an
//! IP literal; the root's `/etc/hosts`; then DNS through the root's `/etc/resolv.conf`.
//! Without a resolv.conf to read, names come from the hosts file only.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Every address for `host` (a name, an IP literal, or `[v6]`), with `port`.
pub fn resolve(
    host: &str,
    port: u16,
    hosts_file: Option<&Path>,
    resolv_conf: Option<&Path>,
) -> Result<Vec<SocketAddr>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let hosts = hosts_file.unwrap_or(Path::new("/etc/hosts"));
    let from_hosts =
        super::hosts::lookup(&std::fs::read_to_string(hosts).unwrap_or_default(), host);
    let ips = match (from_hosts, resolv_conf) {
        (Some(ip), _) => vec![ip],
        (None, Some(resolv_conf)) => super::dns::lookup(host, resolv_conf)?,
        (None, None) => {
            return Err(format!(
            "cannot resolve {host:?}: not an IP address, not in {} and no resolv.conf to ask DNS",
            hosts.display()
        ))
        }
    };
    Ok(ips
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests;
