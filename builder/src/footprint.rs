//! The userland's footprint: everything in the image but the kernel, its modules and the
//! platform components, measured as the image stores it (squashfs, zstd) and raw, with a
//! breakdown by directory. The minimal image's budget is `USERLAND_BUDGET`.

use serde::Serialize;

use crate::emit::squashfs::squashfs_image;
use crate::emit::EmitError;
use crate::steps::agent::AGENT_PATH;
use crate::tree::{Kind, Tree};

/// 10 MB (decimal), compressed, agent included.
pub const USERLAND_BUDGET: u64 = 10_000_000;

/// Not userland: the kernel and its modules (bootc-style and classic places), firmware,
/// and platform components (baked-in OCI layouts, issue #5 item 4).
pub const NOT_USERLAND: &[&str] = &[
    "usr/lib/modules",
    "lib/modules",
    "boot",
    "usr/lib/firmware",
    "lib/firmware",
    "usr/share/harmony/components",
];

#[derive(Debug, Clone, Serialize)]
pub struct DirFootprint {
    /// `/usr/bin`, `/etc`, … (two levels under /usr, one elsewhere).
    pub dir: String,
    /// Regular file bytes.
    pub raw: u64,
    /// A squashfs (zstd) of this directory alone.
    pub compressed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Footprint {
    pub raw: u64,
    /// The whole userland as one squashfs (zstd), as the image would carry it.
    pub compressed: u64,
    pub budget: u64,
    /// Size of /usr/bin/harmony-agent, if the image has it.
    pub agent: Option<u64>,
    pub by_dir: Vec<DirFootprint>,
}

fn excluded(path: &str) -> bool {
    NOT_USERLAND
        .iter()
        .any(|p| path == *p || (path.starts_with(p) && path.as_bytes()[p.len()] == b'/'))
}

/// The grouping key of a path: `usr/X` or the first component.
fn group(path: &str) -> Option<String> {
    let mut parts = path.split('/');
    let first = parts.next().filter(|s| !s.is_empty())?;
    if first == "usr" {
        parts.next().map(|second| format!("usr/{second}"))
    } else {
        Some(first.to_string())
    }
}

/// A tree of the entries `keep` accepts (their parents come along, as directories).
fn subtree(tree: &Tree, keep: impl Fn(&str) -> bool) -> Tree {
    let mut out = Tree::new();
    for (path, entry) in tree.iter() {
        if path.is_empty() || !keep(path) {
            continue;
        }
        if let Some((parent, _)) = path.rsplit_once('/') {
            if out.get_exact(parent).is_none() {
                let meta = tree
                    .get_exact(parent)
                    .map(|e| e.meta.clone())
                    .unwrap_or_else(|| crate::tree::Meta::new(0o755));
                out.mkdir_all(parent, &meta).ok();
            }
        }
        // Keys are already resolved paths: insert below the same key.
        out.insert_exact(path, entry.clone());
    }
    out
}

fn raw_bytes(tree: &Tree) -> u64 {
    tree.iter()
        .map(|(_, e)| match &e.kind {
            Kind::File(c) => c.len() as u64,
            _ => 0,
        })
        .sum()
}

pub fn measure(tree: &Tree) -> Result<Footprint, EmitError> {
    let userland = subtree(tree, |p| !excluded(p));
    let mut groups: Vec<String> = userland.iter().filter_map(|(p, _)| group(p)).collect();
    groups.sort();
    groups.dedup();
    let mut by_dir = Vec::new();
    for g in groups {
        let prefix = format!("{g}/");
        let part = subtree(&userland, |p| p == g || p.starts_with(&prefix));
        by_dir.push(DirFootprint {
            dir: format!("/{g}"),
            raw: raw_bytes(&part),
            compressed: squashfs_image(&part, 0)?.len() as u64,
        });
    }
    by_dir.sort_by(|a, b| b.compressed.cmp(&a.compressed).then(a.dir.cmp(&b.dir)));
    let agent = match tree.get_resolved(AGENT_PATH).map(|e| &e.kind) {
        Some(Kind::File(c)) => Some(c.len() as u64),
        _ => None,
    };
    Ok(Footprint {
        raw: raw_bytes(&userland),
        compressed: squashfs_image(&userland, 0)?.len() as u64,
        budget: USERLAND_BUDGET,
        agent,
        by_dir,
    })
}

impl Footprint {
    pub fn within_budget(&self) -> bool {
        self.compressed <= self.budget
    }

    pub fn text(&self) -> String {
        let mb = |b: u64| format!("{:.2} MB", b as f64 / 1e6);
        let mut s = format!("{:<24} {:>12} {:>12}\n", "directory", "compressed", "raw");
        for d in &self.by_dir {
            s += &format!("{:<24} {:>12} {:>12}\n", d.dir, mb(d.compressed), mb(d.raw));
        }
        s += &format!(
            "{:<24} {:>12} {:>12}\n",
            "userland (one squashfs)",
            mb(self.compressed),
            mb(self.raw)
        );
        if let Some(a) = self.agent {
            s += &format!("harmony-agent binary: {} ({a} bytes)\n", mb(a));
        }
        s += &format!(
            "budget {}: {} ({:.0}% used)\n",
            mb(self.budget),
            if self.within_budget() {
                "within"
            } else {
                "OVER"
            },
            100.0 * self.compressed as f64 / self.budget as f64
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Entry, Meta};
    use std::sync::Arc;

    #[test]
    fn kernel_modules_and_components_are_not_userland() {
        let mut t = Tree::new();
        for (p, n) in [
            ("usr/lib/modules/6.1/vmlinuz", 5000),
            ("usr/bin/busybox", 300),
            ("etc/motd", 10),
            ("usr/share/harmony/components/x", 7000),
        ] {
            t.mkdir_all(p.rsplit_once('/').unwrap().0, &Meta::new(0o755))
                .unwrap();
            t.insert(
                p,
                Entry {
                    kind: Kind::File(Arc::new(vec![7; n])),
                    meta: Meta::new(0o644),
                },
            )
            .unwrap();
        }
        let f = measure(&t).unwrap();
        assert_eq!(f.raw, 310);
        let dirs: Vec<&str> = f.by_dir.iter().map(|d| d.dir.as_str()).collect();
        assert_eq!(dirs.len(), 4, "{dirs:?}");
        assert!(["/usr/bin", "/etc", "/usr/lib", "/usr/share"]
            .iter()
            .all(|d| dirs.contains(d)));
        assert_eq!(
            f.by_dir.iter().find(|d| d.dir == "/usr/lib").unwrap().raw,
            0
        );
    }
}
