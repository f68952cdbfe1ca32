//! Absolute paths in configs, normalised lexically as Go's `path.Clean` does; validation
//! refuses a storage path that is not already in this form, as Ignition does.

/// `None` when `p` is not absolute. `..` above `/` stays at `/`.
pub fn normalize(p: &str) -> Option<String> {
    if !p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Every proper ancestor of a normalised path, nearest first, without `/`.
pub fn ancestors(p: &str) -> impl Iterator<Item = &str> {
    let mut cur = p;
    std::iter::from_fn(move || {
        let idx = cur.rfind('/')?;
        cur = &cur[..idx];
        if cur.is_empty() {
            None
        } else {
            Some(cur)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize("/etc//a/./b/").as_deref(), Some("/etc/a/b"));
        assert_eq!(normalize("/a/../../b").as_deref(), Some("/b"));
        assert_eq!(normalize("/").as_deref(), Some("/"));
        assert_eq!(normalize("etc/a"), None);
        assert_eq!(normalize(""), None);
    }

    #[test]
    fn lists_ancestors() {
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), ["/a/b", "/a"]);
        assert_eq!(ancestors("/a").count(), 0);
    }
}
