//! One keepalived.conf renderer and one VRRP authentication policy, used by the builder's
//! `keepalived` catalog entry and the agent's `harmony.ha.vip` static pod alike.
//!
//! The policy: no VRRP authentication unless asked for (RFC 3768 dropped it: a `PASS`
//! password crosses the segment in clear). When asked for, `auth_type PASS` with the
//! node's secret `keepalived-password` (1 to 8 characters from [`PASSWORD_CHARACTERS`]:
//! keepalived silently cuts a longer one, and ignores what follows a space), never in the
//! image: keepalived.conf `includea`s a fragment written from the secret on the node
//! (`includea`: keepalived refuses to start when the fragment is missing, rather than
//! running without the password).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::node_settings::VrrpState;
use crate::secrets::Secret;

/// The secret (`/etc/harmony/secrets/keepalived-password`) the password comes from.
pub const PASSWORD_SECRET: &str = "keepalived-password";
pub const PASSWORD_MAX: usize = 8;
pub const PASSWORD_CHARACTERS: &str = "A-Z a-z 0-9 - _ . + = , : % / ~";

/// The script whose failure makes this node give the VIP up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript<'a> {
    pub name: &'a str,
    pub script: &'a str,
    pub interval: u32,
    pub fall: u32,
    pub rise: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conf<'a> {
    /// Who rendered it from what, for the header comment.
    pub rendered_from: &'a str,
    pub router_id: &'a str,
    pub instance: &'a str,
    pub state: VrrpState,
    pub interface: &'a str,
    pub virtual_router_id: u8,
    pub priority: u8,
    pub address: IpAddr,
    pub check: TrackScript<'a>,
    /// The `auth_pass` fragment's path when VRRP authentication is on.
    pub auth_fragment: Option<&'a str>,
}

/// No `weight` on the check: a failing node goes to FAULT and gives up the VIP whatever
/// the priorities are (kubeadm's `weight -2` works only for priorities 2 apart).
pub fn render(c: &Conf) -> String {
    let state = match c.state {
        VrrpState::Master => "MASTER",
        VrrpState::Backup => "BACKUP",
    };
    let mut out = format!(
        "! Rendered by {from}.
global_defs {{
    router_id {router_id}
    enable_script_security
    script_user root
}}

vrrp_script {check} {{
    script \"{script}\"
    interval {interval}
    fall {fall}
    rise {rise}
}}

vrrp_instance {instance} {{
    state {state}
    interface {interface}
    virtual_router_id {vrid}
    priority {priority}
    advert_int 1
",
        from = c.rendered_from,
        router_id = c.router_id,
        check = c.check.name,
        script = c.check.script,
        interval = c.check.interval,
        fall = c.check.fall,
        rise = c.check.rise,
        instance = c.instance,
        interface = c.interface,
        vrid = c.virtual_router_id,
        priority = c.priority,
    );
    if let Some(fragment) = c.auth_fragment {
        let _ = write!(
            out,
            "    authentication {{\n        auth_type PASS\n        includea {fragment}\n    }}\n"
        );
    }
    let _ = write!(
        out,
        "    virtual_ipaddress {{
        {address}
    }}
    track_script {{
        {check}
    }}
}}
",
        address = c.address,
        check = c.check.name,
    );
    out
}

/// A VRRP `PASS` password that keeps to the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpPassword(Secret);

impl VrrpPassword {
    pub fn new(secret: Secret) -> Result<Self, String> {
        let p = secret.expose();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.+=,:%/~".contains(c);
        if p.len() > PASSWORD_MAX {
            return Err(format!(
                "is {} characters long; VRRP passwords are at most {PASSWORD_MAX}",
                p.chars().count()
            ));
        }
        if !p.chars().all(allowed) {
            return Err(format!(
                "holds a character keepalived would misread: use {PASSWORD_CHARACTERS} only"
            ));
        }
        Ok(VrrpPassword(secret))
    }

    /// What the authentication block includes.
    pub fn fragment(&self) -> String {
        format!("auth_pass {}\n", self.0.expose())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn conf(auth: Option<&str>) -> Conf<'_> {
        Conf {
            rendered_from: "a test",
            router_id: "harmony_test",
            instance: "VIP",
            state: VrrpState::Master,
            interface: "eth0",
            virtual_router_id: 51,
            priority: 101,
            address: "192.0.2.10".parse().unwrap(),
            check: TrackScript {
                name: "check",
                script: "/bin/true",
                interval: 3,
                fall: 10,
                rise: 2,
            },
            auth_fragment: auth,
        }
    }

    fn password(p: &str) -> Result<VrrpPassword, String> {
        VrrpPassword::new(Secret::from_bytes(p.as_bytes()).unwrap())
    }

    #[test]
    fn the_password_policy() {
        assert_eq!(
            password("s3cr-t_8").unwrap().fragment(),
            "auth_pass s3cr-t_8\n"
        );
        let long = password("123456789").unwrap_err();
        assert!(
            long.contains("is 9 characters long; VRRP passwords are at most 8"),
            "{long}"
        );
        for bad in ["a b", "a#b", "a!b", "a\"b", "a{b", "$ab", "pässwd"] {
            let e = password(bad).unwrap_err();
            assert!(
                e.contains("would misread") || e.contains("long"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn without_authentication_nothing_about_it_is_rendered() {
        let text = render(&conf(None));
        assert!(
            !text.contains("authentication") && !text.contains("auth_"),
            "{text}"
        );
        assert!(
            text.contains("    state MASTER\n    interface eth0\n"),
            "{text}"
        );
        assert!(!text.contains("weight"), "{text}");
    }

    /// keepalived itself reads the file and the included fragment; without the fragment
    /// it refuses to start (includea), so a node never runs without the password it was
    /// told to use.
    #[test]
    fn keepalived_reads_the_conf_and_the_password_fragment() {
        let dir = tempfile::tempdir().unwrap();
        let fragment = dir.path().join("auth.conf");
        let conf_path = dir.path().join("keepalived.conf");
        std::fs::write(&conf_path, render(&conf(Some(fragment.to_str().unwrap())))).unwrap();
        let check = |expect_ok: bool| {
            let test = harmony_test_support::keepalived::config_test(&conf_path)?;
            assert_eq!(test.accepted, expect_ok, "keepalived -t -f: {}", test.said);
            Some(test.said)
        };
        let Some(said) = check(false) else {
            return;
        };
        assert!(said.contains("missing"), "{said}");
        std::fs::write(&fragment, password("s3cret").unwrap().fragment()).unwrap();
        std::fs::set_permissions(&fragment, std::fs::Permissions::from_mode(0o600)).unwrap();
        let said = check(true).unwrap();
        assert!(
            !said.contains("WARNING") && !said.contains("Ignoring"),
            "{said}"
        );
    }
}
