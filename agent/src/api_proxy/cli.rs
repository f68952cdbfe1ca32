//! `harmony-agent api-proxy --listen 127.0.0.1:PORT --backend IP:PORT …`: what the
//! service unit runs. Serves until killed.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ApiProxy, ProxyConfig, Thresholds};

#[derive(Debug, clap::Args)]
pub struct ApiProxyArgs {
    /// Where kubelet connects, e.g. 127.0.0.1:6444.
    #[arg(long)]
    pub listen: SocketAddr,
    /// An API server, IP:PORT; give one per server.
    #[arg(long = "backend", value_name = "IP:PORT", required = true)]
    pub backends: Vec<SocketAddr>,
    /// Time between two health checks of a backend.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub check_interval_ms: u64,
    /// Connect timeout, for checks and for clients' connections.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub connect_timeout_ms: u64,
    /// Failed checks in a row that take a backend out.
    #[arg(long, default_value_t = 3)]
    pub fall: u32,
    /// Successful checks in a row that bring it back.
    #[arg(long, default_value_t = 2)]
    pub rise: u32,
    /// Connections open at once; more are closed as they arrive.
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Close a connection with no bytes either way for this long; 0: never.
    #[arg(long, value_name = "MS", default_value_t = super::DEFAULT_IDLE_TIMEOUT.as_millis() as u64)]
    pub idle_timeout_ms: u64,
}

pub fn run(args: ApiProxyArgs) -> anyhow::Result<i32> {
    raise_descriptor_limit()?;
    let cfg = ProxyConfig {
        check_interval: Duration::from_millis(args.check_interval_ms),
        connect_timeout: Duration::from_millis(args.connect_timeout_ms),
        thresholds: Thresholds {
            fall: args.fall,
            rise: args.rise,
        },
        max_connections: args.max_connections,
        idle_timeout: (args.idle_timeout_ms > 0)
            .then(|| Duration::from_millis(args.idle_timeout_ms)),
        ..ProxyConfig::new(args.listen, args.backends)
    };
    let backends: Vec<String> = cfg.backends.iter().map(ToString::to_string).collect();
    let proxy = ApiProxy::start(cfg)?;
    eprintln!(
        "api-proxy: listening on {} for {}",
        proxy.local_addr(),
        backends.join(", ")
    );
    proxy.wait();
    Ok(1)
}

/// Each connection holds four descriptors (two sockets, each cloned for the second
/// thread): the default soft limit (1024) would cap the proxy near 250 connections while
/// the hard limit allows far more. Raise the soft limit to the hard one.
fn raise_descriptor_limit() -> anyhow::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(())
}
