//! `harmony inventory render`: one Ignition config per node and the Vaquero site
//! documents, into a directory that appears whole or not at all.
//!
//! ```text
//! DIR/inventory.json            every node: role, platform, addresses, its files and their sha256
//! DIR/ignition/NAME.ign         the node's Ignition: host name and /etc/harmony/node.yaml (0600)
//! DIR/sites/SITE/env.yml        Vaquero site: subnet, agent, the cluster's part of node.yaml (0600)
//! DIR/sites/SITE/NAME.yml       Vaquero host (metal nodes): MAC, IPv4, workflow, the node's part
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::node_yaml::{data_url, role_name};
use super::{Inventory, Node, Platform};
use crate::build::output_dir::StagedOutput;
use crate::vaquero;

pub const MARKER: &str = "inventory.json";

#[derive(Debug, Serialize)]
pub struct RenderedNode {
    pub name: String,
    pub role: &'static str,
    pub platform: &'static str,
    pub ip: String,
    pub mac: Option<String>,
    pub pod_cidr: String,
    pub ignition: String,
    pub ignition_sha256: String,
    /// The Vaquero host document, for metal nodes.
    pub host: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RenderReport {
    pub site: String,
    pub nodes: Vec<RenderedNode>,
}

/// The node's Ignition (spec 3.3.0): `/etc/hostname` and node.yaml, whole.
pub fn node_ignition(node: &Node) -> serde_json::Value {
    serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "storage": {"files": [
            {
                "path": "/etc/hostname",
                "mode": 0o644,
                "overwrite": true,
                "contents": {"source": format!("data:,{}%0A", node.name)}
            },
            {
                "path": ignition::node_settings::NODE_YAML_PATH,
                "mode": 0o600,
                "overwrite": true,
                "contents": {"source": data_url(&node.node_yaml.text())}
            }
        ]}
    })
}

fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::Metal => "metal",
        Platform::Vmware => "vmware",
        Platform::Qemu => "qemu",
    }
}

pub fn render(inv: &Inventory, out: &Path) -> anyhow::Result<(PathBuf, RenderReport)> {
    let staged = StagedOutput::with_marker(out, MARKER, |bytes| {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .is_ok_and(|v| v.get("site").is_some() && v.get("nodes").is_some_and(|n| n.is_array()))
    })?;
    let root = staged.path();
    let ign_dir = root.join("ignition");
    let site_dir = root.join("sites").join(&inv.site_id);
    for d in [&ign_dir, &site_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    // Files carrying the bootstrap token: 0600 whatever the umask.
    let write_secret = |path: &Path, bytes: &[u8]| {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(bytes))
            .with_context(|| format!("writing {}", path.display()))
    };
    let cluster = inv
        .nodes
        .first()
        .map(|n| n.node_yaml.cluster.0.clone())
        .unwrap_or_default();
    write_secret(
        &site_dir.join("env.yml"),
        vaquero::env_doc(inv, &data_url(&cluster)).as_bytes(),
    )?;
    let mut report = RenderReport {
        site: inv.site_id.clone(),
        nodes: Vec::with_capacity(inv.nodes.len()),
    };
    for node in &inv.nodes {
        let mut ign = serde_json::to_vec_pretty(&node_ignition(node))?;
        ign.push(b'\n');
        let ign_name = format!("ignition/{}.ign", node.name);
        write_secret(&root.join(&ign_name), &ign)?;
        let host = if node.platform == Platform::Metal {
            let name = format!("sites/{}/{}.yml", inv.site_id, node.name);
            let doc = vaquero::host_doc(inv, node, &data_url(&node.node_yaml.node.0));
            write(&root.join(&name), doc.as_bytes())?;
            Some(name)
        } else {
            None
        };
        report.nodes.push(RenderedNode {
            name: node.name.clone(),
            role: role_name(node.role),
            platform: platform_name(node.platform),
            ip: node.ip.to_string(),
            mac: node.mac.clone(),
            pod_cidr: node.pod_cidr.clone(),
            ignition: ign_name,
            ignition_sha256: hex::encode(Sha256::digest(&ign)),
            host,
        });
    }
    write(&root.join(MARKER), &serde_json::to_vec_pretty(&report)?)?;
    let dir = staged.commit()?;
    Ok((dir, report))
}
