//! Remote contents (http, https, tftp, s3, gs, arn) come through this trait, so a network
//! fetcher can be added without touching the model. `data:` URLs never reach it.

/// Fetch the raw bytes behind a URL. The error is a plain reason; the caller names the
/// JSON path and URL.
pub trait Fetcher {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
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
