//! DNS for names the root's /etc/hosts does not have: the nameservers, search domains and
//! options (`ndots`, `timeout`, `attempts`) of a resolv.conf the caller names (the root
//! the agent configures, written by DHCP or by the config; tests give their own), asked
//! with hickory-resolver, a pure-Rust stub resolver, on a current-thread tokio runtime
//! made for the one lookup. A static agent cannot use glibc's resolver (no NSS).

use std::net::IpAddr;
use std::path::Path;

use hickory_resolver::config::ResolveHosts;
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::Resolver;

/// The addresses of `name` (IPv4 first, then IPv6, as glibc's default order).
pub fn lookup(name: &str, resolv_conf: &Path) -> Result<Vec<IpAddr>, String> {
    let fail = |why: String| format!("cannot resolve {name:?}: {why}");
    let text = std::fs::read(resolv_conf)
        .map_err(|e| fail(format!("reading {}: {e}", resolv_conf.display())))?;
    let (config, mut opts) = hickory_resolver::system_conf::parse_resolv_conf(&text)
        .map_err(|e| fail(format!("{}: {e}", resolv_conf.display())))?;
    // /etc/hosts is read before DNS by the caller, from the root, not the host's.
    opts.use_hosts_file = ResolveHosts::Never;
    let mut servers: Vec<String> = config
        .name_servers()
        .iter()
        .map(|s| s.socket_addr.to_string())
        .collect();
    servers.dedup();
    let asked = format!(
        "nameservers {} from {}",
        servers.join(", "),
        resolv_conf.display()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("starting the resolver: {e}")))?;
    let answer = runtime.block_on(async {
        Resolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build()
            .lookup_ip(name)
            .await
    });
    match answer {
        Ok(ips) => Ok(ips.iter().collect()),
        Err(e) if e.is_nx_domain() || e.is_no_records_found() => {
            Err(fail(format!("no such name (no A or AAAA record; {asked})")))
        }
        Err(e) => Err(fail(format!("{e} ({asked})"))),
    }
}
