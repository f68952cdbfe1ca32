//! `harmony-agent firstboot`: the boot-time run, per docs/boot-flow.md. Stamp check,
//! fetch, parse (Ignition or cloud-init user-data, by content), plan, early commands,
//! apply, late commands, report (atomically), sync, one console line.

mod command_runner;
mod live_hostname;
pub mod unit_activation;
pub mod unit_changes;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::live_apply::LiveApply;
use crate::plan::commands::PlannedCommand;
use crate::report::{self, CommandReport, Report, Status};
use crate::sources::{self, HostPaths};
use crate::target_root::TargetRoot;

pub const REPORT_PATH: &str = "/var/lib/harmony/firstboot.json";
/// Where command scripts are written before they run: tmpfs, as they may hold secrets.
pub const SCRIPT_DIR: &str = "/run/harmony/commands";
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct FirstbootOptions {
    pub root: PathBuf,
    pub host: HostPaths,
    /// Overrides the kernel command line / detection.
    pub platform: Option<String>,
    pub config_file: Option<PathBuf>,
    /// How long one command may run before its process group is killed.
    pub command_timeout: Duration,
}

/// Run first boot and return the report (already written and printed).
pub fn run(opts: &FirstbootOptions) -> anyhow::Result<Report> {
    run_with(opts, &LiveApply::default())
}

/// [`run`], with what `harmony-agent apply --live` adds (the SSH guard, meta-data).
pub fn run_with(opts: &FirstbootOptions, extra: &LiveApply) -> anyhow::Result<Report> {
    let root = TargetRoot::new(&opts.root);
    let report_host = opts.root.join(REPORT_PATH.trim_start_matches('/'));
    if let Some(mut done) = previous_success(&report_host) {
        done.status = Status::AlreadyDone;
        let live = opts.root == Path::new("/") && opts.host.is_live();
        for step in crate::node_role::live::again_at_boot(&opts.root, &opts.host.prefix, live) {
            eprintln!(
                "harmony-agent: node role (again at boot): {}: {:?}: {}",
                step.step, step.outcome, step.detail
            );
        }
        print_line(&done)?;
        return Ok(done);
    }
    let started_at = crate::rfc3339::now();
    let mut report = Report {
        status: Status::Success,
        platform: None,
        source: None,
        config_sha256: None,
        instance_id: None,
        hostname: None,
        started_at,
        finished_at: String::new(),
        error: None,
        written: Vec::new(),
        units: Vec::new(),
        warnings: Vec::new(),
        commands: Vec::new(),
        node_role: Vec::new(),
        join: None,
        provenance: crate::provenance::read(&opts.root, &opts.host),
    };
    let configured = configure(opts, extra, &root, &mut report);
    let activated = match &configured {
        Ok(_) => activate_units(opts, &root, &mut report),
        Err(_) => false,
    };
    // systemd may go on past sysinit.target whatever happened (Type=notify).
    crate::sd_notify::ready();
    // The join needs the network, which a systemd image brings up only once sysinit.target
    // is reached (networkd, DHCP): so after READY, never before (docs/boot-flow.md).
    let configured = configured.and_then(|settings| match settings {
        Some(settings) => {
            let live = opts.root == Path::new("/") && opts.host.is_live();
            report.join = Some(join(opts, &root, live, &settings, &mut report)?);
            Ok(())
        }
        None => Ok(()),
    });
    if configured.is_ok() && activated {
        record_unit_states(opts, &mut report);
    }
    match configured {
        Err(e) => {
            report.status = Status::Failed;
            report.error = Some(format!("{e:#}"));
            report.written.clear();
            report.units.clear();
        }
        // Every command ran, as cloud-init runs them all; any that failed fails first
        // boot (the node is not what the config asked for), and the next boot retries.
        Ok(()) => {
            let failed: Vec<String> = report
                .commands
                .iter()
                .filter(|c| !c.succeeded())
                .map(CommandReport::failure)
                .chain(report.node_role.iter().filter_map(|s| s.failure()))
                .collect();
            if !failed.is_empty() {
                report.status = Status::Failed;
                report.error = Some(failed.join("; "));
            }
        }
    }
    report.finished_at = crate::rfc3339::now();
    write_atomically(&report_host, report.to_json().as_bytes())
        .with_context(|| format!("writing {}", report_host.display()))?;
    nix::unistd::sync();
    print_line(&report)?;
    Ok(report)
}

/// Everything but the join; the node settings the join needs, if the config has them.
fn configure(
    opts: &FirstbootOptions,
    extra: &LiveApply,
    root: &TargetRoot,
    report: &mut Report,
) -> anyhow::Result<Option<ignition::node_settings::NodeSettings>> {
    let platform = match &opts.platform {
        Some(p) => Some(p.clone()),
        None => sources::detect_platform(&opts.host)?,
    };
    report.platform = platform.clone();
    let Some(platform) = platform else {
        // Nothing tells us where a config could be: a node without one.
        return Ok(None);
    };
    let source = sources::for_platform(&platform, &opts.host, opts.config_file.as_deref())?;
    let Some(mut fetched) = source.fetch()? else {
        return Ok(None);
    };
    if let Some(meta) = &extra.meta_data {
        fetched.meta_data = Some(meta.clone());
    }
    report.source = Some(fetched.source.clone());
    report.config_sha256 = Some(hex::encode(Sha256::digest(&fetched.bytes)));
    let fetcher = crate::fetch::NetFetcher::for_root(&opts.root);
    let cfg = crate::config_format::node_config_with_vendor_data(
        &fetched.bytes,
        fetched.vendor_data.as_deref(),
        fetched.meta_data.as_ref(),
        &fetcher,
    )
    .with_context(|| format!("config from {}", fetched.source))?;
    report.instance_id = fetched
        .meta_data
        .as_ref()
        .and_then(|m| m.instance_id.clone());
    report.warnings = cfg.warnings.iter().map(Into::into).collect();
    for w in &cfg.warnings {
        eprintln!("harmony-agent: warning: {w}");
    }
    let network = fetched
        .network_config
        .as_ref()
        .map(|n| n.not_applied(&fetched.source));
    for w in fetched.warnings.iter().chain(&network) {
        eprintln!("harmony-agent: warning: {}: {}", w.path, w.message);
        report.warnings.push(w.clone());
    }
    let plan = crate::plan::plan_with_platform(&cfg, root, &fetched.node_labels)?;
    let settings = ignition::node_settings::NodeSettings::from_node_config(&cfg)?;
    // Planned in full, nothing changed yet: the last moment to refuse.
    if let (Some(session), Some(settings)) = (&extra.ssh_session, &settings) {
        if let Err(message) = crate::ssh_guard::check(session, settings) {
            if !extra.force {
                anyhow::bail!(message);
            }
            eprintln!("harmony-agent: warning: ssh: --force: {message}");
            report.warnings.push(report::WarningReport {
                path: "ssh".to_string(),
                message: format!("--force: {message}"),
            });
        }
    }
    // Commands change the running system: only there, never a tree being prepared.
    let live = opts.root == Path::new("/") && opts.host.is_live();
    let (early, late): (Vec<_>, Vec<_>) = plan
        .commands
        .iter()
        .partition(|c| c.stage == ignition::CommandStage::Early);
    crate::node_role::live::check(&plan.live, &opts.root, &opts.host.prefix, live)
        .map_err(anyhow::Error::msg)?;
    run_commands(opts, live, &early, report);
    crate::apply::apply(&plan, root)?;
    report.written = report::written(&plan);
    report.units = report::units(&plan.units);
    report.hostname = live_hostname::planned(&plan).or_else(|| {
        fetched
            .meta_data
            .as_ref()
            .and_then(|m| m.local_hostname.clone())
    });
    if let Some(name) = live_hostname::planned(&plan).filter(|_| live) {
        let kernel = opts.host.join("/proc/sys/kernel/hostname");
        if let Err(message) = live_hostname::set(&name, &kernel) {
            eprintln!("harmony-agent: warning: hostname: {message}");
            report.warnings.push(report::WarningReport {
                path: "hostname".to_string(),
                message,
            });
        }
    }
    report.node_role = crate::node_role::live::run(&plan.live, &opts.root, &opts.host.prefix, live);
    for step in &report.node_role {
        eprintln!(
            "harmony-agent: node role: {}: {:?}: {}",
            step.step, step.outcome, step.detail
        );
        if let Some(warning) = step.warning() {
            eprintln!(
                "harmony-agent: warning: {}: {}",
                warning.path, warning.message
            );
            report.warnings.push(warning);
        }
    }
    run_commands(opts, live, &late, report);
    Ok(settings)
}

/// Join the cluster (a control plane through kubeadm), or skip that without `cluster:`;
/// kubelet's absence is a warning.
fn join(
    opts: &FirstbootOptions,
    root: &TargetRoot,
    live: bool,
    settings: &ignition::node_settings::NodeSettings,
    report: &mut Report,
) -> anyhow::Result<crate::join::JoinSection> {
    if settings.cluster.is_none() {
        eprintln!("harmony-agent: join: {}", crate::join::SKIPPED_NO_CLUSTER);
        return Ok(crate::join::JoinSection::Skipped(
            crate::join::SKIPPED_NO_CLUSTER.to_string(),
        ));
    }
    let join_opts = crate::join::JoinOptions::for_root(&opts.root, live, settings);
    if settings
        .cluster
        .as_ref()
        .is_some_and(|c| c.control_plane.is_some())
    {
        return Ok(crate::join::JoinSection::ControlPlane(
            crate::join::control_plane(settings, root, &join_opts)?,
        ));
    }
    let joined = crate::join::join(settings, root, &join_opts)?;
    if let Some(message) = &joined.warning {
        report.warnings.push(report::WarningReport {
            path: "join".to_string(),
            message: message.clone(),
        });
    }
    Ok(crate::join::JoinSection::Joined(joined))
}

/// On the live root of a systemd image, make what the config wrote or enabled active in
/// this boot ([`unit_activation`]); whether that was done (the units' states are then
/// recorded once the join, after READY, is done).
///
/// The connection is closed before returning: PID 1 sends every unit's change signals to
/// each connection on its private socket, and one left unread while the join runs fills
/// its queue until PID 1 stops sending those signals to anyone (`systemctl start` waiting
/// for its job would never return).
fn activate_units(opts: &FirstbootOptions, root: &TargetRoot, report: &mut Report) -> bool {
    let live = opts.root == Path::new("/") && opts.host.is_live();
    let systemd = matches!(
        crate::init_system::detect(root),
        Ok(Some(crate::init_system::InitSystem::Systemd))
    );
    let changes = unit_changes::UnitChanges::from_report(&report.written, &report.units);
    if !live || !systemd || changes.is_empty() {
        return false;
    }
    let cmdline = std::fs::read_to_string(opts.host.join("/proc/cmdline")).unwrap_or_default();
    let target = unit_activation::boot_target(&cmdline);
    let mut bus = match unit_activation::connect(&opts.root) {
        Ok(bus) => bus,
        Err(e) => {
            systemd_warning(report, format!("units not activated in this boot: {e}"));
            return false;
        }
    };
    match unit_activation::activate(&mut bus, &changes, &target) {
        Ok(unit_activation::Activation::Started(started)) => {
            let names: Vec<&str> = started.iter().map(|(u, _)| u.as_str()).collect();
            eprintln!(
                "harmony-agent: systemd sees every unit as written (no reload); started: {}",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            );
            true
        }
        Ok(unit_activation::Activation::Reloaded { why, job }) => {
            eprintln!("harmony-agent: systemd reloaded ({why}); {target} started again ({job})");
            true
        }
        Err(e) => {
            systemd_warning(report, format!("activating units in this boot: {e}"));
            false
        }
    }
}

fn systemd_warning(report: &mut Report, message: String) {
    eprintln!("harmony-agent: warning: systemd: {message}");
    report.warnings.push(report::WarningReport {
        path: "systemd".to_string(),
        message,
    });
}

/// After READY (units ordered after sysinit.target can start only then): each named
/// unit's state once it has settled.
fn record_unit_states(opts: &FirstbootOptions, report: &mut Report) {
    let warn = systemd_warning;
    let mut bus = match unit_activation::connect(&opts.root) {
        Ok(bus) => bus,
        Err(e) => {
            warn(report, format!("units' states not recorded: {e}"));
            return;
        }
    };
    let named: Vec<String> = report
        .units
        .iter()
        .filter(|u| !u.masked)
        .map(|u| u.name.clone())
        .collect();
    for (name, state) in unit_activation::settle(&mut bus, &named, unit_activation::SETTLE_TIMEOUT)
    {
        match state {
            Ok(state) => {
                eprintln!("harmony-agent: unit {name}: {state}");
                if state == "failed" {
                    warn(report, format!("{name} failed to start in this boot"));
                }
                if let Some(u) = report.units.iter_mut().find(|u| u.name == name) {
                    u.state = Some(state);
                }
            }
            Err(e) => warn(report, e),
        }
    }
}

fn run_commands(
    opts: &FirstbootOptions,
    live: bool,
    commands: &[&PlannedCommand],
    report: &mut Report,
) {
    let run = command_runner::RunOptions {
        script_dir: PathBuf::from(SCRIPT_DIR),
        timeout: opts.command_timeout,
        echo: true,
    };
    for cmd in commands {
        let index = report.commands.len();
        report.commands.push(if live {
            command_runner::run(cmd, index, &run)
        } else {
            command_runner::skipped(
                cmd,
                &format!(
                    "commands run only at first boot on the live root, not on {}",
                    opts.root.display()
                ),
            )
        });
    }
}

/// A readable report with status success; anything else (absent, failed, garbled)
/// means first boot has not finished and runs again.
fn previous_success(path: &Path) -> Option<Report> {
    let bytes = std::fs::read(path).ok()?;
    let r: Report = serde_json::from_slice(&bytes).ok()?;
    (r.status == Status::Success).then_some(r)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".firstboot.json.tmp");
    // A stale temp file may be world-readable: start from a new 0600 one.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    // Command output tails and URLs: root only.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn print_line(report: &Report) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(report.console_line().as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests;
