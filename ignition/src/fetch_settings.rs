//! How remote sources are fetched, as a config says: `ignition.timeouts`,
//! `ignition.security.tls.certificateAuthorities` and `ignition.proxy`, applied the way
//! Ignition's `UpdateHttpTimeoutsAndCAs` applies them. The root config's settings govern
//! the fetch of the configs it merges or is replaced by; a merged config's settings,
//! merged onto those before, govern every fetch after it; a replacing config's settings
//! replace them; the rendered config's settings govern the files' contents.
//!
//! The CAs are resources themselves: fetched (data URL, or through the fetcher with the
//! new proxy and timeouts but the trust before them, as upstream does), checked against
//! `verification.hash`, decompressed. Each source is fetched once per render.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::ConfigError;
use crate::fetch::Fetcher;
use crate::spec;

/// What a fetcher needs to know from a config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSettings {
    pub timeouts: spec::Timeouts,
    /// Trusted for https besides the fetcher's built-in roots.
    pub certificate_authorities: Vec<CertificateAuthority>,
    pub proxy: spec::Proxy,
}

/// One CA of `ignition.security.tls.certificateAuthorities`, fetched and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateAuthority {
    /// Where the config names it (`ignition.security.tls.certificateAuthorities[0]`), for
    /// the fetcher's error if the bytes are no certificate.
    pub path: String,
    /// PEM, one or more certificates.
    pub pem: Vec<u8>,
}

/// A fetcher that follows the settings of the configs read so far.
pub struct ConfiguredFetcher<'a> {
    base: &'a dyn Fetcher,
    current: Option<Box<dyn Fetcher>>,
    settings: FetchSettings,
    /// CA bytes by source, so a CA named again by a later config is not fetched again.
    fetched_cas: BTreeMap<String, Vec<u8>>,
}

impl<'a> ConfiguredFetcher<'a> {
    /// `base` as it is, before any config has been read.
    pub fn new(base: &'a dyn Fetcher) -> Self {
        ConfiguredFetcher {
            base,
            current: None,
            settings: FetchSettings::default(),
            fetched_cas: BTreeMap::new(),
        }
    }

    /// The fetcher to use now.
    pub fn get(&self) -> &dyn Fetcher {
        self.current.as_deref().unwrap_or(self.base)
    }

    /// The settings in force.
    pub fn settings(&self) -> &FetchSettings {
        &self.settings
    }

    /// Take the settings of `ignition` (a config's `ignition` section, already valid).
    pub fn update(&mut self, ignition: &spec::Ignition) -> Result<(), ConfigError> {
        let timeouts = ignition.timeouts.clone().unwrap_or_default();
        let proxy = ignition.proxy.clone().unwrap_or_default();
        // Proxy and timeouts first: the CAs are fetched through them, with the old trust.
        self.set(FetchSettings {
            timeouts: timeouts.clone(),
            certificate_authorities: self.settings.certificate_authorities.clone(),
            proxy: proxy.clone(),
        })?;
        let sources = ignition
            .security
            .as_ref()
            .and_then(|s| s.tls.as_ref())
            .and_then(|t| t.certificate_authorities.as_deref())
            .unwrap_or_default();
        let mut cas = Vec::new();
        for (i, r) in sources.iter().enumerate() {
            let path = format!("ignition.security.tls.certificateAuthorities[{i}]");
            let source = r.source.clone().unwrap_or_default();
            let pem = match self.fetched_cas.get(&source) {
                Some(pem) => pem.clone(),
                None => {
                    let pem = crate::resolve::resource(
                        &path,
                        r,
                        crate::limits::MAX_DOCUMENT_BYTES,
                        self.get(),
                    )?;
                    self.fetched_cas.insert(source, pem.clone());
                    pem
                }
            };
            cas.push(CertificateAuthority { path, pem });
        }
        self.set(FetchSettings {
            timeouts,
            certificate_authorities: cas,
            proxy,
        })
    }

    /// Take the settings of a document at the latest spec (a referenced config, or the
    /// merge of the configs so far).
    pub(crate) fn update_from_document(&mut self, doc: &Value) -> Result<(), ConfigError> {
        let section = doc
            .get("ignition")
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default()));
        let ignition: spec::Ignition = crate::lenient::from_value(
            section,
            "ignition",
            crate::merge::LATEST,
            &RefCell::new(Vec::new()),
        )?;
        self.update(&ignition)
    }

    fn set(&mut self, settings: FetchSettings) -> Result<(), ConfigError> {
        if settings == self.settings {
            return Ok(());
        }
        self.current = self.base.with_settings(&settings)?;
        self.settings = settings;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
