//! A resource's `httpHeaders` (spec 3.1.0+), checked with upstream's rules and turned into
//! the (name, value) pairs a [`Fetcher`](crate::Fetcher) sends.
//!
//! Upstream rules, confirmed against Ignition 2.14: headers only on an `http`/`https`
//! source; a name is required; a value, when given, is not empty; a name appears once.
//! A header without a value is valid in a document because merging uses it to drop the
//! parent's header of that name (see `merge`); one that survives to the fetch is an error.

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ConfigError, Problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

fn parse(p: &str, raw: &Option<Value>) -> Result<Vec<Header>, ConfigError> {
    match raw {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => {
            let headers: Option<Vec<Header>> =
                serde_path_to_error::deserialize(v).map_err(|e| {
                    let inner = e.path().to_string();
                    let path = if inner == "." {
                        p.to_string()
                    } else if inner.starts_with('[') {
                        format!("{p}{inner}")
                    } else {
                        format!("{p}.{inner}")
                    };
                    ConfigError::new(path, Problem::Shape(e.into_inner().to_string()))
                })?;
            Ok(headers.unwrap_or_default())
        }
    }
}

/// Check `raw` (the `httpHeaders` at JSON path `p`) for a resource whose source is `source`.
pub(crate) fn check(p: &str, raw: &Option<Value>, source: Option<&str>) -> Result<(), ConfigError> {
    let headers = parse(p, raw)?;
    if headers.is_empty() {
        return Ok(());
    }
    let scheme = source
        .and_then(|s| s.split_once(':'))
        .map_or("", |(s, _)| s);
    if !matches!(scheme, "http" | "https") {
        return Err(ConfigError::new(
            p,
            Problem::HeadersNeedHttp(scheme.to_string()),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, h) in headers.iter().enumerate() {
        if h.name.is_empty() {
            return Err(ConfigError::new(
                format!("{p}[{i}].name"),
                Problem::EmptyName,
            ));
        }
        if h.value.as_deref() == Some("") {
            return Err(ConfigError::new(
                format!("{p}[{i}].value"),
                Problem::EmptyHeaderValue,
            ));
        }
        if !seen.insert(h.name.as_str()) {
            return Err(ConfigError::new(
                format!("{p}[{i}].name"),
                Problem::DuplicateName(h.name.clone()),
            ));
        }
    }
    Ok(())
}

/// The headers to send, in document order. Call on a checked resource.
pub(crate) fn pairs(p: &str, raw: &Option<Value>) -> Result<Vec<(String, String)>, ConfigError> {
    parse(p, raw)?
        .into_iter()
        .enumerate()
        .map(|(i, h)| match h.value {
            Some(v) if !v.is_empty() => Ok((h.name, v)),
            _ => Err(ConfigError::new(
                format!("{p}[{i}].value"),
                Problem::HeaderWithoutValue(h.name),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_json(v: Value, source: &str) -> Result<(), String> {
        check("c.httpHeaders", &Some(v), Some(source)).map_err(|e| e.to_string())
    }

    #[test]
    fn upstream_rules() {
        let ok = json!([{"name": "Authorization", "value": "Bearer x"}, {"name": "Drop"}]);
        assert_eq!(check_json(ok.clone(), "https://h/c.ign"), Ok(()));
        assert_eq!(
            check_json(ok, "data:,x"),
            Err("c.httpHeaders: HTTP headers need an http or https source, not \"data\"".into())
        );
        assert_eq!(
            check_json(json!([{"name": "", "value": "b"}]), "http://h/"),
            Err("c.httpHeaders[0].name: name is empty".into())
        );
        assert!(check_json(json!([{"name": "A", "value": ""}]), "http://h/")
            .unwrap_err()
            .starts_with("c.httpHeaders[0].value: header value is empty"));
        assert_eq!(
            check_json(
                json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
                "http://h/"
            ),
            Err("c.httpHeaders[1].name: duplicate name \"A\"".into())
        );
        assert_eq!(
            check_json(json!([{"name": "A", "valu": "1"}]), "http://h/"),
            Err("c.httpHeaders[0].valu: unknown field `valu`, expected `name` or `value`".into())
        );
        // An empty list says nothing, whatever the source.
        assert_eq!(check_json(json!([]), "tftp://h/x"), Ok(()));
    }

    #[test]
    fn pairs_keep_order_and_refuse_a_missing_value() {
        let raw = Some(json!([{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]));
        assert_eq!(
            pairs("h", &raw).unwrap(),
            vec![("B".into(), "2".into()), ("A".into(), "1".into())]
        );
        let err = pairs("h", &Some(json!([{"name": "A"}]))).unwrap_err();
        assert_eq!(err.to_string(), "h[0].value: header \"A\" has no value");
    }
}
