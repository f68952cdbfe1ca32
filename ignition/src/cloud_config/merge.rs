//! Merging the cloud-config parts of one user-data, with cloud-init's default rule
//! `dict(replace)+list()+str()`: a key of a later part replaces the earlier value whole.
//! Other `merge_how` rules are reported, not applied.

use serde_yaml_ng::{Mapping, Value};

use super::error::{CloudConfigError, CloudProblem};
use super::yaml_value::wrong;
use crate::ConfigWarning;

pub fn merge_parts(
    parts: &[(String, String)],
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Mapping, CloudConfigError> {
    let mut merged = Mapping::new();
    for (name, text) in parts {
        let v: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| CloudConfigError::new(name, CloudProblem::Yaml(e.to_string())))?;
        let m = match v {
            Value::Null => continue,
            Value::Mapping(m) => m,
            other => return Err(wrong(name, "a mapping of cloud-config keys", &other)),
        };
        for (k, v) in m {
            if k.as_str() == Some("merge_how") || k.as_str() == Some("merge_type") {
                warnings.push(ConfigWarning::new(
                    format!("{name}.{}", k.as_str().unwrap_or("")),
                    "only cloud-init's default merge (later parts replace top-level keys) is supported: ignored",
                ));
                continue;
            }
            merged.insert(k, v);
        }
    }
    Ok(merged)
}
