//! docs/architecture.md maps behaviour to files; a file it names that has moved or gone
//! sends a newcomer nowhere. Every repository path the page names must exist:
//! - every `dir/…/file.ext` (a slash and a known extension) or `dir/` (a trailing slash),
//!   from the repository root, in prose, tables and diagrams alike;
//! - every path in backticks with a slash (`.ci/run`), from the repository root;
//! - every bare `name.rs`, somewhere in the tree;
//! - every Markdown link, from docs/.
//!
//! Paths on the image (`/usr/bin/harmony-agent`) start with a slash and are not checked.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

const DOC: &str = "docs/architecture.md";

/// File kinds the page names in the tree (a slash and one of these is a repository path).
const EXTENSIONS: &[&str] = &["rs", "sh", "md", "toml", "tsv", "packages", "yaml"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support sits in the workspace root")
        .to_path_buf()
}

/// Runs of characters a path is made of.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "_.-/*".contains(c)))
        .map(|w| w.trim_end_matches('.'))
        .filter(|w| !w.is_empty())
}

fn has_known_extension(word: &str) -> bool {
    let last = word.rsplit('/').next().unwrap_or(word);
    last.rsplit_once('.')
        .is_some_and(|(stem, ext)| !stem.is_empty() && EXTENSIONS.contains(&ext))
}

/// The repository paths `text` names, from the root, and the bare `.rs` names.
fn named_paths(text: &str) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut bare = Vec::new();
    for w in words(text) {
        if w.starts_with('/') || w.starts_with("//") {
            continue;
        }
        if w.contains('/') && (w.ends_with('/') || has_known_extension(w)) {
            paths.push(w.to_string());
        } else if !w.contains('/') && has_known_extension(w) && w.ends_with(".rs") {
            bare.push(w.to_string());
        }
    }
    for (i, span) in text.split('`').enumerate() {
        let in_backticks = i % 2 == 1;
        if in_backticks
            && span.contains('/')
            && !span.starts_with('/')
            && !span.contains("://")
            && !span.contains(char::is_whitespace)
        {
            paths.push(span.to_string());
        }
    }
    paths.sort();
    paths.dedup();
    bare.sort();
    bare.dedup();
    (paths, bare)
}

/// Markdown link targets (`[text](target)`) that are not URLs or anchors.
fn link_targets(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target))
        .map(|t| t.split('#').next().unwrap_or(t))
        .filter(|t| !t.is_empty() && !t.contains("://"))
        .map(str::to_string)
        .collect()
}

/// `path` exists; a `*` in its last component matches any run of characters.
fn exists(root: &Path, path: &str) -> bool {
    let Some((dir, pattern)) = path.rsplit_once('/').filter(|(_, last)| last.contains('*')) else {
        return root.join(path).exists();
    };
    let (prefix, suffix) = pattern.split_once('*').unwrap_or((pattern, ""));
    std::fs::read_dir(root.join(dir)).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(suffix)
        })
    })
}

/// Every file name in the tree, build output and git's own files left out.
fn file_names(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["target", ".git"].contains(&name.as_str()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            file_names(&path, out);
        } else {
            out.push(name);
        }
    }
}

#[test]
fn every_path_docs_architecture_md_names_exists() {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join(DOC)).unwrap();
    let (paths, bare) = named_paths(&text);
    assert!(paths.len() > 50, "{DOC} names too few paths: {paths:?}");
    let mut names = Vec::new();
    file_names(&root, &mut names);
    let mut missing: Vec<String> = paths.into_iter().filter(|p| !exists(&root, p)).collect();
    missing.extend(
        bare.into_iter()
            .filter(|b| !names.contains(b))
            .map(|b| format!("{b} (no file of that name in the tree)")),
    );
    missing.extend(
        link_targets(&text)
            .into_iter()
            .filter(|t| !root.join("docs").join(t).exists())
            .map(|t| format!("{t} (a link, from docs/)")),
    );
    assert!(
        missing.is_empty(),
        "{DOC} names paths that do not exist (from the repository root):\n{}",
        missing.join("\n")
    );
}

#[test]
fn paths_are_found_in_prose_tables_and_backticks() {
    let (paths, bare) = named_paths(
        "see `builder/src/cli.rs`, agent/src/plan/ and (`.ci/run`); `/usr/bin/x` \
         docker://r/x:1 http/tftp main.rs. [a](boot-flow.md#x) agent/src/apply.rs.",
    );
    assert_eq!(
        paths,
        [
            ".ci/run",
            "agent/src/apply.rs",
            "agent/src/plan/",
            "builder/src/cli.rs"
        ]
    );
    assert_eq!(bare, ["main.rs"]);
    assert_eq!(
        link_targets("[a](boot-flow.md#x) [b](https://e.org)"),
        ["boot-flow.md"]
    );
    assert!(exists(&repo_root(), "vm-tests/tests/*.rs"));
    assert!(!exists(&repo_root(), "vm-tests/tests/*.nothing"));
}
