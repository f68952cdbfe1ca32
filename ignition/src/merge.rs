//! `ignition.config.replace` and `ignition.config.merge`: configs that pull in other
//! configs, rendered into one the way Ignition's `RenderConfig` does.
//!
//! - `replace`: the referenced config, rendered in turn, is the result; this config's
//!   own contents and merge list are dropped.
//! - `merge`: each referenced config is fetched, rendered (its own references first:
//!   depth first), and merged onto the result so far, in list order; the child wins
//!   (rules in [`json_merge`]).
//!
//! A referenced config is fetched like file contents (data URL, or the [`Fetcher`] with
//! the reference's `httpHeaders`), decompressed, checked against `verification.hash`
//! before it is parsed, parsed and validated at its own spec version, and translated to
//! the latest spec ([`translate`]). It may declare any supported version, older or newer
//! than the config that references it: Ignition 2.14 merges a 3.3.0 config into a 3.0.0
//! one. The merged result is validated again at the latest version, as upstream does.
//!
//! Upstream recurses without bound; Harmony stops at a reference to a config already
//! being rendered further up the chain (same source), at [`MAX_DEPTH`] levels, and at
//! [`MAX_CONFIGS`] referenced configs in all.
//!
//! Errors name the reference (`ignition.config.merge[1].source: …`); an error inside a
//! referenced config follows it with that config's own path.

pub mod json_merge;
mod translate;

use std::cell::RefCell;

use serde_json::Value;

use crate::error::{ConfigError, Problem};
use crate::fetch::Fetcher;
use crate::fetch_settings::ConfiguredFetcher;
use crate::spec;
use crate::version::SpecVersion;
use crate::{ConfigWarning, IgnitionConfig};

pub use translate::LATEST;

/// How many levels of configs referencing configs are followed.
pub const MAX_DEPTH: usize = 8;
/// How many referenced configs one render fetches at most.
pub const MAX_CONFIGS: usize = 64;

type Result<T> = std::result::Result<T, ConfigError>;

/// `ignition.config` as written.
struct References<'a>(Option<&'a spec::References>);

impl References<'_> {
    /// The replacing config's source; an empty one replaces nothing (as in 2.14).
    fn replace(&self) -> Option<&spec::Resource> {
        self.0
            .and_then(|r| r.replace.as_ref())
            .filter(|r| r.source.as_deref().is_some_and(|s| !s.is_empty()))
    }

    fn merge(&self) -> &[spec::Resource] {
        self.0.and_then(|r| r.merge.as_deref()).unwrap_or_default()
    }
}

/// Validation of `ignition.config` (called from [`crate::validate`]): each merge entry
/// needs a source, sources are unique, and each reference is a valid resource.
pub(crate) fn check_references(raw: &Option<spec::References>, version: SpecVersion) -> Result<()> {
    let refs = References(raw.as_ref());
    crate::validate::check_resource_list("ignition.config.merge", refs.merge(), version)?;
    if let Some(r) = raw.as_ref().and_then(|r| r.replace.as_ref()) {
        crate::validate::check_resource("ignition.config.replace", r, version)?;
    }
    Ok(())
}

/// Parse, validate and render a document: the config the node gets, with every
/// reference fetched and merged. A document without references comes back as
/// [`crate::parse`] returns it.
pub fn render(json: &[u8], fetcher: &dyn Fetcher) -> Result<IgnitionConfig> {
    render_with(json, &mut ConfiguredFetcher::new(fetcher))
}

/// [`render`], fetching as each config read says ([`crate::fetch_settings`]); `fetcher`
/// is left with the settings of the last config read.
pub fn render_with(json: &[u8], fetcher: &mut ConfiguredFetcher<'_>) -> Result<IgnitionConfig> {
    let parsed = crate::parse(json)?;
    let refs = References(parsed.config.ignition.config.as_ref());
    if refs.replace().is_none() && refs.merge().is_empty() {
        return Ok(parsed);
    }
    fetcher.update(&parsed.config.ignition)?;
    let mut walk = Walk {
        fetcher,
        chain: Vec::new(),
        fetched: 0,
        warnings: parsed.warnings,
    };
    let rendered = walk.render(translate::to_latest(parsed.used, parsed.version))?;
    let invalid =
        |e: ConfigError| ConfigError::new("ignition.config", Problem::MergedInvalid(Box::new(e)));
    // Each document's warnings were collected as it was read; the merged one, made of
    // used keys only, is checked again for errors.
    let scratch = RefCell::new(Vec::new());
    let (config, used) =
        crate::lenient::read::<spec::Config>(rendered, "", LATEST, &scratch).map_err(invalid)?;
    crate::validate::validate(&config, LATEST, &mut Vec::new()).map_err(invalid)?;
    Ok(IgnitionConfig {
        version: LATEST,
        config,
        warnings: walk.warnings,
        used,
    })
}

/// One render: the sources on the way down from the root, and the count so far.
struct Walk<'w, 'f> {
    fetcher: &'w mut ConfiguredFetcher<'f>,
    chain: Vec<String>,
    fetched: usize,
    /// Every document's warnings, a referenced one's behind its reference's path.
    warnings: Vec<ConfigWarning>,
}

impl Walk<'_, '_> {
    /// `doc` is valid and already at the latest spec. As upstream, a replacing config's
    /// fetch settings take over before it is rendered; a merged config's, merged onto
    /// the result so far, before it is rendered and for every fetch after it.
    fn render(&mut self, doc: Value) -> Result<Value> {
        let refs: Option<spec::References> = match doc.pointer("/ignition/config") {
            Some(v) => crate::lenient::from_value(
                v.clone(),
                "ignition.config",
                LATEST,
                &RefCell::new(Vec::new()),
            )?,
            None => None,
        };
        let refs = References(refs.as_ref());
        if let Some(r) = refs.replace() {
            let p = "ignition.config.replace";
            let child = self.fetch(p, r)?;
            self.fetcher
                .update_from_document(&child)
                .map_err(|e| in_reference(p, e))?;
            return self.render_child(p, r, child);
        }
        let mut merged = doc;
        for (i, r) in refs.merge().iter().enumerate() {
            let p = format!("ignition.config.merge[{i}]");
            let child = self.fetch(&p, r)?;
            self.fetcher
                .update_from_document(&json_merge::merge(&merged, &child))
                .map_err(|e| in_reference(&p, e))?;
            let rendered = self.render_child(&p, r, child)?;
            merged = json_merge::merge(&merged, &rendered);
        }
        Ok(merged)
    }

    /// Fetch, verify, parse and translate the config `r` (at JSON path `p`).
    fn fetch(&mut self, p: &str, r: &spec::Resource) -> Result<Value> {
        let source = r.source.clone().unwrap_or_default();
        let at_source = |problem| ConfigError::new(format!("{p}.source"), problem);
        if self.chain.contains(&source) {
            return Err(at_source(Problem::ReferenceCycle(shorten(&source))));
        }
        if self.chain.len() >= MAX_DEPTH {
            return Err(at_source(Problem::ReferenceTooDeep(MAX_DEPTH)));
        }
        if self.fetched >= MAX_CONFIGS {
            return Err(at_source(Problem::TooManyReferences(MAX_CONFIGS)));
        }
        self.fetched += 1;
        let bytes =
            crate::resolve::resource(p, r, crate::limits::MAX_DOCUMENT_BYTES, self.fetcher.get())?;
        let parsed = crate::parse(&bytes).map_err(|e| in_reference(p, e))?;
        self.warnings.extend(
            parsed
                .warnings
                .into_iter()
                .map(|w| ConfigWarning::new(format!("{p}.source: {}", w.path), w.message)),
        );
        Ok(translate::to_latest(parsed.used, parsed.version))
    }

    /// Render the fetched config `child` of reference `r` (its own references first).
    fn render_child(&mut self, p: &str, r: &spec::Resource, child: Value) -> Result<Value> {
        self.chain.push(r.source.clone().unwrap_or_default());
        let rendered = self.render(child);
        self.chain.pop();
        rendered.map_err(|e| in_reference(p, e))
    }
}

/// An error inside the config referenced at `p`.
fn in_reference(p: &str, e: ConfigError) -> ConfigError {
    ConfigError::new(
        format!("{p}.source"),
        Problem::InReferencedConfig(Box::new(e)),
    )
}

/// A data URL can be long; an error quotes its start.
fn shorten(source: &str) -> String {
    match source.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &source[..i]),
        None => source.to_string(),
    }
}

#[cfg(test)]
mod tests;
