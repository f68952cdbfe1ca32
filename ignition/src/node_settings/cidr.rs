//! An IPv4 or IPv6 network in CIDR notation, parsed strictly: a prefix length is
//! required and host bits must be zero (`10.0.0.5/24` is refused, naming `10.0.0.0/24`),
//! because a firewall or pod range written with host bits is almost always a typo.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not a CIDR (address/prefix, e.g. 10.0.0.0/8)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?;
        let cidr = Cidr { addr, prefix };
        let network = cidr.network();
        if network != addr {
            return Err(format!(
                "{s:?} has host bits set; the network is {network}/{prefix}"
            ));
        }
        Ok(cidr)
    }

    /// The address with the host bits cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(a) & mask).into())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(a) & mask).into())
            }
        }
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4, as
    /// the packets of such a connection are IPv4 on the wire).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        ip.is_ipv4() == self.addr.is_ipv4()
            && Cidr {
                addr: ip,
                prefix: self.prefix,
            }
            .network()
                == self.addr
    }

    /// Addresses a pod can get: IPv4 loses the network and broadcast addresses.
    /// Saturates at u128::MAX for `::/0`.
    pub fn usable_addresses(&self) -> u128 {
        match self.addr {
            IpAddr::V4(_) => (1u128 << (32 - self.prefix)).saturating_sub(2),
            IpAddr::V6(_) => 1u128
                .checked_shl(128 - u32::from(self.prefix))
                .unwrap_or(u128::MAX),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Cidr::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_checks_family_and_prefix() {
        let net = Cidr::parse("10.0.2.0/24").unwrap();
        assert!(net.contains("10.0.2.2".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.2.2".parse().unwrap()));
        assert!(!net.contains("10.0.3.2".parse().unwrap()));
        assert!(!net.contains("fd00::2".parse().unwrap()));
        let host = Cidr::parse("192.0.2.7/32").unwrap();
        assert!(host.contains("192.0.2.7".parse().unwrap()));
        assert!(!host.contains("192.0.2.8".parse().unwrap()));
        let v6 = Cidr::parse("fd00::/64").unwrap();
        assert!(v6.contains("fd00::2".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("203.0.113.9".parse().unwrap()));
    }

    #[test]
    fn parses_v4_and_v6_networks() {
        let c = Cidr::parse("10.244.1.0/24").unwrap();
        assert_eq!(c.to_string(), "10.244.1.0/24");
        assert_eq!(c.usable_addresses(), 254);
        assert_eq!(
            Cidr::parse("10.244.0.0/23").unwrap().usable_addresses(),
            510
        );
        assert_eq!(
            Cidr::parse("0.0.0.0/0").unwrap().usable_addresses(),
            (1 << 32) - 2
        );
        assert_eq!(Cidr::parse("192.0.2.7/32").unwrap().usable_addresses(), 0);
        let v6 = Cidr::parse("fd00:10:244:1::/64").unwrap();
        assert_eq!(v6.usable_addresses(), 1u128 << 64);
        assert_eq!(Cidr::parse("::/0").unwrap().usable_addresses(), u128::MAX);
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for (input, expected) in [
            ("10.0.0.0", "is not a CIDR"),
            ("10.0.0/8", "is not an IP address"),
            ("10.0.0.0/33", "prefix length must be 0..=32"),
            ("fd00::/129", "prefix length must be 0..=128"),
            ("10.0.0.0/x", "prefix length"),
            (
                "10.0.0.5/24",
                "has host bits set; the network is 10.0.0.0/24",
            ),
            ("fd00::1/64", "the network is fd00::/64"),
        ] {
            let err = Cidr::parse(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }
}
