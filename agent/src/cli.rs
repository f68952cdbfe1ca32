//! The command line: `firstboot` (what the image's init runs), `plan`, `apply` (and
//! `apply --live` on a running host), `install`, `validate` and `translate`.
//! CONFIG is an Ignition document or cloud-init user-data, told apart by content.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::sources::HostPaths;
use crate::target_root::TargetRoot;

#[derive(Debug, Parser)]
#[command(name = "harmony-agent", version, about = "Harmony first-boot agent")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Configure this node from its platform's config, once; see docs/boot-flow.md.
    Firstboot {
        /// The root to configure.
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// Platform id; default: ignition.platform.id= on the kernel command line, else detected.
        #[arg(long)]
        platform: Option<String>,
        /// The config for platform "file".
        #[arg(long, env = "IGNITION_CONFIG_FILE")]
        config_file: Option<PathBuf>,
        /// Where /proc and /sys are read (tests point this at a fake host).
        #[arg(long, default_value = "/", hide = true)]
        host: PathBuf,
        /// How long one bootcmd/runcmd/script may run before it is killed.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::firstboot::DEFAULT_COMMAND_TIMEOUT.as_secs())]
        command_timeout: u64,
    },
    /// Print every change CONFIG would make to ROOT, one per line.
    Plan {
        #[arg(long)]
        root: PathBuf,
        config: PathBuf,
        /// cloud-init meta-data to go with user-data (instance-id, local-hostname).
        #[arg(long, value_name = "FILE")]
        meta_data: Option<PathBuf>,
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Apply CONFIG to ROOT now (no report, no stamp). Commands (bootcmd, runcmd,
    /// scripts) are not run: they run only at first boot on the live root. With --live:
    /// everything first boot does, on this running system, with its report.
    Apply {
        /// The root to write; with --live, default `/`.
        #[arg(long, required_unless_present = "live")]
        root: Option<PathBuf>,
        config: PathBuf,
        /// cloud-init meta-data to go with user-data (instance-id, local-hostname).
        #[arg(long, value_name = "FILE")]
        meta_data: Option<PathBuf>,
        /// Do on this running system everything first boot does (files, users, units,
        /// commands, node role, join) and write the first-boot report; refused when the
        /// node firewall would shut SSH to the session this runs in.
        #[arg(long)]
        live: bool,
        /// With --live: apply even when the node firewall would shut this SSH session's source.
        #[arg(long, requires = "live")]
        force: bool,
        /// Where /proc and /sys are read (tests point this at a fake host).
        #[arg(long, default_value = "/", hide = true)]
        host: PathBuf,
    },
    /// Put this harmony-agent binary and its boot hook (systemd unit, OpenRC script or
    /// busybox inittab line, as the root's init system asks) on a running host.
    Install {
        /// The root to install into.
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Check CONFIG offline and print its warnings; exit 0 valid, 1 invalid (or, with
    /// --strict, any warning), 2 unreadable.
    Validate {
        /// Fail on warnings (unused keys, units that cannot be enabled, …), as `butane --strict`.
        #[arg(long)]
        strict: bool,
        config: PathBuf,
    },
    /// Translate a Butane config (variant fcos 1.0.0-1.5.0, or harmony 1.0.0) into the
    /// Ignition config Butane would write, on stdout; exit codes as `validate`.
    Translate {
        /// Where `local`, `contents_local`, `ssh_authorized_keys_local` and trees are read.
        #[arg(long, value_name = "DIR")]
        files_dir: Option<PathBuf>,
        /// Fail on warnings about the translated config, as `butane --strict`.
        #[arg(long)]
        strict: bool,
        /// Pretty-print the JSON.
        #[arg(long)]
        pretty: bool,
        file: PathBuf,
    },
    /// Node-local TCP load balancer for the Kubernetes API (see README, "HA API endpoint").
    ApiProxy(crate::api_proxy::cli::ApiProxyArgs),
    /// Platform components baked into the image (README, "Platform components").
    #[command(subcommand)]
    Component(ComponentCommand),
}

#[derive(Debug, Subcommand)]
pub enum ComponentCommand {
    /// Unpack NAME's image and run it in fresh mount/PID/UTS namespaces (foreground).
    Run {
        name: String,
        #[arg(long, default_value = "/", hide = true)]
        root: PathBuf,
    },
}

/// Exit code: 0 on success, 1 when the work failed (the report or error says why).
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Firstboot {
            root,
            platform,
            config_file,
            host,
            command_timeout,
        } => {
            let report = crate::firstboot::run(&crate::firstboot::FirstbootOptions {
                root,
                host: HostPaths::new(host),
                platform,
                config_file,
                command_timeout: Duration::from_secs(command_timeout),
            });
            // Type=notify: systemd must hear READY=1 on every path, errors included.
            crate::sd_notify::ready();
            let report = report?;
            Ok(i32::from(report.status == crate::report::Status::Failed))
        }
        Command::Plan {
            root,
            config,
            meta_data,
            json,
        } => {
            let plan = load_and_plan(&root, &config, meta_data.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                for a in &plan.actions {
                    println!("{a}");
                }
                for u in &plan.units {
                    println!(
                        "unit      {} enabled {} masked {}",
                        u.name,
                        u.enabled.map_or("unchanged".to_string(), |e| e.to_string()),
                        u.masked
                    );
                }
                for c in &plan.commands {
                    println!("{c}");
                }
                for step in &plan.live {
                    println!("{step}");
                }
                if let Some(j) = &plan.join {
                    println!("{j}");
                }
            }
            Ok(0)
        }
        Command::Apply {
            root,
            config,
            meta_data,
            live: true,
            force,
            host,
        } => crate::live_apply::run(crate::live_apply::LiveApplyArgs {
            root: root.unwrap_or_else(|| PathBuf::from("/")),
            config,
            meta_data,
            force,
            host,
        }),
        Command::Apply {
            root: Some(root),
            config,
            meta_data,
            live: false,
            ..
        } => {
            let plan = load_and_plan(&root, &config, meta_data.as_deref())?;
            let changed = crate::apply::apply(&plan, &TargetRoot::new(&root))?;
            let n = changed.iter().filter(|c| **c).count();
            println!(
                "{n} of {} actions changed {}",
                changed.len(),
                root.display()
            );
            for c in &plan.commands {
                println!(
                    "skipped command {} ({}): commands run only at first boot on the live root",
                    c.name,
                    c.stage_name()
                );
            }
            Ok(0)
        }
        Command::Apply { root: None, .. } => {
            anyhow::bail!("apply needs --root DIR, or --live for this running system")
        }
        Command::Install { root } => {
            for line in crate::install::run(&root)? {
                println!("{line}");
            }
            Ok(0)
        }
        Command::Validate { strict, config } => Ok(crate::validate::run(&config, strict)),
        Command::Translate {
            files_dir,
            strict,
            pretty,
            file,
        } => Ok(crate::translate::run(&file, files_dir, strict, pretty)),
        Command::ApiProxy(args) => crate::api_proxy::cli::run(args),
        Command::Component(ComponentCommand::Run { name, root }) => {
            crate::component::run(&root, &name)
        }
    }
}

/// Read and parse CONFIG (and meta-data), print its warnings, plan it against ROOT.
fn load_and_plan(
    root: &Path,
    config: &Path,
    meta_data: Option<&Path>,
) -> anyhow::Result<crate::plan::Plan> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let bytes = read(config)?;
    let meta = meta_data
        .map(|p| {
            ignition::cloud_config::MetaData::parse(&read(p)?)
                .with_context(|| format!("meta-data {}", p.display()))
        })
        .transpose()?;
    // Remote sources are fetched from where this command runs: this system's names.
    let cfg = crate::config_format::node_config(
        &bytes,
        meta.as_ref(),
        &crate::fetch::NetFetcher::for_root(Path::new("/")),
    )
    .with_context(|| format!("config {}", config.display()))?;
    for w in &cfg.warnings {
        eprintln!("harmony-agent: warning: {w}");
    }
    Ok(crate::plan::plan(&cfg, &TargetRoot::new(root))?)
}
