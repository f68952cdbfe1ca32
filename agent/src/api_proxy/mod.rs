//! `harmony-agent api-proxy`: a node-local TCP load balancer for the Kubernetes API.
//! kubelet and client-go use one server URL and never fail over, so kubelet talks to
//! 127.0.0.1:PORT and this proxy sends each new connection to an API server that is up
//! (health-checked; least connections, ties round robin). TLS passes through untouched.
//!
//! Why threads and blocking I/O rather than an event loop: tokio (and its dependencies)
//! cannot be built here — the build is offline and they are not in the crate cache — and
//! the load is small: one node's kubelet, kube-proxy and a few agents hold tens of
//! long-lived connections. A thread per direction with a small stack is simple to reason
//! about, needs no unsafe, and the benchmark (`benches/api_proxy.rs`) compares it with
//! haproxy on the same machine.

pub mod cli;
mod health;
mod pool;
mod relay;
mod workers;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use pool::{BackendStatus, Thresholds};

/// A relay thread copies through a 16 KiB heap buffer: a small stack is plenty.
const THREAD_STACK: usize = 128 * 1024;
/// How long a spare thread waits for the next connection before it exits.
const THREAD_IDLE: Duration = Duration::from_secs(30);
/// Longer than any quiet spell of a live client: client-go pings its HTTP/2 connections
/// every 30 s, and a watch without events gets bookmarks or ends within minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub backends: Vec<SocketAddr>,
    pub check_interval: Duration,
    /// For health checks and for connecting a client to a backend.
    pub connect_timeout: Duration,
    pub thresholds: Thresholds,
    /// Connections open at once; more are closed as they arrive (each costs two threads).
    pub max_connections: usize,
    /// A connection with no bytes either way for this long is closed; `None`: never.
    pub idle_timeout: Option<Duration>,
}

impl ProxyConfig {
    pub fn new(listen: SocketAddr, backends: Vec<SocketAddr>) -> ProxyConfig {
        ProxyConfig {
            listen,
            backends,
            check_interval: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            thresholds: Thresholds { fall: 3, rise: 2 },
            max_connections: 4096,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("api-proxy: at least one --backend is required")]
    NoBackends,
    #[error("api-proxy: fall and rise must be at least 1")]
    BadThresholds,
    #[error("api-proxy: listening on {addr}: {err}")]
    Listen {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("api-proxy: starting a thread: {0}")]
    Thread(std::io::Error),
}

/// A running proxy: it stops when [`ApiProxy::shutdown`] is called (or never, for the
/// service: [`ApiProxy::wait`]).
pub struct ApiProxy {
    local_addr: SocketAddr,
    pool: Arc<pool::Pool>,
    stop: Arc<health::Stop>,
    accept: JoinHandle<()>,
    checkers: Vec<JoinHandle<()>>,
}

impl ApiProxy {
    pub fn start(cfg: ProxyConfig) -> Result<ApiProxy, ProxyError> {
        if cfg.backends.is_empty() {
            return Err(ProxyError::NoBackends);
        }
        if cfg.thresholds.fall == 0 || cfg.thresholds.rise == 0 {
            return Err(ProxyError::BadThresholds);
        }
        let listener = TcpListener::bind(cfg.listen).map_err(|err| ProxyError::Listen {
            addr: cfg.listen,
            err,
        })?;
        let local_addr = listener.local_addr().map_err(|err| ProxyError::Listen {
            addr: cfg.listen,
            err,
        })?;
        let pool = Arc::new(pool::Pool::new(&cfg.backends, cfg.thresholds));
        let stop = Arc::new(health::Stop::default());
        let checkers =
            health::spawn_checkers(&pool, &stop, cfg.check_interval, cfg.connect_timeout)
                .map_err(ProxyError::Thread)?;
        let accept = {
            let (pool, stop) = (Arc::clone(&pool), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("api-proxy-accept".into())
                .spawn(move || accept_loop(listener, pool, stop, cfg))
                .map_err(ProxyError::Thread)?
        };
        Ok(ApiProxy {
            local_addr,
            pool,
            stop,
            accept,
            checkers,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn status(&self) -> Vec<BackendStatus> {
        self.pool.status()
    }

    /// Stop accepting and checking; connections being relayed run to their end.
    pub fn shutdown(self) {
        self.stop.stop();
        // Wake the accept loop, which is blocked in accept().
        let _ = TcpStream::connect(self.local_addr);
        let _ = self.accept.join();
        for c in self.checkers {
            let _ = c.join();
        }
    }

    /// Serve until the process ends.
    pub fn wait(self) {
        let _ = self.accept.join();
    }
}

fn accept_loop(
    listener: TcpListener,
    pool: Arc<pool::Pool>,
    stop: Arc<health::Stop>,
    cfg: ProxyConfig,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let workers = Arc::new(workers::Workers::new(THREAD_STACK, THREAD_IDLE));
    for client in listener.incoming() {
        if stop.is_stopped() {
            return;
        }
        let client = match client {
            Ok(c) => c,
            // Out of descriptors or a connection reset before accept: keep serving.
            Err(e) => {
                eprintln!("api-proxy: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= cfg.max_connections {
            // Dropping it closes it: the client retries, as it would on a refusal.
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let (pool, open_now, timeout) = (Arc::clone(&pool), Arc::clone(&open), cfg.connect_timeout);
        let idle = cfg.idle_timeout;
        let relay_workers = Arc::clone(&workers);
        let spawned = workers.run(move || {
            serve(client, &pool, timeout, idle, &relay_workers);
            open_now.fetch_sub(1, Ordering::Relaxed);
        });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::Relaxed);
            eprintln!("api-proxy: no thread for a connection: {e}");
        }
    }
}

/// Connect the client to the first backend that answers, in pick order; a backend that
/// refuses counts as a failed check, a local shortage (out of descriptors) does not and
/// ends this client's try. With none up (or none answering) the client's connection is
/// closed at once.
fn serve(
    client: TcpStream,
    pool: &pool::Pool,
    timeout: Duration,
    idle: Option<Duration>,
    workers: &workers::Workers,
) {
    for i in pool.candidates() {
        let addr = pool.backend(i).addr;
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(backend) => {
                let _count = pool.open(i);
                let _ = client.set_nodelay(true);
                let _ = backend.set_nodelay(true);
                let _ = relay::relay(client, backend, idle, workers);
                return;
            }
            Err(e) if health::is_local(&e) => {
                eprintln!("api-proxy: connecting to {addr}: {e} (local, not counted)");
                return;
            }
            Err(e) => health::report(pool, i, Some(format!("connect: {e}"))),
        }
    }
}
