//! Reading a document's keys the way Ignition 2.14 does (Go's encoding/json, then its
//! validator's "Unused key" report), so that what Ignition accepts is accepted:
//!
//! - a key no field of the declared spec has is dropped with the warning `Unused key K`;
//! - a key that names a field only when case is ignored (`"Storage"`) is applied, since Go
//!   matches keys case-insensitively, and still warned about, as Ignition warns;
//! - a field that appeared in a later spec than the declared one ([`LATER_FIELDS`]) is
//!   unused in that spec: dropped with the same warning, never applied.
//!
//! The strictness lives in `harmony-agent validate --strict`, which fails on warnings.
//! Works as a `serde` deserializer over a `serde_json::Value`: at each struct it sees the
//! struct's field names, so the key rules need no second copy of the schema.

use std::cell::RefCell;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use crate::error::{ConfigError, Problem};
use crate::node_config::ConfigWarning;
use crate::version::SpecVersion;

/// Fields by JSON path without indices, and the spec version that introduced them.
const LATER_FIELDS: &[(&str, SpecVersion)] = &[
    ("ignition.proxy", SpecVersion::V3_1),
    ("ignition.config.merge.httpHeaders", SpecVersion::V3_1),
    (
        "ignition.security.tls.certificateAuthorities.httpHeaders",
        SpecVersion::V3_1,
    ),
    ("ignition.config.replace.httpHeaders", SpecVersion::V3_1),
    ("storage.files.contents.httpHeaders", SpecVersion::V3_1),
    ("storage.files.append.httpHeaders", SpecVersion::V3_1),
    ("storage.luks", SpecVersion::V3_2),
    ("passwd.users.shouldExist", SpecVersion::V3_2),
    ("passwd.groups.shouldExist", SpecVersion::V3_2),
    ("kernelArguments", SpecVersion::V3_3),
];

/// Deserialize `value` (found at JSON path `base`, "" for a document) as declared at
/// `version`, adding a warning per unused key. Shape errors name their JSON path.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: Value,
    base: &str,
    version: SpecVersion,
    warnings: &RefCell<Vec<ConfigWarning>>,
) -> Result<T, ConfigError> {
    read(value, base, version, warnings).map(|(t, _)| t)
}

/// As [`from_value`], also giving the value as it was used: unused keys removed,
/// case-insensitive matches renamed to their field (what a merge must start from).
pub(crate) fn read<T: DeserializeOwned>(
    value: Value,
    base: &str,
    version: SpecVersion,
    warnings: &RefCell<Vec<ConfigWarning>>,
) -> Result<(T, Value), ConfigError> {
    let edits = RefCell::new(Vec::new());
    let de = Lenient {
        value: value.clone(),
        path: base.to_string(),
        pointer: String::new(),
        version,
        warnings,
        edits: &edits,
    };
    let typed = serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (base, inner.as_str()) {
            (b, ".") => b.to_string(),
            ("", i) => i.to_string(),
            (b, i) => format!("{b}.{i}"),
        };
        ConfigError::new(path, Problem::Shape(e.into_inner().to_string()))
    })?;
    let mut used = value;
    for edit in edits.into_inner() {
        if let Some(Value::Object(map)) = used.pointer_mut(&edit.parent) {
            if let Some(v) = map.remove(&edit.key) {
                if let Some(field) = edit.rename_to {
                    map.entry(field).or_insert(v);
                }
            }
        }
    }
    Ok((typed, used))
}

/// A key of the object at JSON pointer `parent` that is dropped or renamed.
struct Edit {
    parent: String,
    key: String,
    rename_to: Option<&'static str>,
}

/// The warning Ignition 2.14 prints for a key it does not use.
pub fn unused_key(path: &str, key: &str) -> ConfigWarning {
    ConfigWarning::new(path, format!("Unused key {key}"))
}

struct Lenient<'w> {
    value: Value,
    /// The JSON path warnings and errors are reported at.
    path: String,
    /// The same place as a JSON pointer into the document, for [`Edit`]s.
    pointer: String,
    version: SpecVersion,
    warnings: &'w RefCell<Vec<ConfigWarning>>,
    edits: &'w RefCell<Vec<Edit>>,
}

impl<'w> Lenient<'w> {
    fn child(&self, value: Value, path: String, step: &str) -> Lenient<'w> {
        let step = step.replace('~', "~0").replace('/', "~1");
        Lenient {
            value,
            path,
            pointer: format!("{}/{step}", self.pointer),
            version: self.version,
            warnings: self.warnings,
            edits: self.edits,
        }
    }

    fn edit(&self, key: &str, rename_to: Option<&'static str>) {
        self.edits.borrow_mut().push(Edit {
            parent: self.pointer.clone(),
            key: key.to_string(),
            rename_to,
        });
    }

    fn warn(&self, w: ConfigWarning) {
        self.warnings.borrow_mut().push(w);
    }

    /// The object's keys mapped onto `fields` by Ignition's rules.
    fn keep_used(
        &self,
        map: &Map<String, Value>,
        fields: &[&'static str],
    ) -> Vec<(&'static str, Value)> {
        let mut used = Vec::new();
        for (key, value) in map.iter() {
            let key_path = join(&self.path, key);
            let field = if let Some(f) = fields.iter().find(|f| **f == key) {
                Some(*f)
            } else {
                // Go takes an exact match first, then any case-insensitive one.
                self.warn(unused_key(&key_path, key));
                fields
                    .iter()
                    .find(|f| f.eq_ignore_ascii_case(key) && !map.contains_key(**f))
                    .copied()
            };
            let Some(field) = field else {
                self.edit(key, None);
                continue;
            };
            let field_path = join(&self.path, field);
            if let Some(since) = introduced_in(&field_path) {
                if self.version < since {
                    if field == key {
                        self.warn(unused_key(&key_path, key));
                    }
                    self.edit(key, None);
                    continue;
                }
            }
            if field != key {
                self.edit(key, Some(field));
            }
            used.push((field, value.clone()));
        }
        used
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `passwd.users[2].shouldExist` → the version that introduced `passwd.users.shouldExist`.
fn introduced_in(path: &str) -> Option<SpecVersion> {
    let mut plain = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => in_index = true,
            ']' => in_index = false,
            c if !in_index => plain.push(c),
            _ => {}
        }
    }
    LATER_FIELDS
        .iter()
        .find(|(p, _)| *p == plain)
        .map(|(_, v)| *v)
}

impl<'de> de::Deserializer<'de> for Lenient<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        de::Deserializer::deserialize_any(self.value, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Array(ref items) => {
                let items: Vec<Lenient> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        self.child(v.clone(), format!("{}[{i}]", self.path), &i.to_string())
                    })
                    .collect();
                visitor.visit_seq(Elements(items.into_iter()))
            }
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.value {
            Value::Object(ref map) => {
                let used = self.keep_used(map, fields);
                let entries: Vec<(&'static str, Lenient)> = used
                    .into_iter()
                    .map(|(k, v)| {
                        let p = join(&self.path, k);
                        (k, self.child(v, p, k))
                    })
                    .collect();
                visitor.visit_map(Entries {
                    iter: entries.into_iter(),
                    next: None,
                })
            }
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.value.deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct tuple tuple_struct map identifier ignored_any
    }
}

struct Elements<'w>(std::vec::IntoIter<Lenient<'w>>);

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'w> {
    iter: std::vec::IntoIter<(&'static str, Lenient<'w>)>,
    next: Option<Lenient<'w>>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.next = Some(value);
        let key: StrDeserializer<'static, serde_json::Error> = key.into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        match self.next.take() {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::custom("a value was asked for before its key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Config;
    use serde_json::json;

    fn parse_at(v: Value, version: SpecVersion) -> (Config, Vec<String>) {
        let warnings = RefCell::new(Vec::new());
        let cfg: Config = from_value(v, "", version, &warnings).unwrap();
        let w = warnings
            .into_inner()
            .iter()
            .map(|w| w.to_string())
            .collect();
        (cfg, w)
    }

    #[test]
    fn unknown_keys_are_dropped_with_ignitions_warning() {
        let (cfg, w) = parse_at(
            json!({"ignition": {"version": "3.3.0"},
                   "storage": {"files": [{"path": "/etc/x", "overwite": true}]}}),
            SpecVersion::V3_3,
        );
        assert_eq!(w, ["storage.files[0].overwite: Unused key overwite"]);
        assert_eq!(cfg.storage.unwrap().files.unwrap()[0].overwrite, None);
    }

    #[test]
    fn keys_match_case_insensitively_as_in_go_and_are_warned_about() {
        let (cfg, w) = parse_at(
            json!({"ignition": {"version": "3.3.0"},
                   "Storage": {"Files": [{"PATH": "/etc/x"}]}}),
            SpecVersion::V3_3,
        );
        assert_eq!(
            w,
            [
                "Storage: Unused key Storage",
                "storage.Files: Unused key Files",
                "storage.files[0].PATH: Unused key PATH"
            ]
        );
        assert_eq!(cfg.storage.unwrap().files.unwrap()[0].path, "/etc/x");
    }

    #[test]
    fn the_used_value_is_what_a_merge_starts_from() {
        let warnings = RefCell::new(Vec::new());
        let (_, used): (Config, Value) = super::read(
            json!({"ignition": {"version": "3.0.0"},
                   "Storage": {"files": [{"path": "/a/b", "x/y": 1}]},
                   "passwd": {"users": [{"name": "core", "shouldExist": false}]}}),
            "",
            SpecVersion::V3_0,
            &warnings,
        )
        .unwrap();
        assert_eq!(
            used,
            json!({"ignition": {"version": "3.0.0"},
                   "storage": {"files": [{"path": "/a/b"}]},
                   "passwd": {"users": [{"name": "core"}]}})
        );
    }

    #[test]
    fn later_fields_are_unused_in_an_older_spec() {
        let doc = json!({"ignition": {"version": "3.0.0", "proxy": {"httpProxy": "http://p"}},
                         "passwd": {"users": [{"name": "core", "shouldExist": false}]},
                         "kernelArguments": {"shouldExist": ["a"]}});
        let (cfg, w) = parse_at(doc.clone(), SpecVersion::V3_0);
        assert_eq!(
            w,
            [
                // A level's own keys first, then what lies inside them.
                "kernelArguments: Unused key kernelArguments",
                "ignition.proxy: Unused key proxy",
                "passwd.users[0].shouldExist: Unused key shouldExist"
            ]
        );
        assert!(cfg.ignition.proxy.is_none() && cfg.kernel_arguments.is_none());
        assert_eq!(cfg.passwd.unwrap().users.unwrap()[0].should_exist, None);
        // The same fields are used at the version that has them.
        let (cfg, w) = parse_at(doc, SpecVersion::V3_3);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            cfg.passwd.unwrap().users.unwrap()[0].should_exist,
            Some(false)
        );
    }

    #[test]
    fn shape_errors_keep_their_path() {
        let warnings = RefCell::new(Vec::new());
        let err = from_value::<Config>(
            json!({"ignition": {"version": "3.3.0"}, "storage": {"files": [{"path": 5}]}}),
            "",
            SpecVersion::V3_3,
            &warnings,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("storage.files[0].path: invalid type"),
            "{err}"
        );
    }
}
