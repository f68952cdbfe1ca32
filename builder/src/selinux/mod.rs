//! SELinux labels set at build time, rootless, from the image's own policy: an image
//! whose `/etc/selinux/config` names a policy type (SELINUXTYPE, `targeted` when unset)
//! that has `contexts/files/file_contexts` gets `security.selinux` on every entry, as
//! `setfiles` would label it, so it can boot enforcing without a relabelling boot.
//! Labels go on the root the node boots (squashfs keeps them), not into the OCI layers.

mod file_contexts;

pub use file_contexts::{FileContexts, FileType};

use crate::tree::Tree;

pub const XATTR: &str = "security.selinux";

#[derive(Debug, thiserror::Error)]
#[error("SELinux labels: {0}")]
pub struct SelinuxError(String);

/// What was labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelled {
    pub policy: String,
    pub specs: usize,
    pub entries: usize,
}

/// Label `tree` from its own policy; Ok(None) when it carries none.
pub fn label_tree(tree: &mut Tree) -> Result<Option<Labelled>, SelinuxError> {
    let Some(config) = tree.read_text("etc/selinux/config") else {
        return Ok(None);
    };
    let policy = policy_type(config);
    let dir = format!("etc/selinux/{policy}/contexts/files");
    let Some(base) = tree.read_text(&format!("{dir}/file_contexts")) else {
        return Ok(None);
    };
    let mut contexts = FileContexts::default();
    contexts
        .add(base, &format!("/{dir}/file_contexts"))
        .map_err(SelinuxError)?;
    // Later files override earlier ones, as libselinux loads them.
    for extra in ["file_contexts.homedirs", "file_contexts.local"] {
        if let Some(text) = tree.read_text(&format!("{dir}/{extra}")) {
            contexts
                .add(text, &format!("/{dir}/{extra}"))
                .map_err(SelinuxError)?;
        }
    }
    let contexts = contexts.finish();
    // Path equivalences (`/usr/lib64 /usr/lib`): the local ones before the policy's.
    let subs: Vec<(String, String)> = ["file_contexts.subs", "file_contexts.subs_dist"]
        .iter()
        .filter_map(|f| tree.read_text(&format!("{dir}/{f}")))
        .flat_map(parse_subs)
        .collect();

    let labels: Vec<(String, String)> = tree
        .iter()
        .filter_map(|(path, entry)| {
            let absolute = substitute(&format!("/{path}"), &subs);
            let label = contexts.lookup(&absolute, FileType::of(&entry.kind))??;
            Some((path.to_string(), label.to_string()))
        })
        .collect();
    for (path, label) in &labels {
        if let Some(entry) = tree.get_mut(path) {
            // As libselinux's setfilecon writes it: the context and its NUL.
            let mut value = label.as_bytes().to_vec();
            value.push(0);
            entry.meta.xattrs.insert(XATTR.to_string(), value);
        }
    }
    Ok(Some(Labelled {
        policy,
        specs: contexts.len(),
        entries: labels.len(),
    }))
}

/// SELINUXTYPE from /etc/selinux/config; `targeted` when unset, as libselinux defaults.
fn policy_type(config: &str) -> String {
    config
        .lines()
        .filter_map(|l| l.trim().strip_prefix("SELINUXTYPE="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .next_back()
        .filter(|v| !v.is_empty() && !v.contains('/'))
        .unwrap_or_else(|| "targeted".to_string())
}

fn parse_subs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// The first equivalence whose source is `path` or a directory above it.
fn substitute(path: &str, subs: &[(String, String)]) -> String {
    for (src, dst) in subs {
        if let Some(rest) = path.strip_prefix(src.as_str()) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{dst}{rest}");
            }
        }
    }
    path.to_string()
}

#[cfg(test)]
mod tests;
