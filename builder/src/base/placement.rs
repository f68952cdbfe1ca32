//! Where a packaged path goes in a Harmony image: usrmerge (`bin` → `usr/bin`, ...), the
//! kernel bootc-style under `usr/lib/modules/KVER/`, and documentation dropped.

/// Top-level directories that are symlinks into `usr/` in a merged-/usr image.
pub const MERGED_DIRS: [&str; 4] = ["bin", "sbin", "lib", "lib64"];

/// Documentation, translations and packaging metadata (`usr/share/bug` is reportbug's).
pub const DROPPED: [&str; 6] = [
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/lintian",
    "usr/share/locale",
    "usr/share/bug",
];

/// The path a packaged entry takes in the image, or None to leave it out.
pub fn place(path: &str) -> Option<String> {
    let path = usrmerge(path);
    if DROPPED
        .iter()
        .any(|d| path == *d || path.starts_with(&format!("{d}/")))
    {
        return None;
    }
    if let Some(name) = path.strip_prefix("boot/") {
        if let Some(kver) = name.strip_prefix("vmlinuz-") {
            return Some(format!("usr/lib/modules/{kver}/vmlinuz"));
        }
        if let Some(kver) = name.strip_prefix("config-") {
            return Some(format!("usr/lib/modules/{kver}/config"));
        }
        // System.map and anything else a kernel package puts in /boot.
        return None;
    }
    Some(path)
}

/// `bin/x` → `usr/bin/x`, `lib64` → `usr/lib64`; other paths unchanged.
pub fn usrmerge(path: &str) -> String {
    let (top, rest) = path.split_once('/').unwrap_or((path, ""));
    if MERGED_DIRS.contains(&top) {
        if rest.is_empty() {
            format!("usr/{top}")
        } else {
            format!("usr/{top}/{rest}")
        }
    } else {
        path.to_string()
    }
}

/// A package whose only files are documentation or bug-report metadata is a metapackage
/// (its Depends are the point).
pub fn is_documentation_only<'a>(mut files: impl Iterator<Item = &'a str>) -> bool {
    files.all(|p| {
        ["usr/share/doc/", "usr/share/bug/"]
            .iter()
            .any(|d| p.starts_with(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_paths() {
        assert_eq!(place("bin/busybox").as_deref(), Some("usr/bin/busybox"));
        assert_eq!(place("sbin").as_deref(), Some("usr/sbin"));
        assert_eq!(
            place("lib/modules/6.1.0-56-cloud-amd64/kernel/x.ko").as_deref(),
            Some("usr/lib/modules/6.1.0-56-cloud-amd64/kernel/x.ko")
        );
        assert_eq!(place("binary/x").as_deref(), Some("binary/x"));
        assert_eq!(
            place("boot/vmlinuz-6.1.0-56-cloud-amd64").as_deref(),
            Some("usr/lib/modules/6.1.0-56-cloud-amd64/vmlinuz")
        );
        assert_eq!(
            place("boot/config-6.1.0-56-cloud-amd64").as_deref(),
            Some("usr/lib/modules/6.1.0-56-cloud-amd64/config")
        );
        assert_eq!(place("boot/System.map-6.1.0-56-cloud-amd64"), None);
        assert_eq!(place("usr/share/doc/busybox-static/copyright"), None);
        assert_eq!(place("usr/share/man"), None);
        assert_eq!(
            place("usr/share/docs/x").as_deref(),
            Some("usr/share/docs/x")
        );
    }

    #[test]
    fn metapackages() {
        // What linux-image-cloud-amd64 really ships.
        assert!(is_documentation_only(
            [
                "usr/share/bug/linux-image-cloud-amd64/presubj",
                "usr/share/doc/linux-image-cloud-amd64"
            ]
            .into_iter()
        ));
        assert!(!is_documentation_only(
            ["usr/share/doc/x/copyright", "usr/bin/x"].into_iter()
        ));
    }
}
