use std::path::{Path, PathBuf};
use std::process::Command;

use ignition::node_settings::{NodeSettings, Role};

use super::render::{node_ignition, render};
use super::*;
use crate::vaquero::{ignition_template, template, template_data};

const EXAMPLE: &str = include_str!("../../../examples/inventory.yaml");

fn example() -> Inventory {
    parse(EXAMPLE, "inventory.yaml").unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_example_parses_with_pod_cidrs_in_order() {
    let inv = example();
    assert_eq!(inv.site_id, "lab1");
    let cidrs: Vec<&str> = inv.nodes.iter().map(|n| n.pod_cidr.as_str()).collect();
    assert_eq!(
        cidrs,
        [
            "10.244.0.0/24",
            "10.244.1.0/24",
            "10.244.2.0/24",
            "10.244.3.0/24"
        ]
    );
    assert_eq!(inv.nodes[0].role, Role::ControlPlane);
    assert_eq!(inv.nodes[3].platform, Platform::Vmware);
    assert_eq!(inv.nodes[3].mac, None);
}

/// The example with its `nodes:` list replaced.
fn with_nodes(nodes: &str) -> String {
    let head = EXAMPLE.split("nodes:\n").next().unwrap();
    format!("{head}nodes:\n{nodes}")
}

fn errors(text: &str) -> Vec<String> {
    parse(text, "inv.yaml")
        .unwrap_err()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn duplicates_are_refused_naming_file_line_node_and_field() {
    let text = with_nodes(
        "  - {name: a, mac: \"52:54:00:00:00:01\", ip: 10.20.0.5, role: worker}\n\
         \x20 - {name: b, mac: \"52-54-00-00-00-01\", ip: 10.20.0.5, role: worker}\n\
         \x20 - {name: a, mac: \"52:54:00:00:00:03\", ip: 10.20.0.7, role: worker}\n",
    );
    let line = |n: usize| text.lines().position(|l| l.contains("- {name")).unwrap() + 1 + n;
    let errs = errors(&text);
    assert_eq!(
        errs,
        [
            format!(
                "inv.yaml:{}: nodes[1].mac: duplicate MAC 52:54:00:00:00:01: nodes[0] has it too (node b)",
                line(1)
            ),
            format!(
                "inv.yaml:{}: nodes[1].ip: duplicate IP 10.20.0.5: nodes[0] has it too (node b)",
                line(1)
            ),
            format!(
                "inv.yaml:{}: nodes[2].name: duplicate name: nodes[0] is also `a` (node a)",
                line(2)
            ),
        ]
    );
}

#[test]
fn bad_fields_are_each_named() {
    let text = with_nodes(
        "  - name: Bad_Name\n    mac: \"52:54:00:00:00:01\"\n    ip: 10.30.0.5\n    role: master\n\
         \x20 - name: nomac\n    ip: 10.20.0.9\n    role: worker\n\
         \x20 - name: wrongmac\n    mac: 52:54:00\n    ip: 10.20.0.1\n    role: worker\n    platform: pxe\n",
    );
    let errs = errors(&text).join("\n");
    for part in [
        "nodes[0].name: `Bad_Name` is not a host name",
        "nodes[0].ip: 10.30.0.5 is outside the subnet 10.20.0.0/24 (node Bad_Name)",
        "nodes[0].role: unknown role `master`",
        "nodes[1].mac: a metal node needs its MAC",
        "nodes[2].platform: unknown platform `pxe`",
        "nodes[2].mac: `52:54:00` is not a MAC address",
        "nodes[2].ip: 10.20.0.1 is the subnet's network or gateway address",
    ] {
        assert!(errs.contains(part), "missing {part:?} in:\n{errs}");
    }
    let role_line = text
        .lines()
        .position(|l| l.contains("role: master"))
        .unwrap()
        + 1;
    assert!(
        errs.contains(&format!("inv.yaml:{role_line}: nodes[0].role")),
        "{errs}"
    );
}

#[test]
fn the_agents_schema_decides_cluster_settings() {
    let text = EXAMPLE.replace("abcdef.0123456789abcdef", "not-a-token");
    let errs = errors(&text).join("\n");
    let line = text
        .lines()
        .position(|l| l.contains("not-a-token"))
        .unwrap()
        + 1;
    assert!(
        errs.starts_with(&format!("inv.yaml:{line}: cluster.bootstrap_token: ")),
        "{errs}"
    );
    let text = EXAMPLE.replace("pod_cidr: 10.244.0.0/16", "pod_cidr: 10.244.0.0/31");
    assert!(
        errors(&text).join("\n").contains("cluster.node_pod_prefix"),
        "a /24 per node does not fit a /31"
    );
    let text = EXAMPLE.replace("pod_cidr: 10.244.0.0/16", "pod_cidr: 10.244.0.0/23");
    assert!(errors(&text)
        .join("\n")
        .contains("holds 2 node subnets of /24, the inventory has 4 nodes"));
    let unknown = EXAMPLE.replace(
        "    role: worker\n    labels",
        "    role: worker\n    colour: red\n    labels",
    );
    let errs = errors(&unknown).join("\n");
    assert!(
        errs.contains("nodes[2]") && errs.contains("unknown field `colour`"),
        "{errs}"
    );
}

/// Parsed by our Ignition crate and resolved: the files the agent would write.
fn files_of(json: &[u8]) -> ignition::NodeConfig {
    ignition::node_config(json, &ignition::NoRemoteFetcher).unwrap_or_else(|e| {
        panic!("{e}\n{}", String::from_utf8_lossy(json));
    })
}

fn file(cfg: &ignition::NodeConfig, path: &str) -> Vec<u8> {
    let f = cfg.files.iter().find(|f| f.path == path).unwrap();
    ignition::Contents::concat(f.contents.iter().chain(&f.append))
        .unwrap()
        .to_vec()
        .unwrap()
}

/// The real Ignition's validator, if installed.
fn ignition_validate() -> Option<PathBuf> {
    let dracut = Path::new("/usr/lib/dracut/modules.d/30ignition/ignition-validate");
    if dracut.exists() {
        return Some(dracut.to_path_buf());
    }
    let on_path = Command::new("ignition-validate").arg("--version").output();
    on_path.ok().map(|_| PathBuf::from("ignition-validate"))
}

fn validate_with_ignition(path: &Path) {
    let Some(bin) = ignition_validate() else {
        harmony_test_support::skip("tool ignition-validate not installed: Debian package ignition");
        return;
    };
    let out = Command::new(&bin).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "ignition-validate {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn render_writes_valid_ignition_and_vaquero_hosts_whose_templates_agree() {
    let inv = example();
    let tmp = tempfile::tempdir().unwrap();
    let (out, report) = render(&inv, &tmp.path().join("out")).unwrap();
    assert_eq!(report.nodes.len(), 4);
    let env = std::fs::read_to_string(out.join("sites/lab1/env.yml")).unwrap();
    for (node, rendered) in inv.nodes.iter().zip(&report.nodes) {
        let path = out.join(&rendered.ignition);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            rendered.ignition_sha256,
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        validate_with_ignition(&path);
        let cfg = files_of(&bytes);
        assert_eq!(
            file(&cfg, "/etc/hostname"),
            format!("{}\n", node.name).as_bytes()
        );
        let settings = NodeSettings::from_node_config(&cfg).unwrap().unwrap();
        assert_eq!(settings.role, node.role);
        assert_eq!(settings.node.labels, node.labels);
        assert_eq!(
            settings.kubelet.pod_cidr.map(|c| c.to_string()).as_deref(),
            Some(node.pod_cidr.as_str())
        );
        assert_eq!(settings.cluster.unwrap().api_endpoints.len(), 2);

        // Metal nodes: the role's Vaquero template, filled with what Vaquero would read
        // from the documents we wrote, is valid Ignition that writes the same files.
        let Some(host_path) = &rendered.host else {
            assert_eq!(node.platform, Platform::Vmware);
            continue;
        };
        let host = std::fs::read_to_string(out.join(host_path)).unwrap();
        assert!(
            host.contains(&format!("    mac: \"{}\"\n", node.mac.as_deref().unwrap())),
            "MACs are quoted: {host}"
        );
        let data = template_data(
            &env,
            &host,
            "http://10.20.0.2:24602",
            &format!(
                "http://10.20.0.2:24602/config/{}",
                node.mac.as_deref().unwrap()
            ),
        )
        .unwrap();
        let filled = template::render(&ignition_template(node.role), &data).unwrap();
        let filled_path = tmp.path().join(format!("{}.filled.ign", node.name));
        std::fs::write(&filled_path, &filled).unwrap();
        validate_with_ignition(&filled_path);
        let from_template = files_of(filled.as_bytes());
        for p in ["/etc/hostname", ignition::node_settings::NODE_YAML_PATH] {
            assert_eq!(
                file(&from_template, p),
                file(&cfg, p),
                "{p} of {}",
                node.name
            );
        }
    }
    let hosts = std::fs::read_dir(out.join("sites/lab1")).unwrap().count();
    assert_eq!(hosts, 4, "env.yml and three metal hosts");
}

#[test]
fn a_failed_render_leaves_the_previous_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    render(&example(), &out).unwrap();
    let before = std::fs::read(out.join("ignition/cp-1.ign")).unwrap();
    // A name that load() would refuse makes the second node's write fail midway.
    let mut inv = example();
    inv.nodes[0].name = "first".into();
    inv.nodes[1].name = "no/such/dir".into();
    assert!(render(&inv, &out).is_err());
    assert_eq!(
        std::fs::read(out.join("ignition/cp-1.ign")).unwrap(),
        before
    );
    assert!(!out.join("ignition/first.ign").exists());
    let leftovers = std::fs::read_dir(tmp.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no staging directory left behind");
    // A directory that is not a rendered inventory is never replaced.
    std::fs::write(tmp.path().join("precious"), "x").unwrap();
    let err = render(&example(), tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("not a Harmony output (no inventory.json)"),
        "{err}"
    );
    assert_eq!(
        node_ignition(&example().nodes[0])["ignition"]["version"],
        "3.3.0"
    );
}

/// The Ignition configs and env.yml carry the bootstrap token: 0600 under any umask.
#[test]
fn files_holding_the_bootstrap_token_are_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let (out, report) = render(&example(), &tmp.path().join("out")).unwrap();
    let token = example().nodes[0].node_yaml.cluster.0.clone();
    let mut secret_files: Vec<String> = report.nodes.iter().map(|n| n.ignition.clone()).collect();
    secret_files.push("sites/lab1/env.yml".to_string());
    for f in &secret_files {
        let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}: {mode:o}");
    }
    assert!(token.contains("bootstrap_token"), "{token}");
}
