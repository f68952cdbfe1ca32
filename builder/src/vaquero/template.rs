//! The part of Go's text/template that Harmony's Vaquero files use: `{{.a.b}}` (spaces
//! inside the braces allowed), looked up in JSON data. Anything else — pipelines,
//! functions, `range` — is refused, as is a missing key (Go would print `<no value>`
//! into a config and boot a node with it).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("offset {offset}: `{{{{` without a closing `}}}}`")]
    Unclosed { offset: usize },
    #[error("offset {offset}: `{{{{{action}}}}}` is not a field reference like {{{{.a.b}}}}")]
    Unsupported { offset: usize, action: String },
    #[error("offset {offset}: {path}: no such key in the template data")]
    Missing { offset: usize, path: String },
    #[error("offset {offset}: {path}: is a {kind}, not text")]
    NotText {
        offset: usize,
        path: String,
        kind: &'static str,
    },
}

/// Fill `template` with `data`.
pub fn render(template: &str, data: &Value) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let at = offset + start;
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or(TemplateError::Unclosed { offset: at })?;
        let action = after[..end].trim();
        out.push_str(&lookup(action, data, at)?);
        let consumed = start + 2 + end + 2;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    Ok(out)
}

fn lookup(action: &str, data: &Value, offset: usize) -> Result<String, TemplateError> {
    let unsupported = || TemplateError::Unsupported {
        offset,
        action: action.to_string(),
    };
    let path = action.strip_prefix('.').ok_or_else(unsupported)?;
    let keys: Vec<&str> = path.split('.').collect();
    let plain =
        |k: &&str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !keys.iter().all(plain) {
        return Err(unsupported());
    }
    let mut v = data;
    for k in &keys {
        v = v.get(*k).ok_or_else(|| TemplateError::Missing {
            offset,
            path: action.to_string(),
        })?;
    }
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(TemplateError::NotText {
            offset,
            path: action.to_string(),
            kind: match other {
                Value::Null => "null",
                Value::Array(_) => "list",
                _ => "map",
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_field_references() {
        let data = json!({"env": {"agentURL": "http://a:24602"}, "host": {"name": "n1", "n": 3}});
        assert_eq!(
            render(
                "{{.env.agentURL}}/files/x {{ .host.name }}-{{.host.n}}",
                &data
            )
            .unwrap(),
            "http://a:24602/files/x n1-3"
        );
        assert_eq!(render("no actions", &data).unwrap(), "no actions");
    }

    #[test]
    fn refuses_what_it_does_not_do() {
        let data = json!({"host": {"name": "n1", "md": {}}});
        let e = |t: &str| render(t, &data).unwrap_err();
        assert_eq!(
            e("x {{.host.nope}}"),
            TemplateError::Missing {
                offset: 2,
                path: ".host.nope".into()
            }
        );
        assert!(matches!(
            e("{{ range .host }}"),
            TemplateError::Unsupported { .. }
        ));
        assert!(matches!(
            e("{{ Checkpoint }}"),
            TemplateError::Unsupported { .. }
        ));
        assert!(matches!(
            e("{{.host.name | printf}}"),
            TemplateError::Unsupported { .. }
        ));
        assert!(matches!(
            e("{{.host.md}}"),
            TemplateError::NotText { kind: "map", .. }
        ));
        assert_eq!(e("a {{.host.name"), TemplateError::Unclosed { offset: 2 });
    }
}
