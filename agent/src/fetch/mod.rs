//! Remote sources (`http`, `https`, `tftp`) for config contents and merged configs, behind
//! the config model's [`ignition::Fetcher`] trait. Every fetch is retried with exponential
//! backoff a bounded number of times (Ignition retries until its total timeout; a node
//! that can never get its config should fail visibly, so we stop).
//!
//! Names are resolved without NSS (a static glibc binary cannot load it): IP literals,
//! then the root's `/etc/hosts`, then DNS as the root's `/etc/resolv.conf` says
//! ([`names`]).

mod dns;
mod hosts;
mod http;
pub mod names;
pub mod proxy;
pub mod tftp;
mod trust;

use std::time::Duration;

pub use http::HttpOptions;
pub(crate) use http::Resolver;

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `n` (1-based, after the first): first, 2×, 4×, … capped.
    pub fn delay(&self, n: u32) -> Duration {
        crate::backoff::doubling(self.first_delay, self.max_delay, n)
    }
}

/// Whether a failed attempt is worth another.
#[derive(Debug)]
pub(crate) enum Attempt {
    Retry(String),
    Fatal(String),
}

#[derive(Debug, Clone, Default)]
pub struct NetFetcher {
    pub retry: RetryPolicy,
    pub http: HttpOptions,
    pub tftp: tftp::TftpOptions,
    /// The `/etc/hosts` to read names from (the root being configured).
    pub hosts_file: Option<std::path::PathBuf>,
    /// The `/etc/resolv.conf` whose nameservers are asked for names not in `hosts_file`;
    /// `None`: no DNS (tests never read the host's).
    pub resolv_conf: Option<std::path::PathBuf>,
}

impl NetFetcher {
    /// A fetcher resolving names as the root at `root` does (its /etc/hosts, then DNS per
    /// its /etc/resolv.conf), retrying as [`RetryPolicy::default`].
    pub fn for_root(root: &std::path::Path) -> NetFetcher {
        NetFetcher {
            hosts_file: Some(root.join("etc/hosts")),
            resolv_conf: Some(root.join("etc/resolv.conf")),
            ..NetFetcher::default()
        }
    }
}

impl NetFetcher {
    fn once(&self, url: &str, headers: &[(String, String)]) -> Result<Vec<u8>, Attempt> {
        let scheme = url.split_once("://").map_or("", |(s, _)| s);
        match scheme {
            "http" | "https" => http::get(self, url, headers),
            "tftp" => {
                let (host, port, path) = split_url(url, 69).map_err(Attempt::Fatal)?;
                let addrs = names::resolve(
                    &host,
                    port,
                    self.hosts_file.as_deref(),
                    self.resolv_conf.as_deref(),
                )
                .map_err(Attempt::Fatal)?;
                let addr = addrs
                    .first()
                    .ok_or_else(|| Attempt::Fatal(format!("{host:?} has no address")))?;
                tftp::get(*addr, &path, &self.tftp).map_err(Attempt::Retry)
            }
            other => Err(Attempt::Fatal(format!(
                "{other:?} sources are not supported (http, https, tftp and data only)"
            ))),
        }
    }

    pub fn fetch_with_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Vec<u8>, String> {
        let mut n = 1;
        loop {
            match self.once(url, headers) {
                Ok(b) => return Ok(b),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(e)) if n >= self.retry.attempts => {
                    return Err(format!("{e} (gave up after {n} attempts)"))
                }
                Err(Attempt::Retry(_)) => {
                    std::thread::sleep(self.retry.delay(n));
                    n += 1;
                }
            }
        }
    }
}

impl ignition::Fetcher for NetFetcher {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.fetch_with_headers(url, &[])
    }

    fn fetch_with_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Vec<u8>, String> {
        NetFetcher::fetch_with_headers(self, url, headers)
    }

    /// The http body and the tftp transfer stop at `max_bytes + 1`.
    fn fetch_at_most(
        &self,
        url: &str,
        headers: &[(String, String)],
        max_bytes: u64,
    ) -> Result<Vec<u8>, String> {
        let mut capped = self.clone();
        capped.http.max_size = capped.http.max_size.min(max_bytes);
        capped.tftp.max_size = capped
            .tftp
            .max_size
            .min(usize::try_from(max_bytes).unwrap_or(usize::MAX));
        capped.fetch_with_headers(url, headers)
    }

    fn with_settings(
        &self,
        settings: &ignition::fetch_settings::FetchSettings,
    ) -> Result<Option<Box<dyn ignition::Fetcher>>, ignition::ConfigError> {
        Ok(Some(Box::new(NetFetcher {
            http: self.http.with_settings(settings)?,
            ..self.clone()
        })))
    }
}

/// `scheme://host[:port]/path` → host, port, `/path` (kept whole, as Ignition sends it).
fn split_url(url: &str, default_port: u16) -> Result<(String, u16, String), String> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| format!("{url:?} is not scheme://host/path"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url:?}: unclosed [ in the host"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p
            .parse()
            .map_err(|_| format!("{url:?}: port {p:?} is not a number"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok((host, port, path.to_string()))
}

#[cfg(test)]
mod tests;
