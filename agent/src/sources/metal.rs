//! Bare metal (PXE, Vaquero): the config's URL is on the kernel command line,
//! `ignition.config.url=http://…` (https and tftp too, as Ignition takes them), fetched
//! through the agent's fetcher. The network may come up after the agent starts, and a
//! provisioning server may be busy, so every failure is retried with exponential backoff
//! until a bounded total time; the error then names the URL, the attempts and the last
//! failure.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigSource, FetchedConfig, HostPaths, KernelCmdline, SourceError};
use crate::backoff::{doubling, Clock, WallClock};
use crate::fetch::{NetFetcher, RetryPolicy};

pub const URL_PARAM: &str = "ignition.config.url";
const SCHEMES: [&str; 3] = ["http", "https", "tftp"];

/// Backoff: `first`, doubling up to `max_delay`, for at most `total` from the first try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub first: Duration,
    pub max_delay: Duration,
    pub total: Duration,
}

impl Default for Retry {
    /// Two minutes covers a DHCP lease and a server's restart; not an endless boot.
    fn default() -> Self {
        Retry {
            first: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            total: Duration::from_secs(120),
        }
    }
}

/// The agent's network fetcher with one attempt per call (the caller's [`Retry`]
/// governs), names from the host's /etc/hosts, then DNS per its /etc/resolv.conf.
pub(super) fn single_try_fetcher(host: &HostPaths) -> NetFetcher {
    NetFetcher {
        retry: RetryPolicy {
            attempts: 1,
            ..RetryPolicy::default()
        },
        hosts_file: Some(host.join("/etc/hosts")),
        resolv_conf: Some(host.join("/etc/resolv.conf")),
        ..NetFetcher::default()
    }
}

pub struct MetalSource {
    cmdline_path: PathBuf,
    fetcher: Box<dyn ignition::Fetcher>,
    retry: Retry,
}

impl MetalSource {
    /// The agent's network fetcher, one attempt per try (this source's backoff governs),
    /// names from the host's /etc/hosts.
    pub fn for_host(host: &HostPaths) -> MetalSource {
        MetalSource::new(host, Box::new(single_try_fetcher(host)), Retry::default())
    }

    pub fn new(host: &HostPaths, fetcher: Box<dyn ignition::Fetcher>, retry: Retry) -> Self {
        MetalSource {
            cmdline_path: host.join("/proc/cmdline"),
            fetcher,
            retry,
        }
    }

    fn url(&self) -> Result<Option<String>, SourceError> {
        let text = match std::fs::read_to_string(&self.cmdline_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(SourceError::Io {
                    path: self.cmdline_path.clone(),
                    err,
                })
            }
        };
        Ok(KernelCmdline::parse(&text)
            .value(URL_PARAM)
            .filter(|u| !u.is_empty())
            .map(str::to_string))
    }
}

impl ConfigSource for MetalSource {
    /// No URL on the command line: no config, as for Ignition on metal.
    fn fetch(&self) -> Result<Option<FetchedConfig>, SourceError> {
        let Some(url) = self.url()? else {
            return Ok(None);
        };
        let bytes = fetch_with_retry(
            self.fetcher.as_ref(),
            &format!("{URL_PARAM}={url}"),
            &url,
            self.retry,
            &WallClock::start(),
        )?;
        Ok(Some(FetchedConfig {
            source: format!("url:{url}"),
            bytes,
            meta_data: None,
            ..Default::default()
        }))
    }
}

/// Fetch `url` (http, https or tftp), retrying every failure on `retry`'s schedule; errors name `location`
/// (where the URL came from: the kernel command line, a guestinfo key).
pub(super) fn fetch_with_retry(
    fetcher: &dyn ignition::Fetcher,
    location: &str,
    url: &str,
    retry: Retry,
    clock: &dyn Clock,
) -> Result<Vec<u8>, SourceError> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or_default();
    if !SCHEMES.contains(&scheme) {
        return Err(SourceError::Unreadable {
            location: location.to_string(),
            problem: format!("unsupported scheme (expected {})", SCHEMES.join(", ")),
        });
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match fetcher.fetch_at_most(url, &[], ignition::limits::MAX_DOCUMENT_BYTES) {
            Ok(bytes) => return Ok(bytes),
            Err(e) => e,
        };
        let pause = doubling(retry.first, retry.max_delay, attempts);
        if clock.elapsed() + pause > retry.total {
            return Err(SourceError::Unreadable {
                location: location.to_string(),
                problem: format!(
                    "gave up after {attempts} attempts in {:.1} s: {err}",
                    clock.elapsed().as_secs_f64()
                ),
            });
        }
        clock.sleep(pause);
    }
}

#[cfg(test)]
mod tests;
