//! An `os/` document turned into the iPXE script Vaquero's agent serves a host
//! (its "translation to iPXE"): kernel and initrds by URL, the command line from the
//! single-key maps, every string filled with the host's template data.

use serde_json::Value;

use super::template::{render, TemplateError};

#[derive(Debug, thiserror::Error)]
pub enum IpxeError {
    #[error("os document: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    #[error("os document: {field}: {problem}")]
    Shape { field: String, problem: String },
    #[error("os document: {field}: {source}")]
    Template {
        field: String,
        source: TemplateError,
    },
}

pub fn ipxe_script(os_yml: &str, data: &Value) -> Result<String, IpxeError> {
    let os: Value = serde_yaml_ng::from_str(os_yml)?;
    let fill = |field: &str, v: &Value| -> Result<String, IpxeError> {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(IpxeError::Shape {
                    field: field.into(),
                    problem: "expected text".into(),
                })
            }
        };
        render(&text, data).map_err(|source| IpxeError::Template {
            field: field.into(),
            source,
        })
    };
    let kernel = fill(
        "boot.kernel",
        os.pointer("/boot/kernel").unwrap_or(&Value::Null),
    )?;
    let mut initrds = Vec::new();
    for (i, v) in os
        .pointer("/boot/initrd")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        initrds.push(fill(&format!("boot.initrd[{i}]"), v)?);
    }
    let mut args = Vec::new();
    for (i, item) in os
        .get("cmdline")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("cmdline[{i}]");
        let map = item
            .as_object()
            .filter(|m| m.len() == 1)
            .ok_or_else(|| IpxeError::Shape {
                field: field.clone(),
                problem: "expected a single-key map".into(),
            })?;
        let (k, v) = map.iter().next().expect("one key");
        let values = match v {
            Value::Array(vs) => vs.clone(),
            other => vec![other.clone()],
        };
        for v in &values {
            let v = fill(&field, v)?;
            args.push(if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            });
        }
    }
    let mut s = format!("#!ipxe\nkernel {kernel} {}\n", args.join(" "));
    for i in &initrds {
        s += &format!("initrd {i}\n");
    }
    s += "boot\n";
    Ok(s)
}
