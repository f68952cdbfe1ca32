//! `harmony-agent apply --live CONFIG`: on a running host (a pre-provisioned VM or
//! server), everything first boot does: files, users, units (activated in this boot on
//! systemd), commands, the node role (modules, sysctls, firewall) and the join, with the
//! same report at /var/lib/harmony/firstboot.json and the same console line. It is first
//! boot with CONFIG as the platform "file", so a host that has a successful report is
//! left alone (`already-done`) as at a reboot. Before anything changes, the SSH guard
//! ([`crate::ssh_guard`]) refuses a node firewall that would shut SSH to the session the
//! command runs in, unless `--force`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use ignition::cloud_config::MetaData;

use crate::firstboot::{FirstbootOptions, DEFAULT_COMMAND_TIMEOUT};
use crate::report::{Report, Status};
use crate::sources::HostPaths;
use crate::ssh_guard::SshSession;

/// What `apply --live` adds to a first-boot run.
#[derive(Debug, Clone, Default)]
pub struct LiveApply {
    /// The SSH session this runs in (`SSH_CONNECTION`); `None` outside SSH.
    pub ssh_session: Option<SshSession>,
    /// Apply even when the guard refuses: the refusal becomes a warning in the report.
    pub force: bool,
    /// cloud-init meta-data to go with user-data (`--meta-data`).
    pub meta_data: Option<MetaData>,
}

pub struct LiveApplyArgs {
    pub root: PathBuf,
    pub config: PathBuf,
    pub meta_data: Option<PathBuf>,
    pub force: bool,
    /// Where /proc and /sys are read.
    pub host: PathBuf,
}

/// Exit code: 0 when the report says success or already-done, 1 when it failed.
pub fn run(args: LiveApplyArgs) -> anyhow::Result<i32> {
    let report = apply(&args, SshSession::from_env().map_err(anyhow::Error::msg)?)?;
    if let Some(e) = &report.error {
        eprintln!("harmony-agent: apply --live: {e}");
    }
    Ok(i32::from(report.status == Status::Failed))
}

/// [`run`] with the SSH session given (tests give one without a real sshd).
pub fn apply(args: &LiveApplyArgs, ssh_session: Option<SshSession>) -> anyhow::Result<Report> {
    let meta_data = args.meta_data.as_deref().map(read_meta_data).transpose()?;
    crate::firstboot::run_with(
        &FirstbootOptions {
            root: args.root.clone(),
            host: HostPaths::new(&args.host),
            platform: Some("file".to_string()),
            config_file: Some(args.config.clone()),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
        },
        &LiveApply {
            ssh_session,
            force: args.force,
            meta_data,
        },
    )
}

fn read_meta_data(p: &Path) -> anyhow::Result<MetaData> {
    let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    MetaData::parse(&bytes).with_context(|| format!("meta-data {}", p.display()))
}
