//! The api-proxy and the descriptor limit: running out of descriptors is the proxy's own
//! shortage, never counted against a backend (a local process holding idle connections
//! must not mark every API server down), and the service raises its soft limit to the
//! hard one. Apart from the other proxy tests: it lowers this process's descriptor limit.

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use harmony_agent::api_proxy::{ApiProxy, ProxyConfig, Thresholds};
use nix::sys::resource::{getrlimit, setrlimit, Resource};

const HANG_GUARD: Duration = Duration::from_secs(20);

#[test]
fn out_of_descriptors_is_not_counted_against_the_backend() {
    // Never accepts: the kernel completes handshakes into the backlog.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = ApiProxy::start(ProxyConfig {
        check_interval: Duration::from_secs(3600),
        thresholds: Thresholds { fall: 1, rise: 1 },
        ..ProxyConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            vec![backend.local_addr().unwrap()],
        )
    })
    .unwrap();
    // The first health check has connected; the next is an hour away.
    drop(backend.accept().unwrap());

    // Fill every free descriptor below the highest, then allow exactly two more: the
    // client's socket and the one the proxy accepts. Its connect to the backend fails
    // with EMFILE.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let mut fillers = Vec::new();
    loop {
        let f = std::fs::File::open("/dev/null").unwrap();
        let fd = f.as_raw_fd() as u64;
        fillers.push(f);
        if fd >= highest {
            setrlimit(Resource::RLIMIT_NOFILE, fd + 3, hard).unwrap();
            break;
        }
    }
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let closed = client.read(&mut [0u8; 16]);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    drop(fillers);
    assert_eq!(closed.unwrap(), 0, "the client's connection is closed");
    let status = proxy.status();
    assert!(status[0].up, "{status:?}");
    proxy.shutdown();
}

#[test]
fn the_service_raises_its_soft_descriptor_limit_to_the_hard_one() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut child = Command::new("sh")
        .args([
            "-c",
            r#"ulimit -Sn 256 && exec "$0" api-proxy --listen 127.0.0.1:0 --backend "$1""#,
        ])
        .arg(env!("CARGO_BIN_EXE_harmony-agent"))
        .arg(backend.local_addr().unwrap().to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("api-proxy: listening on"), "{line}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    // "Max open files  SOFT  HARD  files"
    assert_eq!(open_files[3], open_files[4], "{limits}");
    assert_ne!(open_files[3], "256", "{limits}");
}
