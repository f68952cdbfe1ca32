//! The join against stand-in API servers that speak the real protocol (see join_server):
//! success, wrong CA pin, forged signature, a server outside the pinned CA, one of three
//! endpoints down, all down; and first boot recording the join in firstboot.json.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

mod join_server;

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use harmony_agent::backoff::ManualClock;
use harmony_agent::join::{join, join_with_clock, Backoff, JoinError, JoinOptions};
use harmony_agent::target_root::TargetRoot;
use ignition::node_settings::NodeSettings;
use join_server::{cluster_kubeconfig, configmap_json, dead_endpoint, openssl_jws, ApiServer, Pki};

const TOKEN_ID: &str = "abcdef";
const SECRET: &str = "0123456789abcdef";
/// The server kubelet is to use (kubeadm's controlPlaneEndpoint), not a discovery endpoint.
const CONTROL_PLANE: &str = "https://10.0.0.100:6443";

fn openssl_available() -> bool {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        harmony_test_support::skip("tool openssl not installed");
    }
    ok
}

struct Fixture {
    _dir: tempfile::TempDir,
    cluster: Pki,
    /// Another CA and its server: what an attacker in the middle would hold.
    rogue: Pki,
}

fn pki() -> &'static Fixture {
    static PKI: OnceLock<Fixture> = OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        Fixture {
            cluster: Pki::new(&dir.path().join("cluster")),
            rogue: Pki::new(&dir.path().join("rogue")),
            _dir: dir,
        }
    })
}

/// cluster-info for the cluster CA, signed with `secret`.
fn cluster_info(ca_pem: &str, secret: &str) -> Vec<u8> {
    let kubeconfig = cluster_kubeconfig(CONTROL_PLANE, ca_pem);
    let sig = openssl_jws(&kubeconfig, TOKEN_ID, secret);
    // Another token's signature alongside, as on a real cluster.
    let other = openssl_jws(&kubeconfig, "zz9999", "ffffffffffffffff");
    configmap_json(&kubeconfig, &[("zz9999", other), (TOKEN_ID, sig)])
}

fn settings(endpoints: &[String], pins: &[&str]) -> NodeSettings {
    let yaml = format!(
        "cluster:\n  api_endpoints: [{}]\n  bootstrap_token: {TOKEN_ID}.{SECRET}\n  \
         ca_cert_hashes: [{}]\nrole: worker\nnode:\n  labels:\n    tier: web\n",
        endpoints.join(", "),
        pins.join(", ")
    );
    NodeSettings::from_yaml_str(&yaml).unwrap()
}

fn quick() -> JoinOptions {
    JoinOptions {
        backoff: Backoff {
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(80),
            total: Duration::from_millis(400),
            request_timeout: Duration::from_secs(5),
        },
        hosts_file: None,
        start: None,
    }
}

/// Every file under the root (the root starts empty).
fn files(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn success_writes_kubelets_bootstrap_files() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    let server = ApiServer::start(&f.cluster, cluster_info(&f.cluster.ca_pem, SECRET));
    let other_pin = format!("sha256:{}", "ab".repeat(32));
    let s = settings(
        std::slice::from_ref(&server.url),
        &[&other_pin, &f.cluster.ca_pin],
    );
    let dir = tempfile::tempdir().unwrap();
    let report = join(&s, &TargetRoot::new(dir.path()), &quick()).unwrap();

    assert_eq!(report.endpoint, server.url);
    assert_eq!(report.ca_pin, f.cluster.ca_pin);
    assert_eq!(report.server, CONTROL_PLANE);
    assert_eq!(report.kubelet_server, CONTROL_PLANE);
    assert_eq!(report.rounds, 1);
    // Once without verification, once with the pinned CA.
    assert_eq!(server.hits(), 2);
    assert_eq!(
        files(dir.path()),
        [
            "etc/kubernetes/bootstrap-kubelet.conf",
            "etc/kubernetes/pki/ca.crt",
            "var/lib/kubelet/kubeadm-flags.env",
        ]
    );
    let conf_path = dir.path().join("etc/kubernetes/bootstrap-kubelet.conf");
    assert_eq!(mode(&conf_path), 0o600);
    assert_eq!(mode(&dir.path().join("etc/kubernetes/pki/ca.crt")), 0o644);
    assert_eq!(
        mode(&dir.path().join("var/lib/kubelet/kubeadm-flags.env")),
        0o644
    );
    let conf: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(&std::fs::read(&conf_path).unwrap()).unwrap();
    assert_eq!(
        conf["clusters"][0]["cluster"]["server"].as_str(),
        Some(CONTROL_PLANE)
    );
    use base64::Engine;
    let ca_data = base64::engine::general_purpose::STANDARD
        .decode(
            conf["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(ca_data, f.cluster.ca_pem.as_bytes());
    assert_eq!(
        conf["users"][0]["user"]["token"].as_str(),
        Some("abcdef.0123456789abcdef")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("etc/kubernetes/pki/ca.crt")).unwrap(),
        f.cluster.ca_pem
    );
    let flags =
        std::fs::read_to_string(dir.path().join("var/lib/kubelet/kubeadm-flags.env")).unwrap();
    assert!(flags.contains("--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf"));
    assert!(flags.contains("--config=/var/lib/kubelet/config.yaml"));
    // Labels are the node role's (/etc/default/kubelet), not repeated here.
    assert!(!flags.contains("--node-labels"));
    // The report (firstboot.json's join section) holds no secret.
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(SECRET), "{json}");
    eprintln!("join scenario success: {report:?}");
}

/// A security event stops everything: `second` is never asked.
fn assert_refused(err: &JoinError, first: &ApiServer, second: &ApiServer, root: &Path) {
    assert!(err.is_security(), "{err}");
    assert!(
        err.to_string().contains("not asking other endpoints"),
        "{err}"
    );
    assert_eq!(second.hits(), 0, "the next endpoint was tried after {err}");
    assert!(files(root).is_empty(), "{:?}", files(root));
    assert!(first.hits() >= 1);
}

#[test]
fn wrong_ca_hash_fails_at_once_and_writes_nothing() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    let info = cluster_info(&f.cluster.ca_pem, SECRET);
    let (a, b) = (
        ApiServer::start(&f.cluster, info.clone()),
        ApiServer::start(&f.cluster, info),
    );
    // The rogue CA's pin: a valid pin, of the wrong key.
    let s = settings(&[a.url.clone(), b.url.clone()], &[&f.rogue.ca_pin]);
    let dir = tempfile::tempdir().unwrap();
    let err = join(&s, &TargetRoot::new(dir.path()), &quick()).unwrap_err();
    assert!(matches!(err, JoinError::CaPin { .. }), "{err}");
    assert!(err.to_string().contains(&f.cluster.ca_pin), "{err}");
    assert_refused(&err, &a, &b, dir.path());
    assert_eq!(a.hits(), 1);
    eprintln!("join scenario wrong CA hash: {err}");
}

#[test]
fn bad_signature_fails_at_once_and_writes_nothing() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    // Signed with another secret under our token's id: a forgery.
    let forged = cluster_info(&f.cluster.ca_pem, "fedcba9876543210");
    let good = cluster_info(&f.cluster.ca_pem, SECRET);
    let (a, b) = (
        ApiServer::start(&f.cluster, forged),
        ApiServer::start(&f.cluster, good),
    );
    let s = settings(&[a.url.clone(), b.url.clone()], &[&f.cluster.ca_pin]);
    let dir = tempfile::tempdir().unwrap();
    let err = join(&s, &TargetRoot::new(dir.path()), &quick()).unwrap_err();
    assert!(matches!(err, JoinError::Signature { .. }), "{err}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert_refused(&err, &a, &b, dir.path());
    assert_eq!(a.hits(), 1);
    eprintln!("join scenario bad signature: {err}");
}

#[test]
fn a_server_outside_the_pinned_ca_is_refused() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    // Genuine cluster-info (e.g. replayed), served with the rogue CA's certificate: the
    // first, unverified fetch passes; the pinned one must not.
    let info = cluster_info(&f.cluster.ca_pem, SECRET);
    let (a, b) = (
        ApiServer::start(&f.rogue, info.clone()),
        ApiServer::start(&f.cluster, info),
    );
    let s = settings(&[a.url.clone(), b.url.clone()], &[&f.cluster.ca_pin]);
    let dir = tempfile::tempdir().unwrap();
    let err = join(&s, &TargetRoot::new(dir.path()), &quick()).unwrap_err();
    assert!(matches!(err, JoinError::Pinned { .. }), "{err}");
    assert_refused(&err, &a, &b, dir.path());
    eprintln!("join scenario server outside the pinned CA: {err}");
}

#[test]
fn one_of_three_endpoints_down_fails_over() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    let info = cluster_info(&f.cluster.ca_pem, SECRET);
    let (b, c) = (
        ApiServer::start(&f.cluster, info.clone()),
        ApiServer::start(&f.cluster, info),
    );
    let down = dead_endpoint();
    let s = settings(
        &[down.clone(), b.url.clone(), c.url.clone()],
        &[&f.cluster.ca_pin],
    );
    let dir = tempfile::tempdir().unwrap();
    let report = join(&s, &TargetRoot::new(dir.path()), &quick()).unwrap();
    assert_eq!(report.endpoint, b.url);
    assert_eq!(report.rounds, 1);
    assert_eq!((b.hits(), c.hits()), (2, 0));
    assert_eq!(files(dir.path()).len(), 3);
    eprintln!(
        "join scenario one of three down ({down} refused): joined via {}",
        report.endpoint
    );
}

#[test]
fn all_endpoints_down_gives_up_in_bounded_time_and_writes_nothing() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    // A server with no signature for our token yet counts as not ready, like one down.
    let kubeconfig = cluster_kubeconfig(CONTROL_PLANE, &f.cluster.ca_pem);
    let unsigned = ApiServer::start(&f.cluster, configmap_json(&kubeconfig, &[]));
    let endpoints = [dead_endpoint(), dead_endpoint(), unsigned.url.clone()];
    let s = settings(&endpoints, &[&f.cluster.ca_pin]);
    let dir = tempfile::tempdir().unwrap();
    // The rounds are paced by a manual clock: how many fit in the total depends only on
    // the schedule (20, 40, then 80 ms: six pauses fit in 400 ms), not on how fast this
    // machine answers.
    let clock = ManualClock::default();
    let err = join_with_clock(&s, &TargetRoot::new(dir.path()), &quick(), &clock).unwrap_err();
    let JoinError::Unreachable { rounds, last, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*rounds, 7, "{err}");
    let ms: Vec<u128> = clock
        .pauses
        .borrow()
        .iter()
        .map(|p| p.as_millis())
        .collect();
    assert_eq!(ms, [20, 40, 80, 80, 80, 80]);
    assert_eq!(last.len(), 3);
    for (e, why) in &last[..2] {
        assert!(endpoints.contains(e));
        assert!(why.to_lowercase().contains("refused"), "{e}: {why}");
    }
    assert!(last[2].1.contains("no jws-kubeconfig-abcdef"), "{err}");
    assert_eq!(unsigned.hits() as u32, *rounds);
    assert!(!err.is_security());
    assert!(files(dir.path()).is_empty());
    eprintln!("join scenario all down: {err}");
}

#[test]
fn firstboot_records_the_join() {
    if !openssl_available() {
        return;
    }
    let f = pki();
    let server = ApiServer::start(&f.cluster, cluster_info(&f.cluster.ca_pem, SECRET));
    let dir = tempfile::tempdir().unwrap();
    let (root, host) = (dir.path().join("root"), dir.path().join("host"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&host).unwrap();
    let config = dir.path().join("user-data");
    std::fs::write(
        &config,
        format!(
            "#cloud-config\nharmony:\n  cluster:\n    api_endpoints: [\"{}\"]\n    \
             bootstrap_token: {TOKEN_ID}.{SECRET}\n    ca_cert_hashes: [\"{}\"]\n  role: worker\n",
            server.url, f.cluster.ca_pin
        ),
    )
    .unwrap();
    let report = harmony_agent::firstboot::run(&harmony_agent::firstboot::FirstbootOptions {
        root: root.clone(),
        host: harmony_agent::sources::HostPaths::new(&host),
        platform: Some("file".into()),
        config_file: Some(config),
        command_timeout: Duration::from_secs(10),
    })
    .unwrap();
    assert_eq!(
        report.status,
        harmony_agent::report::Status::Success,
        "{:?}",
        report.error
    );
    let stored: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/harmony/firstboot.json")).unwrap(),
    )
    .unwrap();
    let j = &stored["join"];
    assert_eq!(j["endpoint"], server.url.as_str());
    assert_eq!(j["ca_pin"], f.cluster.ca_pin.as_str());
    // The scratch root has neither systemd nor OpenRC, nor kubelet: the join still
    // verified cluster-info and wrote every file, and says kubelet is missing as a warning.
    assert_eq!(j["service_manager"], "none");
    assert!(
        j["kubelet"]
            .as_str()
            .unwrap()
            .starts_with("not started: kubelet not installed: none of /usr/bin/kubelet"),
        "{j}"
    );
    let warnings = stored["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w["path"] == "join"
            && w["message"]
                .as_str()
                .unwrap()
                .starts_with("kubelet not installed")),
        "{stored}"
    );
    let text = serde_json::to_string(&stored).unwrap();
    assert!(!text.contains(SECRET));
    assert!(root.join("etc/kubernetes/bootstrap-kubelet.conf").exists());
}

#[test]
fn plan_shows_the_join_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let user_data = format!(
        "#cloud-config\nharmony:\n  cluster:\n    api_endpoints: [\"https://10.0.0.10:6443\", \
         \"https://10.0.0.11:6443\"]\n    bootstrap_token: {TOKEN_ID}.{SECRET}\n    \
         ca_cert_hashes: [\"sha256:{}\"]\n  role: worker\n",
        "ab".repeat(32)
    );
    let cfg = harmony_agent::config_format::node_config(
        user_data.as_bytes(),
        None,
        &harmony_agent::fetch::NetFetcher::default(),
    )
    .unwrap();
    // A systemd root without kubelet: the join is planned, kubelet's absence warned.
    std::fs::create_dir_all(dir.path().join("usr/lib/systemd/system")).unwrap();
    std::fs::write(dir.path().join("usr/lib/systemd/systemd"), "").unwrap();
    let plan = harmony_agent::plan::plan(&cfg, &TargetRoot::new(dir.path())).unwrap();
    let line = plan.join.as_ref().expect("a planned join").to_string();
    assert!(
        line.ends_with("warn `kubelet not installed` (start nothing)"),
        "{line}"
    );
    // With kubelet and its unit (as Debian's and kubeadm's packages ship them).
    std::fs::create_dir_all(dir.path().join("usr/bin")).unwrap();
    std::fs::write(dir.path().join("usr/bin/kubelet"), "").unwrap();
    std::fs::write(
        dir.path().join("usr/lib/systemd/system/kubelet.service"),
        "",
    )
    .unwrap();
    let plan = harmony_agent::plan::plan(&cfg, &TargetRoot::new(dir.path())).unwrap();
    let line = plan.join.as_ref().expect("a planned join").to_string();
    assert!(line.starts_with("join      discover cluster-info from https://10.0.0.10:6443, https://10.0.0.11:6443 with token abcdef"), "{line}");
    assert!(
        line.contains("/etc/kubernetes/bootstrap-kubelet.conf"),
        "{line}"
    );
    assert!(line.ends_with("start kubelet (systemd)"), "{line}");
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains("\"join\""));
    assert!(!line.contains(SECRET) && !json.contains(SECRET));
    // Without node settings there is nothing to join.
    let cfg = harmony_agent::config_format::node_config(
        b"#cloud-config\nhostname: n1\n",
        None,
        &harmony_agent::fetch::NetFetcher::default(),
    )
    .unwrap();
    let plan = harmony_agent::plan::plan(&cfg, &TargetRoot::new(dir.path())).unwrap();
    assert!(plan.join.is_none());
}
