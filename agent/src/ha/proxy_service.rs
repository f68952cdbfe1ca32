//! The service that runs `harmony-agent api-proxy` on 127.0.0.1 before kubelet, under the
//! node's service manager: a systemd unit, or an OpenRC script supervised by
//! supervise-daemon. Both restart it when it dies. The backends are written out on the
//! command line, so the unit says exactly what runs and needs no settings file at run time.

use std::net::SocketAddr;

use super::{NodeFile, NodeLink};
use crate::init_system::InitSystem;

pub const SERVICE: &str = "harmony-api-proxy";
const AGENT: &str = "/usr/bin/harmony-agent";
const SYSTEMD_UNIT_PATH: &str = "/etc/systemd/system/harmony-api-proxy.service";
const SYSTEMD_WANTS_LINK: &str =
    "/etc/systemd/system/multi-user.target.wants/harmony-api-proxy.service";
const OPENRC_SCRIPT_PATH: &str = "/etc/init.d/harmony-api-proxy";
const OPENRC_RUNLEVEL_LINK: &str = "/etc/runlevels/default/harmony-api-proxy";

pub fn files(
    port: u16,
    backends: &[SocketAddr],
    init: InitSystem,
) -> (Vec<NodeFile>, Vec<NodeLink>) {
    let args = args(port, backends);
    match init {
        InitSystem::Systemd => (
            vec![NodeFile {
                path: SYSTEMD_UNIT_PATH.to_string(),
                mode: 0o644,
                contents: systemd_unit(&args).into_bytes(),
            }],
            vec![NodeLink {
                path: SYSTEMD_WANTS_LINK.to_string(),
                target: SYSTEMD_UNIT_PATH.to_string(),
            }],
        ),
        InitSystem::OpenRc => (
            vec![NodeFile {
                path: OPENRC_SCRIPT_PATH.to_string(),
                mode: 0o755,
                contents: openrc_script(&args).into_bytes(),
            }],
            vec![NodeLink {
                path: OPENRC_RUNLEVEL_LINK.to_string(),
                target: OPENRC_SCRIPT_PATH.to_string(),
            }],
        ),
    }
}

/// `api-proxy --listen 127.0.0.1:PORT --backend A --backend B …`
fn args(port: u16, backends: &[SocketAddr]) -> String {
    let mut s = format!("api-proxy --listen 127.0.0.1:{port}");
    for b in backends {
        s.push_str(&format!(" --backend {b}"));
    }
    s
}

fn systemd_unit(args: &str) -> String {
    format!(
        "# Rendered by harmony-agent from harmony.ha.local_proxy.
[Unit]
Description=Harmony node-local Kubernetes API load balancer
After=network-online.target
Wants=network-online.target
Before=kubelet.service

[Service]
ExecStart={AGENT} {args}
Restart=always
RestartSec=1
# It needs nothing but sockets: no root, no writes.
DynamicUser=yes
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"
    )
}

fn openrc_script(args: &str) -> String {
    format!(
        "#!/sbin/openrc-run
# Rendered by harmony-agent from harmony.ha.local_proxy.
description=\"Harmony node-local Kubernetes API load balancer\"
supervisor=supervise-daemon
command={AGENT}
command_args=\"{args}\"
command_user=nobody:nobody
output_log=/var/log/{SERVICE}.log
error_log=/var/log/{SERVICE}.log
respawn_delay=1

depend() {{
\tneed net
\tbefore kubelet
}}
"
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn backends() -> Vec<SocketAddr> {
        vec![
            "10.0.0.11:6443".parse().unwrap(),
            "[fd00::12]:6443".parse().unwrap(),
        ]
    }

    #[test]
    fn systemd_unit_runs_the_proxy_before_kubelet_and_is_enabled() {
        let (files, links) = files(6444, &backends(), InitSystem::Systemd);
        let unit = String::from_utf8(files[0].contents.clone()).unwrap();
        assert!(unit.contains(
            "ExecStart=/usr/bin/harmony-agent api-proxy --listen 127.0.0.1:6444 \
             --backend 10.0.0.11:6443 --backend [fd00::12]:6443\n"
        ));
        assert!(unit.contains("Before=kubelet.service\n"));
        assert!(unit.contains("Restart=always\n"));
        assert_eq!(links[0].target, files[0].path);
        assert!(links[0].path.contains("multi-user.target.wants/"));
        let parsed = ignition::systemd_unit::parse(&unit).expect("a valid unit file");
        assert_eq!(parsed.install_info().wanted_by, ["multi-user.target"]);
    }

    #[test]
    fn systemd_analyze_verifies_the_unit() {
        let (files, _) = files(6444, &backends(), InitSystem::Systemd);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("harmony-api-proxy.service");
        // systemd-analyze wants the ExecStart binary to exist.
        let unit = String::from_utf8(files[0].contents.clone())
            .unwrap()
            .replace("/usr/bin/harmony-agent", "/bin/true");
        std::fs::write(&path, unit).unwrap();
        let out = match Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
        {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                harmony_test_support::skip(
                    "tool systemd-analyze not installed: Debian package systemd",
                );
                return;
            }
            r => r.unwrap(),
        };
        let log = String::from_utf8_lossy(&out.stderr);
        // Lines about the unit itself; the host's own units may have their own complaints.
        let ours: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("harmony-api-proxy"))
            .collect();
        assert!(ours.is_empty(), "systemd-analyze verify:\n{log}");
    }

    #[test]
    fn openrc_script_is_supervised_and_valid_sh() {
        let (files, links) = files(6444, &backends(), InitSystem::OpenRc);
        assert_eq!(files[0].mode, 0o755);
        let script = String::from_utf8(files[0].contents.clone()).unwrap();
        assert!(script.starts_with("#!/sbin/openrc-run\n"));
        assert!(script.contains("supervisor=supervise-daemon\n"));
        assert!(script.contains(
            "command_args=\"api-proxy --listen 127.0.0.1:6444 --backend 10.0.0.11:6443 \
             --backend [fd00::12]:6443\"\n"
        ));
        assert!(script.contains("\tbefore kubelet\n"));
        assert_eq!(links[0].path, "/etc/runlevels/default/harmony-api-proxy");
        // openrc-run scripts are sh with extra variables: sh itself must parse it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("script");
        std::fs::write(&path, &script).unwrap();
        let out = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
