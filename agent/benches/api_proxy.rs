//! `harmony-agent api-proxy` against haproxy (tcp mode, an equivalent config) in the same
//! run, both in front of the same three loopback backends, plus the backends directly
//! as the floor. The load: client threads each opening a connection, sending a 64-byte
//! request, reading the 64-byte answer to the backend's close, and closing — connection
//! setup is what an L4 balancer adds. Rounds alternate between targets so both see the
//! same machine load. Prints connections per second, p50 and p99 latency and the
//! ratios. No time is asserted. Needs haproxy on PATH (else it says SKIPPED).
//!
//!     cargo bench -p harmony-agent --bench api_proxy
//!     (HARMONY_BENCH_SECONDS=1.5 per round, HARMONY_BENCH_ROUNDS=2, HARMONY_BENCH_CLIENTS=4)

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGE: usize = 64;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A backend: read the request, answer, close.
fn backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut req = [0u8; MESSAGE];
                if s.read_exact(&mut req).is_ok() {
                    let _ = s.write_all(&[b'r'; MESSAGE]);
                }
                let _ = s.shutdown(Shutdown::Both);
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped, so a panic leaves no proxy behind.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{addr}: the proxy exited: {status}");
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn haproxy_cfg(port: u16, backends: &[SocketAddr]) -> String {
    let mut cfg = format!(
        "global
    maxconn 4000
defaults
    mode tcp
    timeout connect 1s
    timeout client 30s
    timeout server 30s
frontend api
    bind 127.0.0.1:{port}
    default_backend apiservers
backend apiservers
    balance leastconn
    default-server check inter 2s fall 3 rise 2
"
    );
    for (i, b) in backends.iter().enumerate() {
        cfg.push_str(&format!("    server s{i} {b}\n"));
    }
    cfg
}

/// One connection: connect, request, read to close. Its latency, or None on failure.
fn one(addr: SocketAddr) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_nodelay(true).ok()?;
    s.write_all(&[b'q'; MESSAGE]).ok()?;
    let mut answer = Vec::with_capacity(MESSAGE);
    s.read_to_end(&mut answer).ok()?;
    (answer.len() == MESSAGE).then(|| t.elapsed())
}

#[derive(Default)]
struct Sample {
    latencies: Vec<Duration>,
    failures: usize,
    elapsed: Duration,
}

fn load(addr: SocketAddr, clients: usize, seconds: f64) -> Sample {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = Sample::default();
                while Instant::now() < until {
                    match one(addr) {
                        Some(l) => s.latencies.push(l),
                        None => s.failures += 1,
                    }
                }
                s
            })
        })
        .collect();
    let mut total = Sample::default();
    for t in threads {
        let s = t.join().unwrap();
        total.latencies.extend(s.latencies);
        total.failures += s.failures;
    }
    total.elapsed = start.elapsed();
    total
}

struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

fn figures(samples: &[Sample]) -> Figures {
    let mut all: Vec<Duration> = samples
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    all.sort();
    let secs: f64 = samples.iter().map(|s| s.elapsed.as_secs_f64()).sum();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Figures {
        rate: all.len() as f64 / secs,
        p50: pct(0.50),
        p99: pct(0.99),
        failures: samples.iter().map(|s| s.failures).sum(),
    }
}

fn main() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        harmony_test_support::skip("tool haproxy not installed: api_proxy benchmark");
        return;
    }
    let seconds: f64 = env_or("HARMONY_BENCH_SECONDS", 1.5);
    let rounds: usize = env_or("HARMONY_BENCH_ROUNDS", 2);
    let clients: usize = env_or("HARMONY_BENCH_CLIENTS", 4);
    let backends: Vec<SocketAddr> = (0..3).map(|_| backend()).collect();

    let ours_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut ours = Command::new(env!("CARGO_BIN_EXE_harmony-agent"));
    ours.args(["api-proxy", "--listen", &ours_addr.to_string()]);
    for b in &backends {
        ours.args(["--backend", &b.to_string()]);
    }
    let mut ours = Reaped(ours.stderr(Stdio::null()).spawn().unwrap());
    wait_for_port(ours_addr, &mut ours.0);

    let dir = tempfile::tempdir().unwrap();
    let haproxy_port = free_port();
    let haproxy_addr: SocketAddr = format!("127.0.0.1:{haproxy_port}").parse().unwrap();
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, haproxy_cfg(haproxy_port, &backends)).unwrap();
    let mut haproxy = Reaped(
        Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(haproxy_addr, &mut haproxy.0);

    let targets = [
        ("backend directly", backends[0]),
        ("harmony api-proxy", ours_addr),
        ("haproxy (tcp)", haproxy_addr),
    ];
    // Warm up every path once (thread stacks, haproxy's first checks).
    for (_, addr) in targets {
        load(addr, clients, 0.2);
    }
    let mut samples: Vec<Vec<Sample>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (_, addr)) in targets.iter().enumerate() {
            samples[i].push(load(*addr, clients, seconds));
        }
    }
    drop((ours, haproxy));

    println!(
        "api_proxy: {clients} clients, {rounds} rounds of {seconds} s per target, \
         connect + {MESSAGE} B request + {MESSAGE} B answer + close"
    );
    println!(
        "{:<20} {:>12} {:>10} {:>10} {:>9}",
        "target", "conn/s", "p50 µs", "p99 µs", "failures"
    );
    let figs: Vec<Figures> = samples.iter().map(|s| figures(s)).collect();
    for ((name, _), f) in targets.iter().zip(&figs) {
        println!(
            "{name:<20} {:>12.0} {:>10} {:>10} {:>9}",
            f.rate,
            f.p50.as_micros(),
            f.p99.as_micros(),
            f.failures
        );
    }
    let (o, h) = (&figs[1], &figs[2]);
    use harmony_test_support::bench::figure;
    let reference = "haproxy (tcp mode)";
    figure("api-proxy connections", o.rate, reference, h.rate, "conn/s");
    let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
    figure(
        "api-proxy p50 latency",
        us(o.p50),
        reference,
        us(h.p50),
        "µs",
    );
    figure(
        "api-proxy p99 latency",
        us(o.p99),
        reference,
        us(h.p99),
        "µs",
    );
    println!(
        "api-proxy / haproxy: conn/s {:.2}x, p50 {:.2}x, p99 {:.2}x (conn/s above 1 and \
         latency below 1 favour api-proxy)",
        o.rate / h.rate,
        o.p50.as_secs_f64() / h.p50.as_secs_f64(),
        o.p99.as_secs_f64() / h.p99.as_secs_f64()
    );
}
