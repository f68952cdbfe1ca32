//! The table `harmony build` prints of what it wrote: columns as wide as their widest
//! entry, so a long path (`vaquero/sites/...`) never pushes its row out of line.

use crate::manifest::Artifact;

/// One row per artifact, indented by two spaces: path, kind, size in bytes, sha256 prefix.
pub fn artifact_table(artifacts: &[Artifact]) -> String {
    let width = |f: fn(&Artifact) -> usize| artifacts.iter().map(f).max().unwrap_or(0);
    let path_w = width(|a| a.path.chars().count());
    let kind_w = width(|a| a.kind.chars().count());
    let size_w = width(|a| a.size.to_string().len());
    artifacts
        .iter()
        .map(|a| {
            format!(
                "  {:<path_w$}  {:<kind_w$}  {:>size_w$} bytes  sha256:{}\n",
                a.path,
                a.kind,
                a.size,
                a.sha256.get(..16).unwrap_or(&a.sha256)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(path: &str, kind: &str, size: u64) -> Artifact {
        Artifact {
            path: path.into(),
            kind: kind.into(),
            size,
            sha256: "0123456789abcdef0123".into(),
        }
    }

    #[test]
    fn columns_line_up_whatever_the_path_lengths() {
        let table = artifact_table(&[
            artifact("vmlinuz", "kernel", 14_000_000),
            artifact(
                "vaquero/sites/a-rather-long-site-name/env.yml",
                "vaquero-site-environment",
                512,
            ),
            artifact("disk.raw", "disk", 1),
        ]);
        let rows: Vec<&str> = table.lines().collect();
        assert_eq!(rows.len(), 3, "{table}");
        for column in ["bytes", "sha256:"] {
            let at: Vec<usize> = rows.iter().map(|r| r.find(column).unwrap()).collect();
            assert!(at.windows(2).all(|w| w[0] == w[1]), "{column}:\n{table}");
        }
        // Kinds start in one column too, after the longest path and two spaces.
        let kind_at: Vec<usize> = rows
            .iter()
            .zip(["kernel", "vaquero-site-environment", "disk"])
            .map(|(r, k)| r.rfind(k).unwrap())
            .collect();
        assert!(kind_at.windows(2).all(|w| w[0] == w[1]), "{table}");
        assert!(rows[0].ends_with("sha256:0123456789abcdef"), "{table}");
    }
}
