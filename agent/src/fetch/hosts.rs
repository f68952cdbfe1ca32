//! Names in an `/etc/hosts` text: the first line that lists the name.

use std::net::IpAddr;

pub fn lookup(hosts: &str, name: &str) -> Option<IpAddr> {
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
    fn hosts_file_lines() {
        let text =
            "# c\n127.0.0.1 localhost\n10.0.2.2  pxe pxe.lan # the host\n::1 ip6-localhost\n";
        assert_eq!(lookup(text, "PXE.lan"), Some("10.0.2.2".parse().unwrap()));
        assert_eq!(lookup(text, "ip6-localhost"), Some("::1".parse().unwrap()));
        assert_eq!(lookup(text, "other"), None);
        assert_eq!(lookup(text, "the"), None, "comments are not names");
    }
}
