//! Which settings govern which fetch, as Ignition's RenderConfig applies them: a fetcher
//! that serves documents by URL and records the proxy in force at every fetch.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::json;

use super::*;
use crate::fetch::Fetcher;

type Log = Rc<RefCell<Vec<(String, Option<String>, usize)>>>;

/// Serves `docs`; logs (url, httpProxy in force, number of CAs) per fetch.
#[derive(Clone)]
struct Recording {
    docs: Rc<BTreeMap<String, Vec<u8>>>,
    settings: FetchSettings,
    log: Log,
}

impl Fetcher for Recording {
    fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.log.borrow_mut().push((
            url.to_string(),
            self.settings.proxy.http_proxy.clone(),
            self.settings.certificate_authorities.len(),
        ));
        self.docs.get(url).cloned().ok_or(format!("no {url}"))
    }

    fn with_settings(
        &self,
        settings: &FetchSettings,
    ) -> Result<Option<Box<dyn Fetcher>>, ConfigError> {
        // Boxed fetchers are 'static: the served documents and the log are shared.
        Ok(Some(Box::new(Recording {
            settings: settings.clone(),
            ..self.clone()
        })))
    }
}

fn doc(v: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn ca(n: u32) -> serde_json::Value {
    json!({"source": format!("http://ca/{n}")})
}

#[test]
fn settings_follow_the_configs_as_ignition_renders_them() {
    let proxy = |p: &str| json!({"httpProxy": format!("http://{p}")});
    let file =
        |source: &str| json!({"files": [{"path": "/etc/f", "contents": {"source": source}}]});
    let docs: BTreeMap<String, Vec<u8>> = [
        // The first merged config sets another proxy and a second CA.
        (
            "http://cfg/a",
            doc(json!({"ignition": {"version": "3.4.0", "proxy": proxy("a"),
                "security": {"tls": {"certificateAuthorities": [ca(2)]}}}})),
        ),
        // The second is replaced by a config with its own proxy and no CA.
        (
            "http://cfg/b",
            doc(json!({"ignition": {"version": "3.4.0",
                "config": {"replace": {"source": "http://cfg/c"}}}})),
        ),
        (
            "http://cfg/c",
            doc(json!({"ignition": {"version": "3.4.0", "proxy": proxy("c")}})),
        ),
        ("http://ca/1", b"pem 1".to_vec()),
        ("http://ca/2", b"pem 2".to_vec()),
        ("http://files/f", b"contents".to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let log = Log::default();
    let base = Recording {
        docs: Rc::new(docs),
        settings: FetchSettings::default(),
        log: log.clone(),
    };
    let root = doc(json!({
        "ignition": {"version": "3.4.0", "proxy": proxy("root"),
            "security": {"tls": {"certificateAuthorities": [ca(1)]}},
            "config": {"merge": [{"source": "http://cfg/a"}, {"source": "http://cfg/b"}]}},
        "storage": file("http://files/f"),
    }));
    let cfg = crate::node_config(&root, &base).unwrap();
    assert_eq!(
        cfg.files[0].contents,
        Some(crate::Contents::from(&b"contents"[..]))
    );
    let root_proxy = Some("http://root".to_string());
    let a_proxy = Some("http://a".to_string());
    let c_proxy = Some("http://c".to_string());
    assert_eq!(
        log.borrow().as_slice(),
        [
            // The root's CA is fetched through the root's proxy with the trust before it.
            ("http://ca/1".to_string(), root_proxy.clone(), 0),
            ("http://cfg/a".to_string(), root_proxy.clone(), 1),
            // a merged onto the root: a's proxy, both CAs (a's fetched once).
            ("http://ca/2".to_string(), a_proxy.clone(), 1),
            ("http://cfg/b".to_string(), a_proxy.clone(), 2),
            // b merged onto root+a keeps a's proxy and both CAs while b's replacement is
            // fetched; c then replaces the settings (its own proxy, no CA).
            ("http://cfg/c".to_string(), a_proxy, 2),
            // The files: the rendered config's settings (c's proxy as merged last, the
            // CAs of root and a, already fetched).
            ("http://files/f".to_string(), c_proxy, 2),
        ]
    );
}

#[test]
fn a_config_without_settings_keeps_the_fetcher() {
    let mut f = ConfiguredFetcher::new(&crate::NoRemoteFetcher);
    f.update(&crate::spec::Ignition::default()).unwrap();
    assert!(f.current.is_none());
    assert_eq!(f.settings(), &FetchSettings::default());
}
