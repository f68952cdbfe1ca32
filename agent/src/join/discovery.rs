//! kubeadm's bootstrap-token discovery, endpoint by endpoint:
//! 1. GET cluster-info trusting any server certificate;
//! 2. check `jws-kubeconfig-<token-id>` over the raw kubeconfig with the token secret;
//! 3. pin the kubeconfig's CA by `sha256:` of its SubjectPublicKeyInfo;
//! 4. GET cluster-info again trusting only that CA, and require the same kubeconfig.
//!
//! An endpoint that cannot be reached (or answers with an HTTP error, or has no
//! signature for our token yet) is "unavailable": try the next, and after a round over
//! all of them, pause and go again until the time is up. A forged signature, a CA that
//! does not match the pins, or a server outside that CA is a security event: stop at
//! once and never ask another endpoint, as an attacker may sit in front of any of them.

use super::backoff::Backoff;
use super::cluster_info::{self, ClusterInfo};
use super::kubeconfig::{self, DiscoveredCluster};
use super::{ca_pin, jws, tls, JoinError};
use crate::backoff::Clock;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// cluster-info is a few kilobytes; anything near this is not a kube-apiserver.
const MAX_BODY: u64 = 1 << 20;

/// What discovery needs from the node settings.
pub struct Request<'a> {
    pub endpoints: &'a [String],
    pub token_id: &'a str,
    pub token_secret: &'a str,
    pub ca_pins: &'a [String],
    pub backoff: &'a Backoff,
    /// `/etc/hosts` of the root being configured, read first.
    pub hosts_file: Option<PathBuf>,
    /// Its `/etc/resolv.conf`, for names not in the hosts file; `None`: no DNS.
    pub resolv_conf: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Discovered {
    pub endpoint: String,
    pub ca_pin: String,
    pub cluster: DiscoveredCluster,
    pub rounds: u32,
}

/// One endpoint's answer when it is not a result.
enum Failure {
    Unavailable(String),
    Fatal(JoinError),
}

/// Rounds over the endpoints until one answers; `clock` paces the rounds and tells when
/// the backoff's total is spent.
pub fn discover(req: &Request<'_>, clock: &dyn Clock) -> Result<Discovered, JoinError> {
    let mut round = 1;
    loop {
        let mut last: Vec<(String, String)> = Vec::new();
        for endpoint in req.endpoints {
            match discover_at(req, endpoint) {
                Ok((ca_pin, cluster)) => {
                    return Ok(Discovered {
                        endpoint: endpoint.clone(),
                        ca_pin,
                        cluster,
                        rounds: round,
                    })
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Unavailable(why)) => {
                    eprintln!("harmony-agent: join: {endpoint}: {why}");
                    last.push((endpoint.clone(), why));
                }
            }
        }
        match req.backoff.next_pause(clock.elapsed(), round) {
            Some(pause) => clock.sleep(pause),
            None => {
                return Err(JoinError::Unreachable {
                    rounds: round,
                    waited: clock.elapsed(),
                    last,
                })
            }
        }
        round += 1;
    }
}

fn discover_at(req: &Request<'_>, endpoint: &str) -> Result<(String, DiscoveredCluster), Failure> {
    let url = format!("{}{}", endpoint.trim_end_matches('/'), cluster_info::PATH);
    let fatal = |problem: String| {
        Failure::Fatal(JoinError::BadClusterInfo {
            endpoint: endpoint.to_string(),
            problem,
        })
    };

    let first = get(req, &url, tls::unverified(), None)?;
    let info = ClusterInfo::parse(&first).map_err(fatal)?;
    let Some(signature) = info.signatures.get(req.token_id) else {
        return Err(Failure::Unavailable(format!(
            "cluster-info has no jws-kubeconfig-{} (the token is not signed yet, has \
             expired, or belongs to another cluster)",
            req.token_id
        )));
    };
    jws::verify(
        signature,
        info.kubeconfig.as_bytes(),
        req.token_id,
        req.token_secret,
    )
    .map_err(|e| {
        Failure::Fatal(JoinError::Signature {
            endpoint: endpoint.to_string(),
            token_id: req.token_id.to_string(),
            problem: e.to_string(),
        })
    })?;

    let cluster = kubeconfig::parse_cluster(&info.kubeconfig).map_err(fatal)?;
    let ca_pin = match ca_pin::matching(&cluster.ca_certs, req.ca_pins) {
        Err(e) => return Err(fatal(format!("certificate-authority-data: {e}"))),
        Ok(Err(found)) => {
            return Err(Failure::Fatal(JoinError::CaPin {
                endpoint: endpoint.to_string(),
                found,
            }))
        }
        Ok(Ok(pin)) => pin,
    };

    let (config, refusal) = tls::pinned(&cluster.ca_certs).map_err(fatal)?;
    let second = get(req, &url, config, Some(&refusal))?;
    let again = ClusterInfo::parse(&second).map_err(fatal)?;
    if again.kubeconfig != info.kubeconfig {
        return Err(Failure::Fatal(JoinError::Pinned {
            endpoint: endpoint.to_string(),
            problem: "the kubeconfig fetched over TLS verified by the pinned CA differs \
                      from the one first fetched"
                .to_string(),
        }));
    }
    Ok((ca_pin, cluster))
}

/// One GET. A handshake the pinned verifier refused is fatal; any other failure to get
/// a 200 is the endpoint being unavailable.
fn get(
    req: &Request<'_>,
    url: &str,
    config: Arc<rustls::ClientConfig>,
    refusal: Option<&tls::Refusal>,
) -> Result<Vec<u8>, Failure> {
    let agent = ureq::AgentBuilder::new()
        .tls_config(config)
        .resolver(crate::fetch::Resolver {
            hosts_file: req.hosts_file.clone(),
            resolv_conf: req.resolv_conf.clone(),
        })
        .timeout_connect(req.backoff.request_timeout)
        .timeout(req.backoff.request_timeout)
        .redirects(0)
        .build();
    let result = agent.get(url).set("Accept", "application/json").call();
    let refused = refusal.and_then(|r| r.lock().unwrap_or_else(|p| p.into_inner()).take());
    if let Some(why) = refused {
        return Err(Failure::Fatal(JoinError::Pinned {
            endpoint: url
                .strip_suffix(cluster_info::PATH)
                .unwrap_or(url)
                .to_string(),
            problem: format!("its certificate does not verify against the pinned CA: {why}"),
        }));
    }
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            return Err(Failure::Unavailable(format!(
                "HTTP {code} {}",
                r.status_text()
            )))
        }
        Err(ureq::Error::Transport(t)) => {
            // Without the URL, which the caller already names.
            let why = std::error::Error::source(&t)
                .map(|s| s.to_string())
                .or_else(|| t.message().map(str::to_string))
                .unwrap_or_default();
            return Err(Failure::Unavailable(format!("{}: {why}", t.kind())));
        }
    };
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| Failure::Unavailable(format!("reading the response: {e}")))?;
    if body.len() as u64 > MAX_BODY {
        return Err(Failure::Unavailable(format!(
            "the response is larger than {MAX_BODY} bytes"
        )));
    }
    Ok(body)
}
