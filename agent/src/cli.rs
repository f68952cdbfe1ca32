//! The command line: `firstboot` (what the image's init runs), `plan` and `apply`.

use std::path::PathBuf;

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
    },
    /// Print every change CONFIG would make to ROOT, one per line.
    Plan {
        #[arg(long)]
        root: PathBuf,
        config: PathBuf,
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Apply CONFIG to ROOT now (no report, no stamp).
    Apply {
        #[arg(long)]
        root: PathBuf,
        config: PathBuf,
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
        } => {
            let report = crate::firstboot::run(&crate::firstboot::FirstbootOptions {
                root,
                host: HostPaths::new(host),
                platform,
                config_file,
            })?;
            Ok(i32::from(report.status == crate::report::Status::Failed))
        }
        Command::Plan { root, config, json } => {
            let plan = load_and_plan(&root, &config)?;
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
            }
            Ok(0)
        }
        Command::Apply { root, config } => {
            let plan = load_and_plan(&root, &config)?;
            let changed = crate::apply::apply(&plan, &TargetRoot::new(&root))?;
            let n = changed.iter().filter(|c| **c).count();
            println!(
                "{n} of {} actions changed {}",
                changed.len(),
                root.display()
            );
            Ok(0)
        }
    }
}

fn load_and_plan(
    root: &std::path::Path,
    config: &std::path::Path,
) -> anyhow::Result<crate::plan::Plan> {
    let bytes = std::fs::read(config).with_context(|| format!("reading {}", config.display()))?;
    let cfg = ignition::node_config(&bytes, &ignition::NoRemoteFetcher)
        .with_context(|| format!("config {}", config.display()))?;
    Ok(crate::plan::plan(&cfg, &TargetRoot::new(root))?)
}
