//! Active health checks: a TCP connect to each backend every interval, on a thread per
//! backend so one that times out does not delay the others. A connect is what can be
//! checked without speaking TLS to the API server; the API server's own readiness is
//! haproxy's job on the VIP path (`GET /healthz`), and a dead or unreachable host —
//! what this proxy exists for — fails the connect.

use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::pool::{Pool, Transition};

/// A stop flag the checker threads sleep on, so stopping does not wait an interval.
#[derive(Debug, Default)]
pub struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    pub fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleep for `d`; true when stopped meanwhile.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

pub fn spawn_checkers(
    pool: &Arc<Pool>,
    stop: &Arc<Stop>,
    interval: Duration,
    timeout: Duration,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    (0..pool.len())
        .map(|i| {
            let (pool, stop) = (Arc::clone(pool), Arc::clone(stop));
            std::thread::Builder::new()
                .name(format!("api-proxy-check-{i}"))
                .stack_size(64 * 1024)
                .spawn(move || loop {
                    let addr = pool.backend(i).addr;
                    match TcpStream::connect_timeout(&addr, timeout) {
                        Ok(_) => report(&pool, i, None),
                        // The proxy's own shortage says nothing about the backend.
                        Err(e) if is_local(&e) => {
                            eprintln!("api-proxy: checking {addr}: {e} (local, not counted)")
                        }
                        Err(e) => report(&pool, i, Some(e.to_string())),
                    }
                    if stop.sleep(interval) {
                        return;
                    }
                })
        })
        .collect()
}

/// A failure of this host, not of the backend: out of descriptors (EMFILE, ENFILE), of
/// buffers or of memory. A local process that opens idle connections until the proxy
/// runs out must not mark every backend down.
pub fn is_local(e: &std::io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|code| {
        [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM]
            .iter()
            .any(|local| *local as i32 == code)
    })
}

/// Record a check or connect result (`why` is the failure) and log a change of state.
pub fn report(pool: &Pool, i: usize, why: Option<String>) {
    let addr = pool.backend(i).addr;
    match (pool.record(i, why.is_none()), why) {
        (Some(Transition::WentDown), Some(why)) => {
            eprintln!("api-proxy: backend {addr} is down: {why}")
        }
        (Some(Transition::CameUp), _) => eprintln!("api-proxy: backend {addr} is up"),
        _ => {}
    }
}
