//! The backends and what the proxy knows of them: up or down (from health checks and
//! failed connects), connections open now, connections served. Picking is least
//! connections, ties broken round robin, so short requests spread evenly and a slow
//! backend collects fewer new connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// When a backend goes out and comes back: after `fall` failures in a row it is down,
/// after `rise` successes in a row it is up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub fall: u32,
    pub rise: u32,
}

#[derive(Debug)]
pub struct Backend {
    pub addr: SocketAddr,
    up: AtomicBool,
    active: AtomicUsize,
    served: AtomicU64,
    /// Consecutive results against the current state: failures while up, successes
    /// while down.
    streak: Mutex<u32>,
}

/// A backend's state for logs, tests and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendStatus {
    pub addr: SocketAddr,
    pub up: bool,
    pub active: usize,
    pub served: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    WentDown,
    CameUp,
}

#[derive(Debug)]
pub struct Pool {
    backends: Vec<Backend>,
    thresholds: Thresholds,
    next: AtomicUsize,
}

impl Pool {
    /// Every backend starts up, as in haproxy: the first checks run at once.
    pub fn new(addrs: &[SocketAddr], thresholds: Thresholds) -> Pool {
        Pool {
            backends: addrs
                .iter()
                .map(|&addr| Backend {
                    addr,
                    up: AtomicBool::new(true),
                    active: AtomicUsize::new(0),
                    served: AtomicU64::new(0),
                    streak: Mutex::new(0),
                })
                .collect(),
            thresholds,
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn backend(&self, i: usize) -> &Backend {
        &self.backends[i]
    }

    /// The backends up now, in the order to try them: fewest open connections first,
    /// ties in round-robin order from a cursor that moves on every call.
    pub fn candidates(&self) -> Vec<usize> {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n.max(1);
        let mut up: Vec<usize> = (0..n)
            .filter(|&i| self.backends[i].up.load(Ordering::Acquire))
            .collect();
        up.sort_by_key(|&i| {
            (
                self.backends[i].active.load(Ordering::Relaxed),
                (i + n - start) % n,
            )
        });
        up
    }

    /// Record one check (or connect) result; says when the backend changed state.
    pub fn record(&self, i: usize, ok: bool) -> Option<Transition> {
        let b = &self.backends[i];
        let mut streak = b.streak.lock().unwrap_or_else(|e| e.into_inner());
        let up = b.up.load(Ordering::Acquire);
        if ok == up {
            *streak = 0;
            return None;
        }
        *streak += 1;
        let needed = if up {
            self.thresholds.fall
        } else {
            self.thresholds.rise
        };
        if *streak < needed {
            return None;
        }
        *streak = 0;
        b.up.store(!up, Ordering::Release);
        Some(if up {
            Transition::WentDown
        } else {
            Transition::CameUp
        })
    }

    /// Count a connection to backend `i` as open until the guard drops.
    pub fn open(&self, i: usize) -> ConnectionCount<'_> {
        let b = &self.backends[i];
        b.active.fetch_add(1, Ordering::Relaxed);
        b.served.fetch_add(1, Ordering::Relaxed);
        ConnectionCount(b)
    }

    pub fn status(&self) -> Vec<BackendStatus> {
        self.backends
            .iter()
            .map(|b| BackendStatus {
                addr: b.addr,
                up: b.up.load(Ordering::Acquire),
                active: b.active.load(Ordering::Relaxed),
                served: b.served.load(Ordering::Relaxed),
            })
            .collect()
    }
}

pub struct ConnectionCount<'a>(&'a Backend);

impl Drop for ConnectionCount<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        let addrs: Vec<SocketAddr> = (0..n)
            .map(|i| SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16)))
            .collect();
        Pool::new(&addrs, Thresholds { fall: 3, rise: 2 })
    }

    #[test]
    fn down_after_fall_failures_up_after_rise_successes() {
        let p = pool(1);
        assert_eq!(p.record(0, false), None);
        assert_eq!(p.record(0, false), None);
        // A success in between starts the count again.
        assert_eq!(p.record(0, true), None);
        assert_eq!(p.record(0, false), None);
        assert_eq!(p.record(0, false), None);
        assert_eq!(p.record(0, false), Some(Transition::WentDown));
        assert!(p.candidates().is_empty());
        assert_eq!(p.record(0, false), None);
        assert_eq!(p.record(0, true), None);
        assert_eq!(p.record(0, false), None);
        assert_eq!(p.record(0, true), None);
        assert_eq!(p.record(0, true), Some(Transition::CameUp));
        assert_eq!(p.candidates(), [0]);
    }

    #[test]
    fn idle_backends_take_turns() {
        let p = pool(3);
        let firsts: Vec<usize> = (0..6).map(|_| p.candidates()[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn the_least_busy_backend_goes_first_and_down_ones_are_skipped() {
        let p = pool(3);
        let _a = p.open(0);
        let _b = p.open(0);
        let c = p.open(1);
        for _ in 0..3 {
            assert_eq!(p.candidates(), [2, 1, 0]);
        }
        drop(c);
        for _ in 0..3 {
            p.record(2, false);
        }
        let order = p.candidates();
        assert_eq!(order, [1, 0]);
        let s = p.status();
        assert_eq!((s[0].active, s[0].served), (2, 2));
        assert_eq!((s[1].active, s[1].served), (0, 1));
        assert!(!s[2].up);
    }
}
