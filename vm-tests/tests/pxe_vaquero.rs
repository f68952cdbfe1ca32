//! PXE boot as Vaquero serves it: QEMU's iPXE ROM (Debian ipxe-qemu, virtio-net) gets
//! `boot.ipxe` over TFTP from QEMU's user network, which chains to an HTTP server in this
//! test laid out like Vaquero's agent — `/ipxe?mac=` (the host's script, translated from
//! the build's `vaquero/os/` document), `/files/…` (the build's `vaquero/files/`),
//! `/config/MAC?boot=ID` (the host's rendered Ignition template) — on the host's loopback,
//! which the guest reaches as 10.0.2.2 through QEMU's slirp (no real network is touched).
//! The agent fetches its config from `ignition.config.url` and reports first boot.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use harmony::run::accel::{choose_accel, Accel};
use harmony::run::console::{Console, Echo};
use harmony::run::FIRSTBOOT_MARKER;
use harmony::vaquero::{ignition_template, ipxe::ipxe_script, role_id, template, template_data};
use harmony_vm_tests::{default_image, echo_requested};

const MAC: &str = "52:54:00:12:34:41";
const BOOT: Duration = Duration::from_secs(300);

/// What the server needs to answer like a Vaquero agent for one host.
struct Site {
    vaquero: PathBuf,
    os_yml: String,
    env_yml: String,
    host_yml: String,
    role: ignition::node_settings::Role,
}

/// The inventory of one metal worker on QEMU's user network, the agent at 10.0.2.2:PORT.
fn inventory(port: u16) -> String {
    format!(
        "site: {{id: qemu, agent: {{addr: 10.0.2.2, port: {port}}}}}\n\
         subnet: {{id: slirp, cidr: 10.0.2.0/24, gateway: 10.0.2.2, dns: [10.0.2.3]}}\n\
         cluster:\n  api_endpoints: [https://10.0.2.100:6443]\n  \
         bootstrap_token: abcdef.0123456789abcdef\n  \
         ca_cert_hashes: [sha256:8b1a9953c4611296a827abf8c47804d7e6c49c6b0d1e5c4e5b6f1d0f8b9a7c6d]\n  \
         pod_cidr: 10.244.0.0/16\n\
         nodes:\n  - {{name: pxe-worker-1, mac: \"{MAC}\", ip: 10.0.2.15, role: worker}}\n"
    )
}

fn agent_url(port: u16) -> String {
    format!("http://10.0.2.2:{port}")
}

fn config_url(port: u16, site: &Site) -> String {
    format!(
        "{}/config/{}?boot={}",
        agent_url(port),
        MAC.replace(':', "-"),
        role_id(site.role)
    )
}

/// The host's config: its role's template filled with what Vaquero knows of it. The
/// default image has no kubelet and the test no API server, so the node.yaml entry (which
/// makes the agent join the cluster) is left out; everything else is the template's.
fn host_config(site: &Site, port: u16) -> Vec<u8> {
    let data = template_data(
        &site.env_yml,
        &site.host_yml,
        &agent_url(port),
        &config_url(port, site),
    )
    .unwrap();
    let filled = template::render(&ignition_template(site.role), &data).unwrap();
    let mut cfg: serde_json::Value = serde_json::from_str(&filled).unwrap();
    let files = cfg["storage"]["files"].as_array_mut().unwrap();
    files.retain(|f| f["path"] != ignition::node_settings::NODE_YAML_PATH);
    serde_json::to_vec(&cfg).unwrap()
}

fn respond(conn: &mut std::net::TcpStream, status: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.0 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

/// Serve like a Vaquero agent; log request lines.
fn serve(listener: TcpListener, site: Arc<Site>, log: Arc<Mutex<Vec<String>>>) {
    let port = listener.local_addr().unwrap().port();
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        let site = site.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                return;
            }
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            log.lock().unwrap().push(request.trim().to_string());
            let target = request.split_whitespace().nth(1).unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let hyphen_mac = MAC.replace(':', "-");
            if path == "/ipxe" && query.contains(&format!("mac={hyphen_mac}")) {
                let data = serde_json::json!({
                    "env": {"agentURL": agent_url(port)},
                    "boot": {"configURL": config_url(port, &site)},
                });
                let script = ipxe_script(&site.os_yml, &data).unwrap();
                respond(&mut conn, "200 OK", script.as_bytes());
            } else if let Some(rel) = path.strip_prefix("/files/") {
                let file = site.vaquero.join("files").join(rel);
                match (rel.contains(".."), std::fs::read(&file)) {
                    (false, Ok(bytes)) => respond(&mut conn, "200 OK", &bytes),
                    _ => respond(&mut conn, "404 Not Found", b""),
                }
            } else if path == format!("/config/{hyphen_mac}")
                && query == format!("boot={}", role_id(site.role))
            {
                respond(&mut conn, "200 OK", &host_config(&site, port));
            } else {
                respond(&mut conn, "404 Not Found", b"");
            }
        });
    }
}

fn only_file(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries[0].clone()
}

#[test]
fn pxe_boot_from_a_vaquero_layout_reports_first_boot() {
    let out = default_image();
    let vaquero = out.join("vaquero");
    let os_yml = std::fs::read_to_string(only_file(&vaquero.join("os"))).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let inv_path = tmp.path().join("inventory.yaml");
    std::fs::write(&inv_path, inventory(port)).unwrap();
    let inv = harmony::inventory::load(&inv_path).unwrap_or_else(|e| panic!("{e}"));
    let (rendered, _) = harmony::inventory::render::render(&inv, &tmp.path().join("inv")).unwrap();
    let site = Arc::new(Site {
        vaquero: vaquero.clone(),
        os_yml,
        env_yml: std::fs::read_to_string(rendered.join("sites/qemu/env.yml")).unwrap(),
        host_yml: std::fs::read_to_string(rendered.join("sites/qemu/pxe-worker-1.yml")).unwrap(),
        role: inv.nodes[0].role,
    });
    let log = Arc::new(Mutex::new(Vec::new()));
    {
        let (site, log) = (site.clone(), log.clone());
        std::thread::spawn(move || serve(listener, site, log));
    }

    // What Vaquero's TFTP hands iPXE: chain to the agent for this host's script.
    let tftp = tmp.path().join("tftp");
    std::fs::create_dir(&tftp).unwrap();
    std::fs::write(
        tftp.join("boot.ipxe"),
        format!(
            "#!ipxe\nchain {}/ipxe?uuid=${{uuid}}&mac=${{net0/mac:hexhyp}}\n",
            agent_url(port)
        ),
    )
    .unwrap();

    let accel = choose_accel().unwrap();
    let mut child = Command::new("qemu-system-x86_64")
        .args(["-accel", &accel.to_string(), "-m", "1024", "-smp", "1"])
        .args(["-display", "none", "-serial", "stdio", "-monitor", "none"])
        .args(["-no-reboot", "-boot", "n"])
        .arg("-nic")
        .arg(format!(
            "user,model=virtio-net-pci,mac={MAC},tftp={},bootfile=boot.ipxe",
            tftp.display()
        ))
        .args(if accel == Accel::Kvm {
            &["-cpu", "host"][..]
        } else {
            &[][..]
        })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu-system-x86_64");
    let echo = if echo_requested() {
        Echo::Lines
    } else {
        Echo::Off
    };
    let mut console = Console::new(child.stdout.take().unwrap(), 60, echo);
    let mut qemu_err = Console::new(child.stderr.take().unwrap(), 20, echo);
    let line = console.wait_for_line(|l| l.contains(FIRSTBOOT_MARKER), BOOT);
    let _ = child.kill();
    let _ = child.wait();
    console.join();
    qemu_err.join();
    let requests = log.lock().unwrap().clone();
    let line = line.unwrap_or_else(|e| {
        panic!(
            "no first-boot report ({e:?}); requests: {requests:#?}\nconsole:\n{}\nqemu:\n{}",
            console.tail().join("\n"),
            qemu_err.tail().join("\n")
        )
    });
    let report: serde_json::Value = serde_json::from_str(
        &line[line.find(FIRSTBOOT_MARKER).unwrap() + FIRSTBOOT_MARKER.len()..],
    )
    .unwrap();
    assert_eq!(report["status"], "success", "{report}");
    assert_eq!(report["platform"], "metal", "{report}");
    assert_eq!(
        report["source"],
        format!("url:{}", config_url(port, &site)),
        "{report}"
    );
    let hostname = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["path"] == "/etc/hostname")
        .unwrap_or_else(|| panic!("/etc/hostname not written: {report}"));
    assert_eq!(
        hostname["sha256"],
        harmony_vm_tests::sha256_hex(b"pxe-worker-1\n"),
        "the host name from the host document, through the template"
    );
    // The path as Vaquero serves it, in order: script, kernel, initrds, config.
    let paths: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.split_whitespace().nth(1))
        .map(|t| t.split('?').next().unwrap())
        .collect();
    let prefix = "/files/harmony/harmony-default/";
    assert_eq!(paths.first(), Some(&"/ipxe"), "{requests:?}");
    let kernel = paths
        .iter()
        .position(|p| p.starts_with(prefix) && p.ends_with("/vmlinuz"));
    let initrd = paths.iter().position(|p| p.ends_with("/rootfs.img"));
    let config = paths.iter().position(|p| p.starts_with("/config/"));
    assert!(
        kernel.is_some() && kernel < initrd && initrd < config,
        "{requests:?}"
    );
}
