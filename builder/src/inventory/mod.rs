//! The operator's inventory: one cluster, its site and subnet, and its machines.
//!
//! `load` parses and checks the whole file and returns every problem at once, each as
//! `FILE:LINE: FIELD: problem (node NAME)`; the lines come from the recipe's YAML locator.
//! What comes out is fully checked: names unique DNS labels, MACs and IPs unique and in
//! the subnet, every node's settings valid for the agent (its pod CIDR allocated).

mod model;
pub mod node_yaml;
pub mod render;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use ignition::node_settings::{NodeSettings, Role};

pub use model::{InventoryDoc, NodeDoc};

use crate::recipe::locate::{deserialize_located, FieldLocations};

/// Where a machine boots; only `metal` machines get a Vaquero host document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Metal,
    Vmware,
    Qemu,
}

impl Platform {
    const NAMES: [(&'static str, Platform); 3] = [
        ("metal", Platform::Metal),
        ("vmware", Platform::Vmware),
        ("qemu", Platform::Qemu),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub id: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<String>,
    pub ntp: Vec<String>,
    pub domain_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// Lowercase `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub ip: Ipv4Addr,
    pub role: Role,
    pub labels: BTreeMap<String, String>,
    pub platform: Platform,
    /// This node's slice of the cluster pod CIDR.
    pub pod_cidr: String,
    /// The node's `/etc/harmony/node.yaml`, in its three parts (see [`node_yaml`]).
    pub node_yaml: node_yaml::NodeYaml,
}

/// A checked inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub label: String,
    pub site_id: String,
    pub site_name: String,
    /// Vaquero agent's asset server as the nodes reach it: `scheme`, `addr`, `port`.
    pub agent: Option<model::AgentDoc>,
    pub subnet: Subnet,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: String,
    pub line: Option<usize>,
    pub field: String,
    pub node: Option<String>,
    pub problem: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.problem)?;
        if let Some(node) = &self.node {
            write!(f, " (node {node})")?;
        }
        Ok(())
    }
}

/// Every problem of one inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryErrors(pub Vec<InventoryError>);

impl fmt::Display for InventoryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        write!(f, "{}", lines.join("\n"))
    }
}

impl std::error::Error for InventoryErrors {}

pub fn load(path: &Path) -> Result<Inventory, InventoryErrors> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        InventoryErrors(vec![InventoryError {
            file: label.clone(),
            line: None,
            field: String::new(),
            node: None,
            problem: format!("cannot read: {e}"),
        }])
    })?;
    parse(&text, &label)
}

struct Checker<'a> {
    label: &'a str,
    locations: FieldLocations,
    errors: Vec<InventoryError>,
}

impl Checker<'_> {
    fn fail(&mut self, field: &str, node: Option<&str>, problem: impl Into<String>) {
        self.errors.push(InventoryError {
            file: self.label.to_string(),
            line: self.locations.line_of(field),
            field: field.to_string(),
            node: node.map(str::to_string),
            problem: problem.into(),
        });
    }
}

pub fn parse(text: &str, label: &str) -> Result<Inventory, InventoryErrors> {
    let locations = FieldLocations::index(text);
    let doc: InventoryDoc = deserialize_located(text, &locations).map_err(|e| {
        InventoryErrors(vec![InventoryError {
            file: label.to_string(),
            line: e.line,
            field: e.field,
            node: None,
            problem: e.problem,
        }])
    })?;
    let mut c = Checker {
        label,
        locations,
        errors: Vec::new(),
    };

    if !is_dns_label(&doc.site.id) {
        c.fail(
            "site.id",
            None,
            format!("`{}` is not a lowercase DNS label", doc.site.id),
        );
    }
    let subnet = check_subnet(&mut c, &doc.subnet);
    let cluster = node_yaml::ClusterPart::new(&doc.cluster);
    let pod_cidrs = check_pod_cidr(&mut c, &doc.cluster, doc.nodes.len());

    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut macs: HashMap<String, usize> = HashMap::new();
    let mut ips: HashMap<Ipv4Addr, usize> = HashMap::new();
    let mut nodes = Vec::with_capacity(doc.nodes.len());
    if doc.nodes.is_empty() {
        c.fail("nodes", None, "at least one node is needed");
    }
    for (i, n) in doc.nodes.iter().enumerate() {
        let at = |f: &str| format!("nodes[{i}].{f}");
        let who = Some(n.name.as_str());
        if !is_hostname(&n.name) {
            c.fail(
                &at("name"),
                who,
                format!(
                    "`{}` is not a host name (lowercase DNS labels: a-z, 0-9, -)",
                    n.name
                ),
            );
        }
        if let Some(first) = names.insert(&n.name, i) {
            c.fail(
                &at("name"),
                who,
                format!("duplicate name: nodes[{first}] is also `{}`", n.name),
            );
        }
        let platform = match Platform::NAMES.iter().find(|(p, _)| *p == n.platform) {
            Some((_, p)) => *p,
            None => {
                c.fail(
                    &at("platform"),
                    who,
                    format!(
                        "unknown platform `{}` (known: metal, vmware, qemu)",
                        n.platform
                    ),
                );
                Platform::Metal
            }
        };
        let mac = match &n.mac {
            Some(m) => match normalize_mac(m) {
                Some(m) => {
                    if let Some(first) = macs.insert(m.clone(), i) {
                        c.fail(
                            &at("mac"),
                            who,
                            format!("duplicate MAC {m}: nodes[{first}] has it too"),
                        );
                    }
                    Some(m)
                }
                None => {
                    c.fail(
                        &at("mac"),
                        who,
                        format!("`{m}` is not a MAC address (six hex pairs: 52:54:00:12:34:56)"),
                    );
                    None
                }
            },
            None => {
                if platform == Platform::Metal {
                    c.fail(
                        &at("mac"),
                        who,
                        "a metal node needs its MAC (Vaquero knows machines by MAC)",
                    );
                }
                None
            }
        };
        let ip = match n.ip.parse::<Ipv4Addr>() {
            Ok(ip) => {
                if let Some(first) = ips.insert(ip, i) {
                    c.fail(
                        &at("ip"),
                        who,
                        format!("duplicate IP {ip}: nodes[{first}] has it too"),
                    );
                }
                if let Some(s) = &subnet {
                    if !in_subnet(ip, s.addr, s.prefix) {
                        c.fail(
                            &at("ip"),
                            who,
                            format!("{ip} is outside the subnet {}/{}", s.addr, s.prefix),
                        );
                    } else if Some(ip) == s.gateway || ip == s.addr {
                        c.fail(
                            &at("ip"),
                            who,
                            format!("{ip} is the subnet's network or gateway address"),
                        );
                    }
                }
                ip
            }
            Err(_) => {
                c.fail(&at("ip"), who, format!("`{}` is not an IPv4 address", n.ip));
                Ipv4Addr::UNSPECIFIED
            }
        };
        let role = match n.role.as_str() {
            "control-plane" => Role::ControlPlane,
            "worker" => Role::Worker,
            other => {
                c.fail(
                    &at("role"),
                    who,
                    format!("unknown role `{other}` (known: control-plane, worker)"),
                );
                Role::Worker
            }
        };
        let pod_cidr = pod_cidrs.get(i).cloned().unwrap_or_default();
        let node_yaml = node_yaml::NodeYaml {
            cluster: cluster.clone(),
            role,
            node: node_yaml::NodePart::new(&n.labels, &pod_cidr),
        };
        // The agent's own schema decides: what it would refuse at first boot is refused here.
        if c.errors.is_empty() {
            if let Err(e) = NodeSettings::from_yaml_str(&node_yaml.text()) {
                for p in e.problems {
                    let field = settings_field(&p.path, i);
                    c.fail(&field, who, p.problem);
                }
            }
        }
        nodes.push(Node {
            name: n.name.clone(),
            mac,
            ip,
            role,
            labels: n.labels.clone(),
            platform,
            pod_cidr,
            node_yaml,
        });
    }
    if !c.errors.is_empty() {
        return Err(InventoryErrors(c.errors));
    }
    Ok(Inventory {
        label: label.to_string(),
        site_name: doc.site.name.clone().unwrap_or_else(|| doc.site.id.clone()),
        site_id: doc.site.id,
        agent: doc.site.agent,
        subnet: subnet.expect("checked above"),
        nodes,
    })
}

/// A settings path (`cluster.api_endpoints[0]`, `node.labels`) as the inventory field
/// that set it.
fn settings_field(path: &str, node: usize) -> String {
    if path.starts_with("cluster") {
        path.to_string()
    } else if let Some(rest) = path.strip_prefix("node.") {
        format!("nodes[{node}].{rest}")
    } else if path.starts_with("kubelet.pod_cidr") {
        "cluster.pod_cidr".into()
    } else if path.is_empty() {
        format!("nodes[{node}]")
    } else {
        format!("nodes[{node}].{path}")
    }
}

fn check_subnet(c: &mut Checker, s: &model::SubnetDoc) -> Option<Subnet> {
    let parsed = parse_ipv4_cidr(&s.cidr);
    if let Err(p) = &parsed {
        c.fail("subnet.cidr", None, p.clone());
    }
    let gateway = s
        .gateway
        .as_ref()
        .and_then(|g| match g.parse::<Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                c.fail(
                    "subnet.gateway",
                    None,
                    format!("`{g}` is not an IPv4 address"),
                );
                None
            }
        });
    let (addr, prefix) = parsed.ok()?;
    if let Some(g) = gateway {
        if !in_subnet(g, addr, prefix) {
            c.fail(
                "subnet.gateway",
                None,
                format!("{g} is outside the subnet {addr}/{prefix}"),
            );
        }
    }
    Some(Subnet {
        id: s.id.clone(),
        addr,
        prefix,
        gateway,
        dns: s.dns.clone(),
        ntp: s.ntp.clone(),
        domain_name: s.domain_name.clone(),
    })
}

/// Node i gets the i-th `/node_pod_prefix` of the cluster pod CIDR, in inventory order.
fn check_pod_cidr(c: &mut Checker, cluster: &model::ClusterDoc, nodes: usize) -> Vec<String> {
    let (addr, prefix) = match parse_ipv4_cidr(&cluster.pod_cidr) {
        Ok(p) => p,
        Err(p) => {
            c.fail("cluster.pod_cidr", None, p);
            return Vec::new();
        }
    };
    let per_node = cluster.node_pod_prefix.unwrap_or(24);
    if per_node < prefix || per_node > 30 {
        c.fail(
            "cluster.node_pod_prefix",
            None,
            format!("/{per_node} must lie between the pod CIDR's /{prefix} and /30"),
        );
        return Vec::new();
    }
    let room = 1u64 << (per_node - prefix);
    if nodes as u64 > room {
        c.fail(
            "cluster.pod_cidr",
            None,
            format!(
                "{}/{prefix} holds {room} node subnets of /{per_node}, the inventory has {nodes} nodes",
                addr
            ),
        );
        return Vec::new();
    }
    let base = u32::from(addr);
    let step = 1u64 << (32 - per_node);
    (0..nodes as u64)
        .map(|i| {
            let a = Ipv4Addr::from((u64::from(base) + i * step) as u32);
            format!("{a}/{per_node}")
        })
        .collect()
}

fn parse_ipv4_cidr(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("`{s}` is not an IPv4 CIDR (e.g. 10.0.0.0/24)");
    let (a, p) = s.split_once('/').ok_or_else(bad)?;
    let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
    let prefix: u8 = p.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    if !in_subnet(addr, addr, prefix) || u32::from(addr) & !mask(prefix) != 0 {
        return Err(format!(
            "`{s}` has host bits set (network address expected)"
        ));
    }
    Ok((addr, prefix))
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

fn in_subnet(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    u32::from(ip) & mask(prefix) == u32::from(net) & mask(prefix)
}

/// `52-54-00-AB-CD-EF` or `52:54:00:ab:cd:ef` → `52:54:00:ab:cd:ef`.
pub fn normalize_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| parts.join(":").to_ascii_lowercase())
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// One or more DNS labels joined by dots, at most 253 characters.
fn is_hostname(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests;
