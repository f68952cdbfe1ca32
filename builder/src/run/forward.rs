//! `--forward tcp:HOSTADDR:HOSTPORT-:GUESTPORT`: a QEMU user-network host forward
//! (`hostfwd=`), so programs on the host reach a port of the booted guest.
//! The grammar is QEMU's: `tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`; an empty
//! HOSTADDR listens on every host address (QEMU's default), an empty GUESTADDR is the
//! address QEMU's DHCP gave the guest.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub protocol: Protocol,
    pub host_addr: Option<Ipv4Addr>,
    pub host_port: u16,
    pub guest_addr: Option<Ipv4Addr>,
    pub guest_port: u16,
}

impl Forward {
    /// A TCP forward from `127.0.0.1:host_port` to the guest's `guest_port`.
    pub fn loopback_tcp(host_port: u16, guest_port: u16) -> Forward {
        Forward {
            protocol: Protocol::Tcp,
            host_addr: Some(Ipv4Addr::LOCALHOST),
            host_port,
            guest_addr: None,
            guest_port,
        }
    }

    /// The `hostfwd=` value of QEMU's `-nic user,...`.
    pub fn qemu_hostfwd(&self) -> String {
        format!("hostfwd={self}")
    }
}

pub const EXPECTED: &str = "expected tcp:HOSTADDR:HOSTPORT-:GUESTPORT \
     (QEMU's hostfwd form: tcp or udp, HOSTADDR and GUESTADDR optional IPv4 addresses, \
     ports 1-65535), e.g. tcp:127.0.0.1:8080-:80";

impl FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Forward, String> {
        let bad = |problem: String| format!("{problem}; {EXPECTED}");
        let (host, guest) = s
            .split_once('-')
            .ok_or_else(|| bad("no `-` between the host and the guest side".into()))?;
        let (protocol, host) = host
            .split_once(':')
            .ok_or_else(|| bad("no protocol".into()))?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => return Err(bad(format!("protocol `{other}` is not tcp or udp"))),
        };
        let (host_addr, host_port) = address_and_port(host, "host").map_err(bad)?;
        let (guest_addr, guest_port) = address_and_port(guest, "guest").map_err(bad)?;
        Ok(Forward {
            protocol,
            host_addr,
            host_port,
            guest_addr,
            guest_port,
        })
    }
}

/// `[ADDR]:PORT`.
fn address_and_port(text: &str, side: &str) -> Result<(Option<Ipv4Addr>, u16), String> {
    let (addr, port) = text
        .rsplit_once(':')
        .ok_or_else(|| format!("the {side} side `{text}` is not [ADDRESS]:PORT"))?;
    let addr = match addr {
        "" => None,
        a => Some(
            a.parse::<Ipv4Addr>()
                .map_err(|_| format!("{side} address `{a}` is not an IPv4 address"))?,
        ),
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(format!(
                "{side} port `{port}` is not a number from 1 to 65535"
            ))
        }
    };
    Ok((addr, port))
}

impl fmt::Display for Forward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let protocol = match self.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let addr = |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
        write!(
            f,
            "{protocol}:{}:{}-{}:{}",
            addr(self.host_addr),
            self.host_port,
            addr(self.guest_addr),
            self.guest_port
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_form_and_qemu_variants_parse_and_print_back() {
        let f: Forward = "tcp:127.0.0.1:8080-:80".parse().unwrap();
        assert_eq!(f, Forward::loopback_tcp(8080, 80));
        assert_eq!(f.qemu_hostfwd(), "hostfwd=tcp:127.0.0.1:8080-:80");
        for text in ["udp::5353-:53", "tcp:127.0.0.2:2222-10.0.2.15:22"] {
            assert_eq!(text.parse::<Forward>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_forwards_say_what_is_wrong() {
        for (text, problem) in [
            ("tcp:127.0.0.1:8080", "no `-`"),
            ("127.0.0.1:8080-:80", "protocol `127.0.0.1`"),
            ("sctp:127.0.0.1:8080-:80", "protocol `sctp`"),
            ("tcp:localhost:8080-:80", "host address `localhost`"),
            ("tcp:127.0.0.1:http-:80", "host port `http`"),
            ("tcp:127.0.0.1:70000-:80", "host port `70000`"),
            ("tcp:127.0.0.1:8080-:0", "guest port `0`"),
            ("tcp:127.0.0.1:8080-80", "the guest side `80`"),
            ("tcp:127.0.0.1:8080-:", "guest port ``"),
        ] {
            let err = text.parse::<Forward>().unwrap_err();
            assert!(err.contains(problem), "{text}: {err}");
            assert!(err.contains("tcp:HOSTADDR:HOSTPORT-:GUESTPORT"), "{err}");
        }
    }
}
