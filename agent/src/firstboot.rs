//! `harmony-agent firstboot`: the boot-time run, per docs/boot-flow.md. Stamp check,
//! fetch, parse, plan, apply, report (atomically), sync, one console line.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::report::{self, Report, Status};
use crate::sources::{self, HostPaths};
use crate::target_root::TargetRoot;

pub const REPORT_PATH: &str = "/var/lib/harmony/firstboot.json";

#[derive(Debug, Clone)]
pub struct FirstbootOptions {
    pub root: PathBuf,
    pub host: HostPaths,
    /// Overrides the kernel command line / detection.
    pub platform: Option<String>,
    pub config_file: Option<PathBuf>,
}

/// Run first boot and return the report (already written and printed).
pub fn run(opts: &FirstbootOptions) -> anyhow::Result<Report> {
    let root = TargetRoot::new(&opts.root);
    let report_host = opts.root.join(REPORT_PATH.trim_start_matches('/'));
    if let Some(mut done) = previous_success(&report_host) {
        done.status = Status::AlreadyDone;
        print_line(&done)?;
        return Ok(done);
    }
    let started_at = crate::rfc3339::now();
    let mut report = Report {
        status: Status::Success,
        platform: None,
        source: None,
        config_sha256: None,
        started_at,
        finished_at: String::new(),
        error: None,
        written: Vec::new(),
        units: Vec::new(),
    };
    if let Err(e) = configure(opts, &root, &mut report) {
        report.status = Status::Failed;
        report.error = Some(format!("{e:#}"));
        report.written.clear();
        report.units.clear();
    }
    report.finished_at = crate::rfc3339::now();
    write_atomically(&report_host, report.to_json().as_bytes())
        .with_context(|| format!("writing {}", report_host.display()))?;
    nix::unistd::sync();
    print_line(&report)?;
    Ok(report)
}

fn configure(
    opts: &FirstbootOptions,
    root: &TargetRoot,
    report: &mut Report,
) -> anyhow::Result<()> {
    let platform = match &opts.platform {
        Some(p) => Some(p.clone()),
        None => sources::detect_platform(&opts.host)?,
    };
    report.platform = platform.clone();
    let Some(platform) = platform else {
        // Nothing tells us where a config could be: a node without one.
        return Ok(());
    };
    let source = sources::for_platform(&platform, &opts.host, opts.config_file.as_deref())?;
    let Some(fetched) = source.fetch()? else {
        return Ok(());
    };
    report.source = Some(fetched.source.clone());
    report.config_sha256 = Some(hex::encode(Sha256::digest(&fetched.bytes)));
    let cfg = ignition::node_config(&fetched.bytes, &ignition::NoRemoteFetcher)
        .with_context(|| format!("config from {}", fetched.source))?;
    let plan = crate::plan::plan(&cfg, root)?;
    crate::apply::apply(&plan, root)?;
    report.written = report::written(&plan);
    report.units = report::units(&plan.units);
    Ok(())
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
    let mut f = std::fs::File::create(&tmp)?;
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
