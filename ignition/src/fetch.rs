//! Remote contents (http, https, tftp, s3, gs, arn) come through this trait, so a network
//! fetcher can be added without touching the model. `data:` URLs never reach it.

use crate::error::ConfigError;
use crate::fetch_settings::FetchSettings;

/// Fetch the raw bytes behind a URL. The error is a plain reason; the caller names the
/// JSON path and URL.
pub trait Fetcher {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;

    /// Fetch with a resource's `httpHeaders` (name, value) in order. A fetcher that cannot
    /// send headers refuses rather than fetching without them: a header is often the
    /// credential, and the bytes without it would be something else.
    fn fetch_with_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Vec<u8>, String> {
        if headers.is_empty() {
            self.fetch(url)
        } else {
            Err("this fetcher cannot send HTTP headers".to_string())
        }
    }

    /// Fetch at most `max_bytes`: a longer body is refused with the cap in the reason.
    /// This default checks once the body is whole; a network fetcher overrides it to stop
    /// reading at `max_bytes + 1`, so a config document is never held past its cap.
    fn fetch_at_most(
        &self,
        url: &str,
        headers: &[(String, String)],
        max_bytes: u64,
    ) -> Result<Vec<u8>, String> {
        let body = self.fetch_with_headers(url, headers)?;
        if body.len() as u64 > max_bytes {
            return Err(too_large(max_bytes));
        }
        Ok(body)
    }

    /// A fetcher that fetches as `settings` say (a config's timeouts, CAs and proxy), or
    /// `None` to go on with this one. The default keeps this one: a fetcher without a
    /// network has nothing to apply them to. An error names the setting that cannot be
    /// used (a CA that is no certificate, a proxy URL the fetcher cannot use).
    fn with_settings(
        &self,
        settings: &FetchSettings,
    ) -> Result<Option<Box<dyn Fetcher>>, ConfigError> {
        let _ = settings;
        Ok(None)
    }
}

/// The reason a body past `max_bytes` is refused, the same from every fetcher.
pub fn too_large(max_bytes: u64) -> String {
    format!("larger than {max_bytes} bytes")
}

/// The fetcher for a node with no network stack in the agent yet: every remote source is
/// refused with a clear reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRemoteFetcher;

impl Fetcher for NoRemoteFetcher {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let scheme = url.split_once(':').map_or(url, |(s, _)| s);
        Err(format!("{scheme} sources are not supported yet"))
    }
}
