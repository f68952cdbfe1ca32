//! Merging one config document onto another, with upstream's rules (coreos/ignition
//! `config/merge/merge.go`), on the JSON form of two configs of the same (latest) spec:
//!
//! - objects merge field by field; a field the child leaves out or sets to `null` keeps
//!   the parent's value, any other value of the child wins;
//! - `storage.files[].append` lists are appended, parent's first (upstream's
//!   `IgnoreDuplicates`);
//! - every other list is keyed: an entry whose key the child also has is merged with the
//!   child's entry in the parent's place, the child's new keys are appended in order.
//!   Strings (`sshAuthorizedKeys`, a user's `groups`) are their own key, so those lists
//!   become the union without repeats;
//! - `storage.files`, `.directories` and `.links` share one key space (the path): a child's
//!   directory at a parent's file path removes the file, and the directory is appended;
//! - an `httpHeaders` entry of the child without a value removes the parent's header.

use serde_json::{Map, Value};

/// Lists whose items are appended rather than merged by key.
const APPENDED: &[&str] = &["storage.files.append"];

/// Lists sharing one key space, by the object that holds them.
const NODE_LISTS: &[&str] = &["files", "directories", "links"];

/// The field that identifies an item of the list at `list_path` (field names joined by
/// `.`, indices left out). `None`: the item is its own key (strings, and whole values in
/// the sections Harmony refuses when they are not empty).
fn key_field(list_path: &str) -> Option<&'static str> {
    let last = list_path.rsplit('.').next().unwrap_or(list_path);
    match list_path {
        "storage.files" | "storage.directories" | "storage.links" => Some("path"),
        "systemd.units" | "systemd.units.dropins" => Some("name"),
        "passwd.users" | "passwd.groups" => Some("name"),
        "ignition.config.merge" | "ignition.security.tls.certificateAuthorities" => Some("source"),
        "storage.disks" => Some("device"),
        "storage.raid" | "storage.luks" => Some("name"),
        "storage.filesystems" => Some("device"),
        _ if last == "httpHeaders" => Some("name"),
        _ => None,
    }
}

/// Merge `child` onto `parent`. Both are documents that passed validation.
pub fn merge(parent: &Value, child: &Value) -> Value {
    merge_at(parent, child, "")
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else {
        format!("{path}.{field}")
    }
}

fn merge_at(parent: &Value, child: &Value, path: &str) -> Value {
    match (parent, child) {
        (_, Value::Null) => parent.clone(),
        (Value::Object(p), Value::Object(c)) => Value::Object(merge_object(p, c, path)),
        (Value::Array(p), Value::Array(c)) => {
            let field = path.rsplit('.').next().unwrap_or(path);
            Value::Array(merge_list(p, c, path, field, None))
        }
        // A scalar, or a value the parent did not set: the child's wins.
        _ => child.clone(),
    }
}

fn merge_object(
    parent: &Map<String, Value>,
    child: &Map<String, Value>,
    path: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    let shared = (path == "storage").then(|| NodeKeys::of(child));
    for (k, pv) in parent {
        let field_path = join(path, k);
        let merged = match (pv, child.get(k)) {
            (Value::Array(p), Some(Value::Array(c))) => {
                Value::Array(merge_list(p, c, &field_path, k, shared.as_ref()))
            }
            (Value::Array(p), None | Some(Value::Null)) if shared.is_some() => {
                // The child may still claim these paths in a sibling list.
                Value::Array(merge_list(p, &[], &field_path, k, shared.as_ref()))
            }
            (pv, Some(cv)) => merge_at(pv, cv, &field_path),
            (pv, None) => pv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    for (k, cv) in child {
        if !parent.contains_key(k) {
            out.insert(k.clone(), cv.clone());
        }
    }
    out
}

/// The paths the child declares in each of files/directories/links.
struct NodeKeys(Vec<(String, &'static str)>);

impl NodeKeys {
    fn of(child: &Map<String, Value>) -> NodeKeys {
        let mut keys = Vec::new();
        for list in NODE_LISTS {
            for item in child
                .get(*list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                keys.push((key_of(item, Some("path")), *list));
            }
        }
        NodeKeys(keys)
    }

    /// Whether the child declares `key` in a list other than `list`.
    fn elsewhere(&self, key: &str, list: &str) -> bool {
        self.0.iter().any(|(k, l)| k == key && *l != list)
    }
}

fn key_of(item: &Value, field: Option<&str>) -> String {
    match (field, item) {
        (_, Value::String(s)) => s.clone(),
        (Some(f), Value::Object(o)) => match o.get(f) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
        _ => item.to_string(),
    }
}

fn merge_list(
    parent: &[Value],
    child: &[Value],
    path: &str,
    field: &str,
    nodes: Option<&NodeKeys>,
) -> Vec<Value> {
    if APPENDED.contains(&path) {
        return parent.iter().chain(child).cloned().collect();
    }
    let kf = key_field(path);
    let is_headers = field == "httpHeaders";
    let shared = nodes.filter(|_| NODE_LISTS.contains(&field));
    let mut out = Vec::with_capacity(parent.len() + child.len());
    for p in parent {
        let key = key_of(p, kf);
        match child.iter().find(|c| key_of(c, kf) == key) {
            Some(c) if is_headers && c.get("value").is_none_or(Value::is_null) => {}
            Some(c) => out.push(merge_at(p, c, path)),
            None if shared.is_some_and(|n| n.elsewhere(&key, field)) => {}
            None => out.push(p.clone()),
        }
    }
    for c in child {
        let key = key_of(c, kf);
        if !parent.iter().any(|p| key_of(p, kf) == key) {
            out.push(c.clone());
        }
    }
    out
}
