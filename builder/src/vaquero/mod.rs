//! Vaquero's configuration documents (its v0.14 data model), as Harmony writes them.
//!
//! `harmony build` writes the image's part (`os/`, `boot/`, `workflows/`,
//! `assets/ignition/`, `files/`); `harmony inventory render` writes the site's part
//! (`sites/SITE/env.yml` and one host document per metal node). They meet in three names:
//! the workflow a host names (`harmony-ROLE`), the site metadata key holding the cluster's
//! part of node.yaml ([`ENV_CLUSTER_KEY`]) and the host metadata key holding the node's
//! ([`HOST_NODE_KEY`]). Every string is written double-quoted: Vaquero reads YAML 1.1,
//! where an unquoted `52:54:00:12:34:41` is a base-60 number.

pub mod ipxe;
pub mod template;

use ignition::node_settings::Role;

use crate::inventory::node_yaml::{quoted, role_data_url, role_name};

/// Site metadata key: the cluster part of node.yaml as a data URL.
pub const ENV_CLUSTER_KEY: &str = "harmony_cluster";
/// Host metadata key: the node part of node.yaml as a data URL.
pub const HOST_NODE_KEY: &str = "harmony_node";
/// The Vaquero agent's default asset server port and files directory.
pub const AGENT_PORT: u16 = 24602;
pub const AGENT_FILES_DIR: &str = "/var/vaquero/files";
pub const ROLES: [Role; 2] = [Role::ControlPlane, Role::Worker];

/// `boot/` and `workflows/` id (and the asset's stem) for a role.
pub fn role_id(role: Role) -> String {
    format!("harmony-{}", role_name(role))
}

/// Where the image's boot files go under the agent's files directory.
pub fn files_prefix(name: &str, version: &str) -> String {
    format!("harmony/{name}/{version}")
}

/// `os/` id of an image.
pub fn os_id(name: &str, version: &str) -> String {
    format!("{name}-{version}")
}

/// A kernel argument as Vaquero's single-key map: `k=v` → `k: v`, `k` → `k: ''`.
fn split_arg(arg: &str) -> (&str, &str) {
    arg.split_once('=').unwrap_or((arg, ""))
}

/// `os/ID.yml`: kernel and initrds from the agent's files, the command line as
/// single-key maps (repeated keys become a list, in order).
pub fn os_doc(name: &str, version: &str, cmdline: &[String], initrds: &[&str]) -> String {
    let prefix = files_prefix(name, version);
    let (major, minor) = {
        let mut parts = version.split(['.', '-']);
        (
            parts.next().unwrap_or("0").to_string(),
            parts.next().unwrap_or("0").to_string(),
        )
    };
    let mut args: Vec<(String, Vec<String>)> = Vec::new();
    let mut push = |k: &str, v: &str| match args.iter_mut().find(|(key, _)| key == k) {
        Some((_, vs)) => vs.push(v.to_string()),
        None => args.push((k.to_string(), vec![v.to_string()])),
    };
    for arg in cmdline {
        let (k, v) = split_arg(arg);
        push(k, v);
    }
    push("ignition.platform.id", "metal");
    push("ignition.config.url", "{{.boot.configURL}}");
    // iPXE needs initrd=NAME for each initrd: Debian's under BIOS too, every one under UEFI.
    for i in initrds {
        push("initrd", i);
    }
    let mut s = format!(
        "id: {}\nname: {}\nmajor_version: {}\nminor_version: {}\nos_family: \"harmony\"\nrelease_name: {}\n",
        quoted(&os_id(name, version)),
        quoted(&format!("Harmony {name} {version}")),
        quoted(&major),
        quoted(&minor),
        quoted(name),
    );
    s += &format!(
        "boot:\n  kernel: {}\n  initrd:\n",
        quoted(&format!("{{{{.env.agentURL}}}}/files/{prefix}/vmlinuz"))
    );
    for i in initrds {
        s += &format!(
            "    - {}\n",
            quoted(&format!("{{{{.env.agentURL}}}}/files/{prefix}/{i}"))
        );
    }
    s += "cmdline:\n";
    for (k, vs) in &args {
        if vs.len() == 1 {
            s += &format!("  - {}: {}\n", quoted(k), quoted(&vs[0]));
        } else {
            let list: Vec<String> = vs.iter().map(|v| quoted(v)).collect();
            s += &format!("  - {}: [{}]\n", quoted(k), list.join(", "));
        }
    }
    s
}

/// `boot/harmony-ROLE.yml`: the image booted with the role's Ignition template.
pub fn boot_doc(role: Role, name: &str, version: &str) -> String {
    format!(
        "id: {}\nname: {}\noperating_system: {}\nunattended:\n  type: \"ignition\"\n  use: {}\n",
        quoted(&role_id(role)),
        quoted(&format!("Harmony {} ({name} {version})", role_name(role))),
        quoted(&os_id(name, version)),
        quoted(&format!("{}.ign", role_id(role))),
    )
}

/// `workflows/harmony-ROLE.yml`: one boot; the node configures itself from there.
pub fn workflow_doc(role: Role) -> String {
    format!(
        "id: {}\nworkflow:\n  - boot: {}\n",
        quoted(&role_id(role)),
        quoted(&role_id(role))
    )
}

/// `assets/ignition/harmony-ROLE.ign`: the node's Ignition (spec 3.3.0) as a Go template.
/// node.yaml is the site's cluster part, then the role, then the host's part, appended
/// in that order; the host name comes from the host document.
pub fn ignition_template(role: Role) -> String {
    let config = serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [
            {
                "path": "/etc/hostname",
                "mode": 0o644,
                "overwrite": true,
                "contents": {"source": "data:,{{.host.name}}%0A"}
            },
            {
                "path": ignition::node_settings::NODE_YAML_PATH,
                "mode": 0o600,
                "overwrite": true,
                "contents": {"source": format!("{{{{.env.md.{ENV_CLUSTER_KEY}}}}}")},
                "append": [
                    {"source": role_data_url(role)},
                    {"source": format!("{{{{.host.md.{HOST_NODE_KEY}}}}}")}
                ]
            }
        ]}
    });
    let mut s = serde_json::to_string_pretty(&config).expect("JSON");
    s.push('\n');
    s
}

/// `sites/SITE/env.yml`: the site, its subnet, its agent, and the cluster's part of
/// node.yaml in the metadata.
pub fn env_doc(inv: &crate::inventory::Inventory, cluster_data_url: &str) -> String {
    let sn = &inv.subnet;
    let list = |v: &[String]| -> String {
        let items: Vec<String> = v.iter().map(|x| quoted(x)).collect();
        format!("[{}]", items.join(", "))
    };
    let mut s = format!(
        "id: {}\nname: {}\nsubnets:\n  - id: {}\n    cidr: {}\n    dns: {}\n    ntp: {}\n",
        quoted(&inv.site_id),
        quoted(&inv.site_name),
        quoted(&sn.id),
        quoted(&format!("{}/{}", sn.addr, sn.prefix)),
        list(&sn.dns),
        list(&sn.ntp),
    );
    if let Some(g) = sn.gateway {
        s += &format!("    gateway: {}\n", quoted(&g.to_string()));
    }
    if let Some(d) = &sn.domain_name {
        s += &format!("    domain_name: {}\n", quoted(d));
    }
    if let Some(a) = &inv.agent {
        s += &format!(
            "agents:\n  - asset_server:\n      addr: {}\n      port: {}\n      base_dir: {}\n      scheme: {}\n    dhcp_mode: \"server\"\n",
            quoted(&a.addr),
            a.port,
            quoted(AGENT_FILES_DIR),
            quoted(&a.scheme),
        );
    }
    s += &format!(
        "metadata:\n  {ENV_CLUSTER_KEY}: {}\n",
        quoted(cluster_data_url)
    );
    s
}

/// `sites/SITE/NAME.yml`: one metal node, known by its MAC, with its fixed address,
/// its workflow, and its part of node.yaml in the metadata.
pub fn host_doc(
    inv: &crate::inventory::Inventory,
    node: &crate::inventory::Node,
    node_data_url: &str,
) -> String {
    format!(
        "name: {}\ninterfaces:\n  - type: \"physical\"\n    mac: {}\n    subnet: {}\n    ipv4: {}\n    hostname: {}\nmetadata:\n  role: {}\n  {HOST_NODE_KEY}: {}\nworkflow: {}\n",
        quoted(&node.name),
        quoted(node.mac.as_deref().unwrap_or_default()),
        quoted(&inv.subnet.id),
        quoted(&node.ip.to_string()),
        quoted(&node.name),
        quoted(role_name(node.role)),
        quoted(node_data_url),
        quoted(&role_id(node.role)),
    )
}

/// The data Vaquero gives a template for one host, from the documents as written:
/// `.env` (`agentURL`, `md` = the site's metadata), `.host` (the host document, `md` =
/// its metadata), `.interface` (its first interface), `.boot.configURL`.
pub fn template_data(
    env_yml: &str,
    host_yml: &str,
    agent_url: &str,
    config_url: &str,
) -> Result<serde_json::Value, serde_yaml_ng::Error> {
    let env: serde_json::Value = serde_yaml_ng::from_str(env_yml)?;
    let host: serde_json::Value = serde_yaml_ng::from_str(host_yml)?;
    let mut host_data = host.clone();
    if let Some(map) = host_data.as_object_mut() {
        let md = map.remove("metadata").unwrap_or_default();
        map.insert("md".into(), md);
    }
    Ok(serde_json::json!({
        "env": {
            "agentURL": agent_url,
            "md": env.get("metadata").cloned().unwrap_or_default(),
            "id": env.get("id").cloned().unwrap_or_default(),
        },
        "host": host_data,
        "interface": host.pointer("/interfaces/0").cloned().unwrap_or_default(),
        "boot": {"configURL": config_url},
    }))
}

#[cfg(test)]
mod tests;
