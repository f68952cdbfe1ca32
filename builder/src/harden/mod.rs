//! The hardening profile: one list of rules, CIS-derived, each of which both APPLIES
//! (edits a tree: the `hardening` build step) and CHECKS (a pure look at a tree:
//! `harmony verify`). Applying a rule and then checking it must pass; that is tested
//! for every rule.
//!
//! Where a CIS item clashes with what a Kubernetes node needs (IP forwarding, strict
//! reverse-path filtering, `kernel.modules_disabled`, a default-drop FORWARD chain),
//! the rule says so in its own file and in `KUBERNETES_OVERRIDES`, on purpose and visibly.

pub mod audit;
pub mod augenrules;
pub mod banners;
pub mod boot_hook;
pub mod core_dumps;
pub mod cron;
pub mod firewall;
pub mod flavour;
pub mod journald;
pub mod kubelet;
pub mod login_defs;
pub mod logs;
pub mod modules;
pub mod mounts;
pub mod password_hashing;
pub mod record;
pub mod setuid;
pub mod shadow;
pub mod shell_timeout;
pub mod single_user;
pub mod ssh;
pub mod su_wheel;
pub mod sudo;
pub mod sysctl;
pub mod systemd_conf;
pub mod umask;
pub mod unowned;
pub mod world_writable;

use serde::Serialize;

pub use flavour::Flavour;

use crate::tree::{Entry, Kind, Meta, Tree, TreeError};

/// The one profile there is.
pub const PROFILE_CIS: &str = "cis";

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "details", rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    /// Every problem found, each naming the path and what is wrong.
    Fail(Vec<String>),
    /// The thing the rule protects is not in the image (no sshd, no auditd…).
    NotApplicable(String),
}

impl Outcome {
    /// Pass unless `problems` has any.
    pub fn from_problems(problems: Vec<String>) -> Outcome {
        if problems.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail(problems)
        }
    }
}

pub type ApplyFn = fn(&mut Tree, &Flavour) -> Result<(), TreeError>;
pub type CheckFn = fn(&Tree, &Flavour) -> Outcome;

pub struct Rule {
    /// Stable id, used in `exclude:` and in reports.
    pub id: &'static str,
    pub title: &'static str,
    /// The benchmark items it derives from (CIS CentOS Linux / RHEL 9 numbering).
    pub cis: &'static str,
    pub apply: ApplyFn,
    pub check: CheckFn,
}

/// The CIS profile, in the order rules are applied. The rules that judge every file
/// (world-writable, unowned, setuid) come after everything that adds files; `firewall`
/// and the mount/sysctl boot hooks before them.
pub const RULES: &[Rule] = &[
    sysctl::NETWORK,
    sysctl::KERNEL,
    sysctl::BPF,
    core_dumps::OFF,
    modules::BLACKLIST,
    mounts::TMP,
    mounts::DEV_SHM,
    shadow::ACCOUNT_FILES,
    password_hashing::HASHING,
    kubelet::FILES,
    logs::PERMISSIONS,
    ssh::ROOT_LOGIN,
    ssh::CRYPTO,
    umask::UMASK,
    shell_timeout::TIMEOUT,
    banners::LOGIN,
    sudo::DEFAULTS,
    su_wheel::WHEEL,
    single_user::AUTH,
    cron::PERMISSIONS,
    journald::STORAGE,
    audit::RULES,
    firewall::DEFAULT_DENY,
    world_writable::STICKY,
    unowned::OWNED,
    setuid::ALLOW_LIST,
];

/// CIS items a Kubernetes node must NOT follow, and what it does instead.
pub const KUBERNETES_OVERRIDES: &[(&str, &str)] = &[
    (
        "net.ipv4.ip_forward = 0 (CIS 3.3.1)",
        "set to 1: pod traffic is routed through the node",
    ),
    (
        "net.ipv6.conf.all.forwarding = 0 (CIS 3.3.1)",
        "set to 1: the same for IPv6 and dual-stack clusters",
    ),
    (
        "net.ipv4.conf.*.rp_filter = 1, strict (CIS 3.3.7)",
        "set to 2, loose: CNI plugins and IPVS reply over interfaces other than the one a packet came in on",
    ),
    (
        "kernel.modules_disabled = 1",
        "left unset: kube-proxy (ip_vs), CNI and the agent load modules after boot",
    ),
    (
        "a default-drop FORWARD chain (CIS 3.4.x)",
        "forward stays accept in Harmony's table: the CNI plugin owns pod forwarding",
    ),
];

pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

pub fn rule_ids() -> Vec<&'static str> {
    RULES.iter().map(|r| r.id).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    #[error("hardening rule {rule}: {source}")]
    Apply {
        rule: &'static str,
        #[source]
        source: TreeError,
    },
}

/// Apply every rule of the profile but `exclude` to `tree`, in order, and record what
/// was applied in the image (`record::RECORD_PATH`), so `harmony verify` can tell an
/// excluded rule from a missing one.
pub fn apply_profile(tree: &mut Tree, exclude: &[String]) -> Result<(), HardenError> {
    let flavour = Flavour::detect(tree);
    let mut applied = Vec::new();
    for r in RULES {
        if exclude.iter().any(|e| e == r.id) {
            continue;
        }
        (r.apply)(tree, &flavour).map_err(|source| HardenError::Apply { rule: r.id, source })?;
        applied.push(r.id);
    }
    record::write(tree, PROFILE_CIS, &applied, exclude).map_err(|source| HardenError::Apply {
        rule: "record",
        source,
    })
}

/// One rule's verdict on an image.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub id: &'static str,
    pub title: &'static str,
    pub cis: &'static str,
    /// Excluded by the recipe the image was built from (recorded in the image).
    pub excluded: bool,
    pub outcome: Outcome,
}

impl RuleReport {
    pub fn failed(&self) -> bool {
        !self.excluded && matches!(self.outcome, Outcome::Fail(_))
    }
}

/// Check every rule against `tree`. Rules the image's record says were excluded are
/// still checked (and reported) but do not fail.
pub fn check_all(tree: &Tree) -> Vec<RuleReport> {
    let flavour = Flavour::detect(tree);
    let excluded = record::read(tree).map(|r| r.excluded).unwrap_or_default();
    RULES
        .iter()
        .map(|r| RuleReport {
            id: r.id,
            title: r.title,
            cis: r.cis,
            excluded: excluded.iter().any(|e| e == r.id),
            outcome: (r.check)(tree, &flavour),
        })
        .collect()
}

// Small tree helpers the rules share.

/// Write a regular file (parents made 0755 root), replacing what was there.
pub(crate) fn put_file(
    tree: &mut Tree,
    path: &str,
    text: &str,
    mode: u32,
) -> Result<(), TreeError> {
    if let Some((parent, _)) = path.rsplit_once('/') {
        tree.mkdir_all(parent, &Meta::new(0o755))?;
    }
    tree.insert(
        path,
        Entry {
            kind: Kind::File(std::sync::Arc::new(text.as_bytes().to_vec())),
            meta: Meta::new(mode),
        },
    )?;
    Ok(())
}

pub(crate) fn put_link(tree: &mut Tree, path: &str, target: &str) -> Result<(), TreeError> {
    if let Some((parent, _)) = path.rsplit_once('/') {
        tree.mkdir_all(parent, &Meta::new(0o755))?;
    }
    tree.insert(
        path,
        Entry {
            kind: Kind::Symlink(target.to_string()),
            meta: Meta::new(0o777),
        },
    )?;
    Ok(())
}

/// Give `path` (a tree key) to root:root and take from its mode every bit `max` does not
/// allow; nothing when it is absent.
pub(crate) fn tighten(tree: &mut Tree, path: &str, max: u32) {
    if let Some(e) = tree.get_mut(path) {
        e.meta.mode &= max;
        e.meta.uid = 0;
        e.meta.gid = 0;
    }
}

/// What is wrong with `meta` of `path` when it allows more than `max` or is not
/// root:root's, as verify reports it.
pub(crate) fn looser_than(path: &str, meta: &Meta, max: u32) -> Option<String> {
    (meta.mode & !max != 0 || meta.uid != 0 || meta.gid != 0).then(|| {
        format!(
            "/{path} is {:04o} {}:{}, want at most {max:04o} 0:0",
            meta.mode, meta.uid, meta.gid
        )
    })
}

/// Whether `path` names anything (following symlinks).
pub(crate) fn exists(tree: &Tree, path: &str) -> bool {
    tree.get_resolved(path).is_some()
}

/// The first of `paths` that is a regular file or a link to one.
pub(crate) fn first_existing<'a>(tree: &Tree, paths: &[&'a str]) -> Option<&'a str> {
    paths.iter().copied().find(|p| exists(tree, p))
}

/// Regular files directly in `dir` whose name ends with `suffix`, sorted by name.
pub(crate) fn files_in<'a>(tree: &'a Tree, dir: &str, suffix: &str) -> Vec<(String, &'a str)> {
    let Ok(dir) = tree.resolve_all(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, &str)> = tree
        .children(&dir)
        .filter(|(name, _)| name.ends_with(suffix))
        .filter_map(|(name, e)| match &e.kind {
            Kind::File(c) => Some((format!("{dir}/{name}"), std::str::from_utf8(c).ok()?)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests;
