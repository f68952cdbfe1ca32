//! A platform component baked into the default image and running at boot: a haproxy
//! image made here from the host's Debian haproxy (binary + the libraries `ldd` lists +
//! a minimal /etc/passwd), pinned by digest in the recipe, run by `harmony-agent
//! component run haproxy` from busybox init, and reached through a QEMU host forward.
//! (prometheus, redis, etcd are not installed on this machine and cannot be downloaded,
//! so haproxy is the one real upstream program we can bake in here.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harmony::build::{build, default_base, BuildOptions};
use harmony::oci::{ImageDetails, LayoutWriter};
use harmony::run::{Forward, Vm, VmOptions};
use harmony::tree::layer::{encode_layer, LayerChanges};
use harmony::tree::Entry;
use harmony_vm_tests::{cache_dir, echo_requested, free_port, target_dir};

const BOOT: Duration = Duration::from_secs(240);
const HAPROXY: &str = "/usr/sbin/haproxy";

/// `ldd` output → the absolute paths of the libraries and the loader.
fn shared_libraries(binary: &str) -> Vec<PathBuf> {
    let out = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .expect("ldd");
    assert!(out.status.success(), "ldd {binary} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// An OCI layout of haproxy made with the builder's LayoutWriter; returns its digest.
fn haproxy_fixture(dir: &Path) -> String {
    let mut changes = LayerChanges::default();
    let mut add = |path: &Path, mode: u32| {
        let real = std::fs::canonicalize(path).unwrap();
        changes.put(
            path.to_str().unwrap(),
            Entry::file(std::fs::read(&real).unwrap(), mode),
        );
    };
    add(Path::new(HAPROXY), 0o755);
    for lib in shared_libraries(HAPROXY) {
        add(&lib, 0o755);
    }
    changes.put(
        "/etc/passwd",
        Entry::file(
            b"root:x:0:0:root:/:/bin/false\nhaproxy:x:99:99:haproxy:/:/bin/false\n".to_vec(),
            0o644,
        ),
    );
    changes.put(
        "/etc/group",
        Entry::file(b"root:x:0:\nhaproxy:x:99:\n".to_vec(), 0o644),
    );
    let layer = encode_layer(&changes, 0).unwrap();
    let mut writer = LayoutWriter::create(dir, 0).unwrap();
    writer
        .add_layer(&layer, "haproxy from the host's Debian package")
        .unwrap();
    writer.set_command(
        vec![HAPROXY.into()],
        vec![
            "-db".into(),
            "-f".into(),
            "/usr/local/etc/haproxy/haproxy.cfg".into(),
        ],
    );
    writer
        .finish(&ImageDetails {
            tag: "fixture".into(),
            labels: Default::default(),
            annotations: Default::default(),
        })
        .unwrap()
}

/// One HTTP/1.0 GET through the forward; None while the guest is not answering yet.
fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    (!body.is_empty()).then_some(body)
}

#[test]
fn haproxy_component_is_baked_in_and_serves_its_stats_through_a_host_forward() {
    if !Path::new(HAPROXY).exists() {
        harmony_test_support::skip("tool haproxy not installed: components vm-test");
        return;
    }
    let work = target_dir().join("vm-tests").join("components");
    std::fs::create_dir_all(&work).unwrap();
    let fixture = work.join("haproxy-layout");
    let digest = haproxy_fixture(&fixture);
    let cache = cache_dir();
    let base = default_base::ensure_default_base(&cache, 0).unwrap();
    let recipe = work.join("recipe.yaml");
    std::fs::write(
        &recipe,
        format!(
            "name: harmony-components\nversion: 0.1.0\nbase: oci-layout:{base}:latest\n\
             directories:\n  - path: /var/lib/harmony\n    mode: \"0755\"\n\
             components:\n  - name: haproxy\n    image: oci-layout:{fixture}@{digest}\n    values:\n      stats_port: 8404\n\
             outputs: [pxe]\n",
            base = base.display(),
            fixture = fixture.display()
        ),
    )
    .unwrap();
    let out = work.join("image");
    let report = build(&BuildOptions {
        recipe: Some(recipe),
        out: out.clone(),
        cache,
        agent_bin: None,
        init_bin: None,
        source_date_epoch: 0,
    })
    .unwrap_or_else(|e| panic!("building the image with haproxy: {e:#}"));
    let lock = &report.manifest.inputs["steps"];
    assert!(
        lock.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "component"),
        "{lock}"
    );

    let port = free_port();
    let mut opts = VmOptions::new(&out);
    opts.echo = echo_requested();
    // The busybox image brings its NIC up only when asked: hostfwd needs the guest's
    // address from QEMU's DHCP.
    opts.extra_cmdline = vec!["ip=dhcp".into()];
    opts.forwards = vec![Forward::loopback_tcp(port, 8404)];
    let vm = Vm::boot(&opts).expect("boot");
    let started = vm
        .wait_for_line(
            |l| l.contains("harmony-agent: component haproxy: started pid"),
            BOOT,
        )
        .unwrap_or_else(|e| panic!("haproxy never started: {e}"));
    eprintln!("console: {started}");

    // haproxy may take a while under TCG on a loaded machine: wait for its answer, with a
    // bound that only a broken image reaches.
    let mut health = None;
    let bound = std::time::Instant::now() + Duration::from_secs(180);
    while std::time::Instant::now() < bound {
        if let Some(r) = get(port, "/healthz") {
            health = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let health = health.unwrap_or_else(|| {
        panic!(
            "no answer on 127.0.0.1:{port}/healthz; console:\n{}",
            vm.tail().join("\n")
        )
    });
    assert!(
        health.starts_with("HTTP/1.1 200") || health.starts_with("HTTP/1.0 200"),
        "{health}"
    );
    assert!(health.ends_with("ok"), "{health}");
    let stats = get(port, "/stats;csv").expect("stats");
    assert!(stats.contains("stats,FRONTEND"), "{stats}");
    vm.shutdown().unwrap();
}
