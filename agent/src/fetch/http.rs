//! http and https through ureq (rustls with compiled-in web PKI roots, so a static agent
//! needs no CA bundle on the node), with Ignition's two timeouts, its proxy settings and
//! per-source headers.

use std::io::Read;
use std::time::Duration;

use super::{hosts, Attempt, NetFetcher};

/// `ignition.timeouts` and `ignition.proxy`.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `httpResponseHeaders`: connect and wait for the headers at most this long
    /// (Ignition's default 10 s).
    pub response_headers: Duration,
    /// `httpTotal`: the whole request; `None` is no limit (Ignition's 0).
    pub total: Option<Duration>,
    pub proxy: Proxy,
    pub max_size: u64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            response_headers: Duration::from_secs(10),
            total: None,
            proxy: Proxy::default(),
            // Nothing larger is accepted once fetched (a file's cap; documents' is lower).
            max_size: ignition::limits::MAX_FILE_BYTES,
        }
    }
}

/// `ignition.proxy`: `httpProxy`, `httpsProxy`, `noProxy` (host names, `.suffix`es, or
/// `*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxy {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    pub no_proxy: Vec<String>,
}

impl Proxy {
    /// From the document's `ignition.proxy` object; the error names the field.
    pub fn from_json(v: &serde_json::Value) -> Result<Proxy, String> {
        let s = |k: &str| -> Result<Option<String>, String> {
            match v.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("ignition.proxy.{k}: expected a string")),
            }
        };
        let no_proxy = match v.get("noProxy") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| format!("ignition.proxy.noProxy[{i}]: expected a string"))
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("ignition.proxy.noProxy: expected a list".to_string()),
        };
        Ok(Proxy {
            http_proxy: s("httpProxy")?,
            https_proxy: s("httpsProxy")?,
            no_proxy,
        })
    }

    /// The proxy for a URL, honouring noProxy.
    pub fn for_url(&self, scheme: &str, host: &str) -> Option<&str> {
        let bypass = self.no_proxy.iter().any(|n| {
            n == "*"
                || n.eq_ignore_ascii_case(host)
                || (n.starts_with('.')
                    && host.to_ascii_lowercase().ends_with(&n.to_ascii_lowercase()))
        });
        if bypass {
            return None;
        }
        match scheme {
            "https" => self.https_proxy.as_deref(),
            _ => self.http_proxy.as_deref(),
        }
    }
}

/// ureq's resolver hook: our NSS-free lookup (names from the given /etc/hosts).
pub(crate) struct Resolver(pub(crate) Option<std::path::PathBuf>);

impl ureq::Resolver for Resolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let (host, port) = netloc
            .rsplit_once(':')
            .ok_or_else(|| std::io::Error::other(format!("{netloc:?} has no port")))?;
        let port = port
            .parse()
            .map_err(|_| std::io::Error::other(format!("bad port in {netloc:?}")))?;
        hosts::resolve(host, port, self.0.as_deref())
            .map(|a| vec![a])
            .map_err(std::io::Error::other)
    }
}

pub(super) fn get(
    f: &NetFetcher,
    url: &str,
    headers: &[(String, String)],
) -> Result<Vec<u8>, Attempt> {
    let (host, _, _) = super::split_url(url, 80).map_err(Attempt::Fatal)?;
    let scheme = url.split_once("://").map_or("http", |(s, _)| s);
    let o = &f.http;
    let mut b = ureq::AgentBuilder::new()
        .resolver(Resolver(f.hosts_file.clone()))
        .timeout_connect(o.response_headers)
        .timeout_read(o.response_headers);
    if let Some(t) = o.total {
        b = b.timeout(t);
    }
    if let Some(p) = o.proxy.for_url(scheme, &host) {
        let proxy = ureq::Proxy::new(p).map_err(|e| Attempt::Fatal(format!("proxy {p:?}: {e}")))?;
        b = b.proxy(proxy);
    }
    // Redirects are ours to follow: ureq would follow one from https to http and carry
    // the config's custom headers (tokens) to any host.
    let agent = b.redirects(0).build();
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let resp = request(&agent, &current, headers)?;
        if !(300..400).contains(&resp.status()) {
            return body(resp, o.max_size);
        }
        let location = resp.header("location").ok_or_else(|| {
            Attempt::Fatal(format!("HTTP {} without a Location header", resp.status()))
        })?;
        current = same_origin_redirect(&current, location).map_err(Attempt::Fatal)?;
    }
    Err(Attempt::Fatal(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

const MAX_REDIRECTS: usize = 5;

/// Where a redirect leads, if it stays on the origin (scheme, host and port) it came
/// from: https is never downgraded and headers never reach another host.
pub(super) fn same_origin_redirect(from: &str, location: &str) -> Result<String, String> {
    let base = url::Url::parse(from).map_err(|e| format!("{from:?}: {e}"))?;
    let next = base
        .join(location)
        .map_err(|e| format!("redirect to {location:?}: {e}"))?;
    if next.origin() != base.origin() {
        return Err(format!(
            "redirected from {from} to {next}: only redirects to the same origin \
             (scheme, host and port) are followed"
        ));
    }
    Ok(next.into())
}

fn request(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(String, String)],
) -> Result<ureq::Response, Attempt> {
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req.call() {
        Ok(r) => Ok(r),
        // Ignition keeps asking on 404 too: a config server may not have it yet.
        Err(ureq::Error::Status(code, r)) => {
            let msg = format!("HTTP {code} {}", r.status_text());
            Err(if code >= 500 || matches!(code, 404 | 408 | 429) {
                Attempt::Retry(msg)
            } else {
                Attempt::Fatal(msg)
            })
        }
        Err(e) => Err(Attempt::Retry(e.to_string())),
    }
}

fn body(resp: ureq::Response, max_size: u64) -> Result<Vec<u8>, Attempt> {
    let mut body = Vec::new();
    resp.into_reader()
        .take(max_size + 1)
        .read_to_end(&mut body)
        .map_err(|e| Attempt::Retry(format!("reading the body: {e}")))?;
    if body.len() as u64 > max_size {
        return Err(Attempt::Fatal(format!("larger than {max_size} bytes")));
    }
    Ok(body)
}
