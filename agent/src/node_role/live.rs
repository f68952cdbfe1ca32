//! Running the role's [`LiveStep`]s at first boot, after the files are applied. Each
//! step reports what it did; one that cannot be done on this image (no `nft`) says so
//! instead of pretending.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::{kernel_modules, log_permissions, sysctl, LiveStep};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepOutcome {
    Done,
    /// Not run: not the live root, or the image lacks the tool (`detail` says which).
    Skipped,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepReport {
    pub step: String,
    pub outcome: StepOutcome,
    pub detail: String,
}

impl StepReport {
    fn new(step: &LiveStep, outcome: StepOutcome, detail: impl Into<String>) -> StepReport {
        StepReport {
            step: step.name(),
            outcome,
            detail: detail.into(),
        }
    }
}

const NOT_LIVE: &str = "changes to the running system are made only at first boot on the live root";

/// Where `nft` may be, in the order looked at.
const NFT_PATHS: [&str; 4] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"];

/// The root's `nft`, if it has one.
pub fn find_nft(root: &Path) -> Option<PathBuf> {
    NFT_PATHS
        .iter()
        .map(|p| root.join(p.trim_start_matches('/')))
        .find(|p| p.is_file())
}

/// What can be known before the first write: every module to load exists for the
/// running kernel (live only). The error names the step.
pub fn check(steps: &[LiveStep], root: &Path, host: &Path, live: bool) -> Result<(), String> {
    if !live {
        return Ok(());
    }
    for step in steps {
        if let LiveStep::LoadModules { modules, .. } = step {
            let dir = kernel_modules::running_modules_dir(root, host)
                .map_err(|e| format!("node role step {}: {e}", step.name()))?;
            kernel_modules::resolve(&dir, modules)
                .map_err(|e| format!("node role step {}: {e}", step.name()))?;
        }
    }
    Ok(())
}

/// Run every step in order. Steps on the running system run only on the live root
/// (`live`), else they are reported as skipped.
pub fn run(steps: &[LiveStep], root: &Path, host: &Path, live: bool) -> Vec<StepReport> {
    steps
        .iter()
        .map(|step| {
            let on_running_system = !matches!(step, LiveStep::TightenLogPermissions { .. });
            if on_running_system && !live {
                return StepReport::new(
                    step,
                    StepOutcome::Skipped,
                    format!("{NOT_LIVE}, not on {}", root.display()),
                );
            }
            let result = match step {
                LiveStep::TightenLogPermissions { dir } => {
                    let path = root.join(dir.trim_start_matches('/'));
                    log_permissions::tighten(&path)
                        .map(|n| format!("{n} modes tightened"))
                        .map_err(|e| format!("{}: {e}", path.display()))
                }
                LiveStep::LoadModules { modules, .. } => {
                    load_modules(root, host, modules).map(|(loaded, present, files)| {
                        format!("{loaded} loaded, {present} already loaded: {files}")
                    })
                }
                LiveStep::SetSysctls { values } => sysctl::apply(host, values)
                    .map(|()| format!("{} values written to /proc/sys", values.len())),
                LiveStep::LoadFirewall { path } => return load_firewall(step, root, host, path),
            };
            match result {
                Ok(detail) => StepReport::new(step, StepOutcome::Done, detail),
                Err(why) => StepReport::new(step, StepOutcome::Failed, why),
            }
        })
        .collect()
}

fn load_modules(
    root: &Path,
    host: &Path,
    modules: &[String],
) -> Result<(usize, usize, String), String> {
    let dir = kernel_modules::running_modules_dir(root, host)?;
    let files = kernel_modules::resolve(&dir, modules)?;
    let (loaded, present) = kernel_modules::load(&files)?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    Ok((loaded, present, names.join(" ")))
}

/// The expressions the ruleset uses that live in modules of their own. The kernel loads
/// them on demand through modprobe; an image without modprobe (busybox, no
/// modules.dep) needs them loaded first. Best effort: nft names what is still missing.
const FIREWALL_MODULES: [&str; 5] = [
    "nf_tables",
    "nft_ct",
    "nft_limit",
    "nft_log",
    "nf_log_syslog",
];

fn load_firewall(step: &LiveStep, root: &Path, host: &Path, path: &str) -> StepReport {
    let Some(nft) = find_nft(root) else {
        return StepReport::new(
            step,
            StepOutcome::Skipped,
            format!(
                "nft is not installed in this image (looked for {}): the ruleset is written to \
                 {path} but NOT loaded, so the node has no Harmony firewall",
                NFT_PATHS.join(", ")
            ),
        );
    };
    let modules: Vec<String> = FIREWALL_MODULES.map(String::from).to_vec();
    let _best_effort = load_modules(root, host, &modules);
    let file = root.join(path.trim_start_matches('/'));
    match load_ruleset(&nft, &file) {
        Ok(()) => StepReport::new(
            step,
            StepOutcome::Done,
            format!("loaded by {}", nft.display()),
        ),
        Err(why) => StepReport::new(step, StepOutcome::Failed, why),
    }
}

/// `nft -c -f FILE` (a dry run: nothing changes if the kernel would refuse any of it),
/// then `nft -f FILE`, which applies the whole file as one transaction.
pub fn load_ruleset(nft: &Path, file: &Path) -> Result<(), String> {
    for (args, what) in [(&["-c", "-f"][..], "checking"), (&["-f"][..], "loading")] {
        let out = Command::new(nft)
            .args(args)
            .arg(file)
            .output()
            .map_err(|e| format!("running {}: {e}", nft.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{what} {} with {} failed ({}): {}",
                file.display(),
                nft.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(())
}

impl StepReport {
    /// `node role step X failed: why`, for the report's error.
    pub fn failure(&self) -> Option<String> {
        (self.outcome == StepOutcome::Failed)
            .then(|| format!("node role step {} failed: {}", self.step, self.detail))
    }

    /// A step skipped on the live root because the image cannot do it: a warning, loud
    /// on the console and in the report.
    pub fn warning(&self) -> Option<crate::report::WarningReport> {
        (self.outcome == StepOutcome::Skipped && !self.detail.starts_with(NOT_LIVE)).then(|| {
            crate::report::WarningReport {
                path: format!("node role: {}", self.step),
                message: self.detail.clone(),
            }
        })
    }
}

/// Every later boot: the running kernel has forgotten the modules, sysctls and ruleset
/// (busybox and OpenRC images have nothing else that would restore them), so the role's
/// live steps run again from the settings first boot wrote (/etc/harmony/node.yaml).
/// Files are not rewritten. Unreadable settings are a report line, not a stop: the node
/// already booted with them once.
pub fn again_at_boot(root: &Path, host: &Path, live: bool) -> Vec<StepReport> {
    let problem = |detail: String| {
        vec![StepReport {
            step: "node-role-at-boot".to_string(),
            outcome: StepOutcome::Failed,
            detail,
        }]
    };
    let target = crate::target_root::TargetRoot::new(root);
    let path = ignition::node_settings::NODE_YAML_PATH;
    let text = match target.read(path) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(_) => return problem(format!("{path} is not UTF-8 text")),
        },
        Ok(None) => return Vec::new(),
        Err(e) => return problem(format!("reading {path}: {e}")),
    };
    let settings = match ignition::node_settings::NodeSettings::from_yaml_str(&text) {
        Ok(s) => s,
        Err(e) => return problem(format!("{path}: {e}")),
    };
    match super::plan(&settings, &super::PlatformLabels::default(), &target) {
        Ok(role) => run(&role.live, root, host, live),
        Err(e) => problem(e),
    }
}
