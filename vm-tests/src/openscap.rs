//! OpenSCAP's verdicts on a built image's root: `oscap-chroot ROOT xccdf eval` with SCAP
//! Security Guide content, read back from its XCCDF results. Shared by the flavour scan
//! (tests/flavours.rs) and debian-node's (tests/debian_node.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where Debian's ssg-* packages put their data streams.
pub const SSG_CONTENT: &str = "/usr/share/xml/scap/ssg/content";
/// The rule ids' common prefix in ssg content, left out of [`Scan::results`].
const RULE_PREFIX: &str = "xccdf_org.ssgproject.content_rule_";

/// Rule id (without [`RULE_PREFIX`]) → result (`pass`, `fail`, `notapplicable`, …).
pub struct Scan {
    pub results: BTreeMap<String, String>,
}

impl Scan {
    pub fn count(&self, result: &str) -> usize {
        self.results.values().filter(|r| *r == result).count()
    }

    pub fn with(&self, result: &str) -> BTreeSet<String> {
        self.results
            .iter()
            .filter(|(_, r)| *r == result)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// "N pass, N fail, N notapplicable, N notchecked, N error".
    pub fn summary(&self) -> String {
        ["pass", "fail", "notapplicable", "notchecked", "error"]
            .iter()
            .map(|r| format!("{} {r}", self.count(r)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The image's root tree written out at `root` (owners as the caller: the scan reads
/// modes, contents and links), for a scanner that reads a directory.
pub fn materialise_image(image: &Path, root: &Path) {
    harmony::steps::run_in_root::materialise(
        &harmony::verify::image_tree(image).expect("reading the image's root tree"),
        root,
        harmony::steps::run_in_root::IdMapping::CallerOnly,
    )
    .expect("writing the image's root tree out");
}

/// `oscap-chroot ROOT xccdf eval --profile PROFILE CONTENT` on the directory `root`,
/// results under `work`. A missing tool or content is a failure, never a skip:
/// scripts/setup-host.sh installs openscap-utils and the ssg content.
pub fn scan(root: &Path, work: &Path, content: &str, profile: &str) -> Scan {
    let oscap = harmony_test_support::find_tool("oscap-chroot").expect(
        "oscap-chroot not installed (Debian package openscap-utils; scripts/setup-host.sh installs it)",
    );
    let content: PathBuf = Path::new(SSG_CONTENT).join(content);
    assert!(
        content.exists(),
        "SCAP content {} not installed (Debian packages ssg-nondebian, ssg-debian; scripts/setup-host.sh installs them)",
        content.display()
    );
    let results = work.join("results.xml");
    let status = std::process::Command::new(oscap)
        .arg(root)
        .args(["xccdf", "eval", "--profile", profile, "--results"])
        .arg(&results)
        .arg(&content)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running oscap-chroot");
    // 0: all pass; 2: some rules failed. Anything else: the scan itself broke.
    assert!(
        matches!(status.code(), Some(0) | Some(2)),
        "oscap-chroot: {status}"
    );
    let xml = std::fs::read_to_string(&results).expect("oscap's results");
    let mut out = BTreeMap::new();
    let opening = format!("<rule-result idref=\"{RULE_PREFIX}");
    for chunk in xml.split(opening.as_str()).skip(1) {
        let id = chunk.split('"').next().unwrap_or_default().to_string();
        let result = chunk
            .split("<result>")
            .nth(1)
            .and_then(|r| r.split("</result>").next())
            .unwrap_or_else(|| panic!("rule {id}: no <result> in {}", results.display()))
            .to_string();
        out.insert(id, result);
    }
    assert!(!out.is_empty(), "no rule results in {}", results.display());
    Scan { results: out }
}
