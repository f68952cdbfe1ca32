//! `ntp`: servers and pools into the config file of the chosen client. `auto` means
//! busybox ntpd, the one the default Harmony image has: it reads `server HOST` lines
//! from /etc/ntp.conf when started without -p, and treats a pool name as a server.

use serde_yaml_ng::Value;

use super::error::CloudConfigError;
use super::yaml_value::{bool_of, string_of, strings_of, wrong};
use crate::{ConfigWarning, FileEntry, Owner};

pub fn files(
    v: &Value,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Vec<FileEntry>, CloudConfigError> {
    let m = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        other => return Err(wrong("ntp", "a mapping", other)),
    };
    let mut servers = Vec::new();
    let mut pools = Vec::new();
    let mut client = "auto".to_string();
    for (k, v) in m {
        let key = string_of(k, "ntp")?;
        let kp = format!("ntp.{key}");
        match key.as_str() {
            "enabled" => {
                if !bool_of(v, &kp)? {
                    return Ok(Vec::new());
                }
            }
            "servers" => servers = strings_of(v, &kp)?,
            "pools" => pools = strings_of(v, &kp)?,
            "ntp_client" => client = string_of(v, &kp)?,
            "peers" | "allow" | "config" => warnings.push(ConfigWarning::new(
                kp,
                "not supported by harmony-agent: ignored",
            )),
            _ => warnings.push(ConfigWarning::new(kp, "unknown key ignored")),
        }
    }
    if servers.is_empty() && pools.is_empty() {
        // cloud-init's default for Debian.
        pools = (0..4).map(|n| format!("{n}.debian.pool.ntp.org")).collect();
    }
    let lines = |server: &str, pool: &str, suffix: &str| -> String {
        servers
            .iter()
            .map(|s| format!("{server} {s}{suffix}\n"))
            .chain(pools.iter().map(|p| format!("{pool} {p}{suffix}\n")))
            .collect()
    };
    let header = "# Written by harmony-agent from cloud-config ntp\n";
    let (path, text) = match client.as_str() {
        "auto" | "busybox" => (
            "/etc/ntp.conf",
            format!("{header}{}", lines("server", "server", "")),
        ),
        "ntp" => (
            "/etc/ntp.conf",
            format!("{header}{}", lines("server", "pool", " iburst")),
        ),
        "chrony" => (
            "/etc/chrony/chrony.conf",
            format!("{header}{}", lines("server", "pool", " iburst")),
        ),
        "systemd-timesyncd" => {
            let all: Vec<&str> = servers.iter().chain(&pools).map(String::as_str).collect();
            (
                "/etc/systemd/timesyncd.conf.d/cloud-init.conf",
                format!("{header}[Time]\nNTP={}\n", all.join(" ")),
            )
        }
        other => {
            warnings.push(ConfigWarning::new(
                "ntp.ntp_client",
                format!("client {other:?} is not supported by harmony-agent (auto, busybox, ntp, chrony, systemd-timesyncd): no NTP config written"),
            ));
            return Ok(Vec::new());
        }
    };
    Ok(vec![FileEntry {
        path: path.to_string(),
        overwrite: true,
        contents: Some(text.into()),
        append: Vec::new(),
        mode: Some(0o644),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
    }])
}
