//! NoCloud meta-data: a YAML (or JSON) mapping; the keys the node uses are `instance-id`
//! and `local-hostname`.

use serde_yaml_ng::Value;

use super::error::{CloudConfigError, CloudProblem};
use super::yaml_value::{string_of, wrong};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaData {
    pub instance_id: Option<String>,
    pub local_hostname: Option<String>,
}

impl MetaData {
    pub fn parse(bytes: &[u8]) -> Result<MetaData, CloudConfigError> {
        let v: Value = serde_yaml_ng::from_slice(bytes)
            .map_err(|e| CloudConfigError::new("meta-data", CloudProblem::Yaml(e.to_string())))?;
        let m = match &v {
            Value::Null => return Ok(MetaData::default()),
            Value::Mapping(m) => m,
            other => return Err(wrong("meta-data", "a mapping", other)),
        };
        let get = |k: &str| -> Result<Option<String>, CloudConfigError> {
            m.get(k)
                .map(|v| string_of(v, &format!("meta-data.{k}")))
                .transpose()
        };
        Ok(MetaData {
            instance_id: get("instance-id")?,
            local_hostname: get("local-hostname")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_json_and_errors() {
        assert_eq!(
            MetaData::parse(b"instance-id: iid-1\nlocal-hostname: n1.example\n").unwrap(),
            MetaData {
                instance_id: Some("iid-1".into()),
                local_hostname: Some("n1.example".into())
            }
        );
        assert_eq!(
            MetaData::parse(br#"{"instance-id": "i-2"}"#)
                .unwrap()
                .instance_id
                .as_deref(),
            Some("i-2")
        );
        assert_eq!(MetaData::parse(b"").unwrap(), MetaData::default());
        assert_eq!(
            MetaData::parse(b"- a").unwrap_err().to_string(),
            "meta-data: expected a mapping, found a list"
        );
    }
}
