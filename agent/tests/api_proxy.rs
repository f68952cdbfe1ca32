//! The node-local API proxy against three real TCP backends on loopback: traffic spreads,
//! a backend killed mid-stream breaks only its own connections and gets no new ones, it
//! gets traffic again once it is back, and with every backend down a client's connection
//! is closed at once. The backends answer each line with their name, so the client sees
//! who served it; they do not care what the bytes are (TLS passes the same way).

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use harmony_agent::api_proxy::{ApiProxy, ProxyConfig, Thresholds};

/// Only against hangs: no test waits this long when the proxy works.
const HANG_GUARD: Duration = Duration::from_secs(20);

struct LineBackend {
    name: &'static str,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl LineBackend {
    fn start(name: &'static str) -> LineBackend {
        let mut b = LineBackend {
            name,
            addr: "127.0.0.1:0".parse().unwrap(),
            stop: Arc::default(),
            conns: Arc::default(),
            acceptor: None,
        };
        b.listen();
        b
    }

    fn listen(&mut self) {
        let listener = TcpListener::bind(self.addr).unwrap();
        self.addr = listener.local_addr().unwrap();
        self.stop = Arc::default();
        let (stop, conns, name) = (self.stop.clone(), self.conns.clone(), self.name);
        self.acceptor = Some(std::thread::spawn(move || {
            for s in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(s) = s else { continue };
                conns.lock().unwrap().push(s.try_clone().unwrap());
                std::thread::spawn(move || answer_lines(name, s));
            }
        }));
    }

    /// Stop listening and cut every connection, as a crashed API server would.
    fn kill(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        self.acceptor.take().unwrap().join().unwrap();
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn restart(&mut self) {
        self.listen();
    }
}

fn answer_lines(name: &str, s: TcpStream) {
    let mut w = s.try_clone().unwrap();
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        if writeln!(w, "{name} {line}").is_err() {
            return;
        }
    }
}

/// A client connection through the proxy.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(proxy: SocketAddr) -> Client {
        let w = TcpStream::connect(proxy).unwrap();
        w.set_read_timeout(Some(HANG_GUARD)).unwrap();
        Client {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    /// Send a line; the name of the backend that answered, or why there was no answer.
    fn ask(&mut self, line: &str) -> Result<String, String> {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut answer = String::new();
        match self.r.read_line(&mut answer) {
            Ok(0) => Err("closed".into()),
            Ok(_) => {
                let (name, echoed) = answer.trim_end().split_once(' ').unwrap();
                assert_eq!(echoed, line, "the backend echoes what was sent");
                Ok(name.to_string())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("no answer and no close within {HANG_GUARD:?}: the proxy hangs")
            }
            Err(e) => Err(format!("read: {e}")),
        }
    }
}

/// One short request on a new connection: who served it.
fn one_request(proxy: SocketAddr, n: usize) -> Result<String, String> {
    Client::connect(proxy).ask(&format!("request-{n}"))
}

fn served_by(proxy: SocketAddr, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| one_request(proxy, n).expect("a new connection is served"))
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start_proxy(backends: &[&LineBackend]) -> ApiProxy {
    ApiProxy::start(ProxyConfig {
        check_interval: Duration::from_millis(100),
        thresholds: Thresholds { fall: 2, rise: 2 },
        ..ProxyConfig::new(
            "127.0.0.1:0".parse().unwrap(),
            backends.iter().map(|b| b.addr).collect(),
        )
    })
    .unwrap()
}

#[test]
fn spreads_fails_over_recovers_and_closes_when_all_are_down() {
    let mut a = LineBackend::start("a");
    let mut b = LineBackend::start("b");
    let mut c = LineBackend::start("c");
    let proxy = start_proxy(&[&a, &b, &c]);
    let addr = proxy.local_addr();

    // Short connections spread over all three.
    let names = served_by(addr, 30);
    for n in ["a", "b", "c"] {
        let count = names.iter().filter(|x| *x == n).count();
        assert!(count >= 3, "backend {n} served {count} of 30: {names:?}");
    }

    // Six long-lived connections: least connections gives each backend two.
    let mut held: Vec<(Client, String)> = (0..6)
        .map(|i| {
            let mut cl = Client::connect(addr);
            let name = cl.ask(&format!("hold-{i}")).unwrap();
            (cl, name)
        })
        .collect();
    for n in ["a", "b", "c"] {
        assert_eq!(held.iter().filter(|(_, x)| x == n).count(), 2, "{n}");
    }

    // b dies mid-stream: its connections end, the others carry on.
    b.kill();
    for (i, (cl, name)) in held.iter_mut().enumerate() {
        let answer = cl.ask(&format!("after-kill-{i}"));
        if name == "b" {
            assert!(answer.is_err(), "a connection to the dead backend answered");
        } else {
            assert_eq!(answer.as_deref(), Ok(name.as_str()), "connection {i}");
        }
    }
    // New connections all succeed, on a and c only — also before the checks notice.
    let names = served_by(addr, 30);
    assert!(!names.iter().any(|n| n == "b"), "{names:?}");
    assert!(names.iter().any(|n| n == "a") && names.iter().any(|n| n == "c"));
    wait_until("b marked down", || !proxy.status()[1].up);

    // b comes back: the checks bring it up, and it gets new connections again.
    b.restart();
    wait_until("b marked up", || proxy.status()[1].up);
    let names = served_by(addr, 30);
    assert!(
        names.iter().any(|n| n == "b"),
        "b got no traffic: {names:?}"
    );

    // Everything down: a client is closed promptly rather than left hanging.
    drop(held);
    for x in [&mut a, &mut b, &mut c] {
        x.kill();
    }
    for n in 0..3 {
        assert!(one_request(addr, n).is_err());
    }
    wait_until("all marked down", || proxy.status().iter().all(|s| !s.up));
    let err = one_request(addr, 99).unwrap_err();
    assert!(err == "closed" || err.contains("reset"), "{err}");
    proxy.shutdown();
}

#[test]
fn the_binary_serves_from_its_command_line() {
    use std::io::Read;
    use std::process::{Command, Stdio};

    let a = LineBackend::start("a");
    let b = LineBackend::start("b");
    // A free port: bind, note it, let go.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_harmony-agent"))
        .args(["api-proxy", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--backend", &a.addr.to_string()])
        .args(["--backend", &b.addr.to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.starts_with(&format!("api-proxy: listening on 127.0.0.1:{port} for ")),
        "{line}"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let names = served_by(addr, 4);
    assert!(
        names.contains(&"a".to_string()) && names.contains(&"b".to_string()),
        "{names:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);

    // Without a backend it refuses to start, and says why.
    let out = Command::new(env!("CARGO_BIN_EXE_harmony-agent"))
        .args(["api-proxy", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend"));
}

/// A backend that answers each connection with `count` bytes, one every `gap`, then
/// closes: a watch that streams one way while the client stays silent.
fn trickle_backend(count: usize, gap: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                for _ in 0..count {
                    std::thread::sleep(gap);
                    if s.write_all(b"x").is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn idle_connections_are_closed_one_way_streams_are_not() {
    use std::io::Read;
    let quiet = LineBackend::start("quiet");
    let idle = Duration::from_millis(300);
    let start = |backend: SocketAddr| {
        ApiProxy::start(ProxyConfig {
            idle_timeout: Some(idle),
            ..ProxyConfig::new("127.0.0.1:0".parse().unwrap(), vec![backend])
        })
        .unwrap()
    };
    // Nothing either way: the proxy closes the connection.
    let proxy = start(quiet.addr);
    let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(c.read(&mut buf).unwrap(), 0, "an idle connection is closed");
    proxy.shutdown();

    // Bytes one way only, for longer than the idle timeout: all of them arrive.
    let count = 8;
    let proxy = start(trickle_backend(count, idle / 3));
    let mut c = TcpStream::connect(proxy.local_addr()).unwrap();
    c.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, vec![b'x'; count]);
    proxy.shutdown();
}
