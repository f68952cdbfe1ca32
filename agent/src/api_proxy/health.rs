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
                    let result = TcpStream::connect_timeout(&addr, timeout);
                    let why = result.as_ref().err().map(ToString::to_string);
                    drop(result);
                    report(&pool, i, why);
                    if stop.sleep(interval) {
                        return;
                    }
                })
        })
        .collect()
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
