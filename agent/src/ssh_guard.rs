//! `harmony-agent apply --live`'s guard: refuse a firewall that would shut SSH to the
//! session the command runs in. sshd tells a session where it comes from in
//! `SSH_CONNECTION` (`CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT`); the node firewall
//! (node_role::firewall) lets in SSH on port 22 from `harmony.firewall.ssh_sources` and
//! any port from a `harmony.firewall.rules` entry's sources. The open session itself
//! would live on through the ruleset's `ct state established` rule, but the next login
//! from the same place would be dropped, and the operator locked out: that is what is
//! refused, unless `--force`.

use std::net::IpAddr;

use ignition::node_settings::{NodeSettings, Protocol};

/// The SSH port the firewall's `ssh_sources` open.
const SSH_PORT: u16 = 22;

/// Where this SSH session comes from and which port it reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SshSession {
    pub client: IpAddr,
    pub server_port: u16,
}

impl SshSession {
    /// `None` when not run over SSH (no or an empty `SSH_CONNECTION`).
    pub fn from_env() -> Result<Option<SshSession>, String> {
        SshSession::from_value(std::env::var("SSH_CONNECTION").ok().as_deref())
    }

    /// [`SshSession::from_env`] given the variable's value.
    pub fn from_value(value: Option<&str>) -> Result<Option<SshSession>, String> {
        match value {
            Some(v) if !v.trim().is_empty() => SshSession::parse(v).map(Some),
            _ => Ok(None),
        }
    }

    pub fn parse(value: &str) -> Result<SshSession, String> {
        let fields: Vec<&str> = value.split_whitespace().collect();
        let bad = |what: &str| {
            format!(
                "SSH_CONNECTION {value:?}: {what} (expected CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT)"
            )
        };
        let [client, _, _, server_port] = fields[..] else {
            return Err(bad("not four fields"));
        };
        Ok(SshSession {
            client: client
                .parse()
                .map_err(|_| bad("the client is not an IP address"))?,
            server_port: server_port
                .parse()
                .map_err(|_| bad("the server port is not a port number"))?,
        })
    }
}

/// `Err` names the session, what the firewall allows, and how to go on.
pub fn check(session: &SshSession, settings: &NodeSettings) -> Result<(), String> {
    let fw = &settings.firewall;
    let by_ssh_sources = session.server_port == SSH_PORT
        && fw.ssh_sources.iter().any(|c| c.contains(session.client));
    let by_rule = fw.rules.iter().any(|r| {
        r.protocol == Protocol::Tcp
            && r.ports
                .bounds()
                .is_ok_and(|(lo, hi)| (lo..=hi).contains(&session.server_port))
            && r.sources.iter().any(|c| c.contains(session.client))
    });
    if by_ssh_sources || by_rule {
        return Ok(());
    }
    let sources: Vec<String> = fw.ssh_sources.iter().map(ToString::to_string).collect();
    Err(format!(
        "the node firewall would shut SSH from {} to port {} (this session, SSH_CONNECTION): \
         harmony.firewall.ssh_sources is [{}] and no harmony.firewall.rules entry allows it; \
         add the source to ssh_sources, or pass --force to apply anyway",
        session.client,
        session.server_port,
        sources.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> NodeSettings {
        NodeSettings::from_yaml_value(&serde_yaml_ng::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn ssh_connection_is_parsed() {
        let s = SshSession::from_value(Some("10.0.2.2 51234 10.0.2.15 22"))
            .unwrap()
            .unwrap();
        assert_eq!(s.client, "10.0.2.2".parse::<IpAddr>().unwrap());
        assert_eq!(s.server_port, 22);
        assert_eq!(SshSession::from_value(Some("")).unwrap(), None);
        assert_eq!(SshSession::from_value(None).unwrap(), None);
        let err = SshSession::parse("10.0.2.2 51234").unwrap_err();
        assert!(err.contains("not four fields"), "{err}");
        let err = SshSession::parse("host 1 10.0.2.15 22").unwrap_err();
        assert!(err.contains("the client is not an IP address"), "{err}");
    }

    #[test]
    fn a_source_outside_ssh_sources_is_refused() {
        let s = settings("role: worker\nfirewall:\n  ssh_sources: [192.0.2.0/24]\n");
        let session = SshSession::parse("10.0.2.2 51234 10.0.2.15 22").unwrap();
        let err = check(&session, &s).unwrap_err();
        assert!(
            err.starts_with(
                "the node firewall would shut SSH from 10.0.2.2 to port 22 (this session, \
                 SSH_CONNECTION): harmony.firewall.ssh_sources is [192.0.2.0/24]"
            ),
            "{err}"
        );
        assert!(err.ends_with("or pass --force to apply anyway"), "{err}");
        // No ssh_sources at all: SSH is shut from everywhere.
        assert!(check(&session, &settings("role: worker\n")).is_err());
    }

    #[test]
    fn a_source_in_ssh_sources_or_a_rule_passes() {
        let session = SshSession::parse("10.0.2.2 51234 10.0.2.15 22").unwrap();
        let s = settings("role: worker\nfirewall:\n  ssh_sources: [10.0.2.0/24]\n");
        assert_eq!(check(&session, &s), Ok(()));
        let v6 = SshSession::parse("fd00::7 51234 fd00::1 22").unwrap();
        assert!(check(&v6, &s).is_err());
        // sshd on another port: ssh_sources (port 22) do not cover it, a rule does.
        let on_2222 = SshSession::parse("10.0.2.2 51234 10.0.2.15 2222").unwrap();
        assert!(check(&on_2222, &s).is_err());
        let rule = settings(
            "role: worker\nfirewall:\n  rules:\n    - {ports: '2200-2299', protocol: tcp, sources: [10.0.0.0/8]}\n",
        );
        assert_eq!(check(&on_2222, &rule), Ok(()));
        let udp = settings(
            "role: worker\nfirewall:\n  rules:\n    - {ports: '2222', protocol: udp, sources: [10.0.0.0/8]}\n",
        );
        assert!(check(&on_2222, &udp).is_err());
    }
}
