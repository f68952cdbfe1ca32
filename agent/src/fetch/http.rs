//! http and https through ureq (rustls with compiled-in web PKI roots, so a static agent
//! needs no CA bundle on the node, plus a config's CAs), with Ignition's two timeouts, its
//! proxy settings and per-source headers.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use ignition::fetch_settings::FetchSettings;
use ignition::spec::Proxy;
use ignition::{ConfigError, Problem};

use super::{names, Attempt, NetFetcher};

/// `ignition.timeouts`, `ignition.security.tls` and `ignition.proxy`.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// `httpResponseHeaders`: connect and wait for the headers at most this long
    /// (Ignition's default 10 s); `None` is no limit (Ignition's 0).
    pub response_headers: Option<Duration>,
    /// `httpTotal`: the whole request; `None` is no limit (Ignition's 0).
    pub total: Option<Duration>,
    pub proxy: Proxy,
    /// The trust for https with a config's CAs; `None`: the web PKI roots only.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub max_size: u64,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            response_headers: Some(Duration::from_secs(10)),
            total: None,
            proxy: Proxy::default(),
            tls: None,
            // Nothing larger is accepted once fetched (a file's cap; documents' is lower).
            max_size: ignition::limits::MAX_FILE_BYTES,
        }
    }
}

impl HttpOptions {
    /// These options with a config's fetch settings: its timeouts (seconds; 0 or less is
    /// no limit, as in Go), proxy and CAs. An error names the setting that cannot be used.
    pub fn with_settings(&self, s: &FetchSettings) -> Result<HttpOptions, ConfigError> {
        let seconds = |v: Option<i64>, default: Option<Duration>| match v {
            None => default,
            Some(n) if n <= 0 => None,
            Some(n) => Some(Duration::from_secs(n.unsigned_abs())),
        };
        let defaults = HttpOptions::default();
        for (field, url) in [
            ("httpProxy", &s.proxy.http_proxy),
            ("httpsProxy", &s.proxy.https_proxy),
        ] {
            if let Some(url) = url.as_deref().filter(|u| !u.is_empty()) {
                ureq::Proxy::new(url).map_err(|e| {
                    ConfigError::new(
                        format!("ignition.proxy.{field}"),
                        Problem::InvalidProxy(format!(
                            "{url}: {e} (the agent speaks to http:// proxies only)"
                        )),
                    )
                })?;
            }
        }
        Ok(HttpOptions {
            response_headers: seconds(s.timeouts.http_response_headers, defaults.response_headers),
            total: seconds(s.timeouts.http_total, defaults.total),
            proxy: s.proxy.clone(),
            tls: if s.certificate_authorities.is_empty() {
                None
            } else {
                Some(super::trust::with_cas(&s.certificate_authorities)?)
            },
            max_size: self.max_size,
        })
    }
}

/// ureq's resolver hook: our NSS-free lookup (the root's /etc/hosts, then DNS as its
/// /etc/resolv.conf says).
pub(crate) struct Resolver {
    pub(crate) hosts_file: Option<std::path::PathBuf>,
    pub(crate) resolv_conf: Option<std::path::PathBuf>,
}

impl ureq::Resolver for Resolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let (host, port) = netloc
            .rsplit_once(':')
            .ok_or_else(|| std::io::Error::other(format!("{netloc:?} has no port")))?;
        let port = port
            .parse()
            .map_err(|_| std::io::Error::other(format!("bad port in {netloc:?}")))?;
        names::resolve(
            host,
            port,
            self.hosts_file.as_deref(),
            self.resolv_conf.as_deref(),
        )
        .map_err(std::io::Error::other)
    }
}

pub(super) fn get(
    f: &NetFetcher,
    url: &str,
    headers: &[(String, String)],
) -> Result<Vec<u8>, Attempt> {
    let scheme = url.split_once("://").map_or("http", |(s, _)| s);
    let default_port = if scheme == "https" { 443 } else { 80 };
    let (host, port, _) = super::split_url(url, default_port).map_err(Attempt::Fatal)?;
    let o = &f.http;
    let mut b = ureq::AgentBuilder::new().resolver(Resolver {
        hosts_file: f.hosts_file.clone(),
        resolv_conf: f.resolv_conf.clone(),
    });
    if let Some(t) = o.response_headers {
        b = b.timeout_connect(t).timeout_read(t);
    }
    if let Some(t) = o.total {
        b = b.timeout(t);
    }
    if let Some(tls) = &o.tls {
        b = b.tls_config(tls.clone());
    }
    if let Some(p) = super::proxy::for_url(&o.proxy, scheme, &host, port) {
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
        Err(e) => match untrusted_certificate(&e) {
            Some(why) => Err(Attempt::Fatal(format!(
                "the server's certificate is not trusted ({why}); if an internal CA signed \
                 it, give that CA in ignition.security.tls.certificateAuthorities"
            ))),
            None => Err(Attempt::Retry(e.to_string())),
        },
    }
}

/// The certificate error under a failed connection, if that is why it failed: trying again
/// would not help, so it is said plainly and not retried.
fn untrusted_certificate(e: &ureq::Error) -> Option<String> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        // io::Error's source() skips the error it wraps: look inside it.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(tls @ rustls::Error::InvalidCertificate(_)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(tls.to_string());
            }
        }
        next = inner.and_then(|i| i.source()).or_else(|| err.source());
    }
    None
}

fn body(resp: ureq::Response, max_size: u64) -> Result<Vec<u8>, Attempt> {
    let mut body = Vec::new();
    resp.into_reader()
        .take(max_size + 1)
        .read_to_end(&mut body)
        .map_err(|e| Attempt::Retry(format!("reading the body: {e}")))?;
    if body.len() as u64 > max_size {
        return Err(Attempt::Fatal(ignition::fetch::too_large(max_size)));
    }
    Ok(body)
}
