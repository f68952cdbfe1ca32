//! The command tree: `harmony build`, `harmony run`, `harmony base debian`, `harmony push`,
//! `harmony inventory render`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::build::{build_with, BuildOptions};
use crate::progress::{LogWriter, Mode, Rendering};
use crate::run::host_command::run_on_host;
use crate::run::interactive::run_interactive;
use crate::run::{run, run_then, VmOptions};

#[derive(Parser)]
#[command(
    name = "harmony",
    version,
    about = "Build immutable Kubernetes node images from one recipe, and boot them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a recipe into bootable artifacts (no recipe: the embedded default).
    Build {
        /// Recipe file (YAML). Without one, the default recipe is built, making its
        /// Debian-package base first if the cache has none.
        recipe: Option<PathBuf>,
        /// Output directory; replaced as a whole only when the build succeeds.
        #[arg(long, short, default_value = "harmony-out")]
        out: PathBuf,
        /// Cache for base images, layers and packages.
        #[arg(long, env = "HARMONY_CACHE")]
        cache: Option<PathBuf>,
        /// The static harmony-agent to bake in (default: found beside this binary).
        #[arg(long, env = "HARMONY_AGENT_BIN")]
        agent_bin: Option<PathBuf>,
        /// The static harmony-init for the initramfs (default: found beside this binary).
        #[arg(long, env = "HARMONY_INIT_BIN")]
        init_bin: Option<PathBuf>,
        /// Timestamp for every file and image record (reproducible builds).
        #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
        source_date_epoch: i64,
        /// Print the manifest as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Registry credentials for `docker://` bases and component images
        /// (containers-auth.json(5) / docker config.json; default: $REGISTRY_AUTH_FILE, else
        /// ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json,
        /// ~/.docker/config.json).
        #[arg(long, value_name = "FILE")]
        authfile: Option<PathBuf>,
        /// How progress is shown on stderr: bars on a terminal and plain lines otherwise
        /// (auto), plain lines, or one JSON object per event (json).
        #[arg(long, value_enum, default_value_t)]
        progress: Mode,
    },
    /// Boot built artifacts in QEMU and wait for the agent's first-boot report.
    Run {
        /// Output directory of `harmony build`.
        out: PathBuf,
        /// Ignition config handed to the node through QEMU fw_cfg.
        #[arg(long)]
        ignition: Option<PathBuf>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
        /// Keep the node's writable state in this disk image (created if missing), so a
        /// second run boots the same node again.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Guest memory in MiB.
        #[arg(long, default_value_t = 1024)]
        memory: u32,
        /// Extra kernel command-line arguments (a disk boot: appended by the UKI's EFI stub,
        /// from an SMBIOS OEM string).
        #[arg(long = "append")]
        append: Vec<String>,
        /// A raw disk image to attach read-only (repeatable), e.g. a NoCloud seed made by cloud-localds.
        #[arg(long = "disk")]
        disks: Vec<PathBuf>,
        /// Do not echo the console.
        #[arg(long)]
        quiet: bool,
        /// What to boot: pxe, raw, qcow2 or vmdk (disks under UEFI). Default: pxe when
        /// the build has it, else the first disk image it has.
        #[arg(long)]
        format: Option<crate::run::medium::Format>,
        /// Boot the disk image under OVMF's Secure Boot firmware (q35, SMM), Secure Boot
        /// enforced, with the build's `secure-boot.crt` enrolled in db of a fresh variable
        /// store. Needs --format raw, qcow2 or vmdk.
        #[arg(long)]
        secure_boot: bool,
        /// Forward a host port to a guest port through QEMU's user network (repeatable):
        /// `tcp:HOSTADDR:HOSTPORT-:GUESTPORT`, e.g. `tcp:127.0.0.1:8080-:80`. The guest
        /// needs an address from QEMU's DHCP (busybox images: `--append ip=dhcp`).
        #[arg(long = "forward", value_name = "tcp:HOSTADDR:HOSTPORT-:GUESTPORT")]
        forwards: Vec<crate::run::Forward>,
        /// After the first-boot report, run CMD on the host (`sh -c CMD`) while the VM
        /// stays up, power the VM off, and exit with CMD's status.
        #[arg(long, value_name = "CMD")]
        exec: Option<String>,
        /// After the first-boot report, keep the VM up with its serial console on this
        /// terminal (Ctrl-A X quits QEMU). Needs a terminal on stdin.
        #[arg(long, conflicts_with = "exec")]
        interactive: bool,
        /// How progress is shown on stderr (as for `harmony build`); the console's lines
        /// are the boot phase's messages.
        #[arg(long, value_enum, default_value_t)]
        progress: Mode,
    },
    /// Check a built image against the hardening profile, offline: pass or fail per rule;
    /// exits non-zero when any rule fails.
    Verify {
        /// A `harmony build` output directory, or an OCI image layout.
        image: PathBuf,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Make base images.
    #[command(subcommand)]
    Base(BaseCommand),
    /// Render an inventory: one Ignition config per node and the Vaquero site documents.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Push the built image (OUT/oci) to a registry.
    Push {
        /// Output directory of `harmony build` (or an OCI image layout).
        out: PathBuf,
        /// `[docker://]REGISTRY/REPOSITORY:TAG`. Loopback registries are spoken to over HTTP.
        reference: String,
        /// Plain HTTP for a registry that is not on loopback (skopeo's `--dest-tls-verify=false`).
        #[arg(long)]
        plain_http: bool,
        /// `USER:PASSWORD`, for registries that ask (Basic auth or a token service).
        #[arg(long, env = "HARMONY_REGISTRY_CREDS", hide_env_values = true)]
        creds: Option<String>,
        /// Auth file to take credentials from when there is no --creds (default: as for
        /// `harmony build --authfile`).
        #[arg(long, value_name = "FILE")]
        authfile: Option<PathBuf>,
        /// Blobs larger than this many bytes are uploaded in chunks of this size.
        #[arg(long, default_value_t = crate::oci::push::DEFAULT_CHUNK_SIZE)]
        chunk_size: u64,
        /// Sign the pushed image as cosign does (ECDSA P-256 PEM private key): the signature
        /// goes to the same repository under the tag `sha256-<hex>.sig`.
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Check INVENTORY and write DIR/ignition/NAME.ign, DIR/sites/SITE/{env,NAME}.yml and
    /// DIR/inventory.json; DIR is replaced only when everything succeeded.
    Render {
        inventory: PathBuf,
        #[arg(long, short)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BaseModeArg {
    Unpack,
    Install,
}

impl From<BaseModeArg> for crate::base::BaseMode {
    fn from(m: BaseModeArg) -> Self {
        match m {
            BaseModeArg::Unpack => crate::base::BaseMode::Unpack,
            BaseModeArg::Install => crate::base::BaseMode::Install,
        }
    }
}

#[derive(Subcommand)]
enum BaseCommand {
    /// Make an OCI image layout from Debian packages, without root: unpacked (`apt-get
    /// download`, no maintainer scripts) or installed (`mmdebstrap --mode=unshare`).
    Debian {
        /// Package list: one name per line, `#` comments.
        #[arg(long)]
        packages: PathBuf,
        /// unpack: only the listed .debs, unpacked over a busybox skeleton (the default
        /// base); install: the packages and their dependencies installed with their
        /// maintainer scripts run (systemd images such as debian-node).
        #[arg(long, value_enum, default_value = "unpack")]
        mode: BaseModeArg,
        /// Where to write the OCI image layout.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "latest")]
        tag: String,
        #[arg(long, env = "HARMONY_CACHE")]
        cache: Option<PathBuf>,
        #[arg(long, env = "SOURCE_DATE_EPOCH", default_value_t = 0)]
        source_date_epoch: i64,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = match &cli.command {
        Command::Build { progress, .. } | Command::Run { progress, .. } => *progress,
        _ => Mode::Auto,
    };
    init_logging(crate::progress::install(mode));
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Log lines go through the progress renderer; colours only where bars are drawn.
fn init_logging(rendering: Rendering) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HARMONY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(rendering == Rendering::Bars)
        .with_writer(LogWriter)
        .init();
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build {
            recipe,
            out,
            cache,
            agent_bin,
            init_bin,
            source_date_epoch,
            json,
            authfile,
            progress: _,
        } => {
            let registry = crate::oci::client::RegistryOptions {
                authfile,
                ..Default::default()
            };
            let opts = BuildOptions {
                recipe,
                out,
                cache: cache.unwrap_or_else(crate::cache::default_dir),
                agent_bin,
                init_bin,
                source_date_epoch,
            };
            let report = build_with(&opts, &registry)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report.manifest)?);
            } else {
                print!("{}", report.summary());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            out,
            ignition,
            timeout,
            state,
            memory,
            append,
            disks,
            quiet,
            format,
            secure_boot,
            forwards,
            exec,
            interactive,
            progress: _,
        } => {
            let opts = VmOptions {
                out_dir: out,
                ignition,
                state,
                memory_mb: memory,
                extra_cmdline: append,
                extra_drives: disks,
                echo: !quiet,
                medium: format.map_or(crate::run::medium::MediumChoice::Auto, |f| {
                    crate::run::medium::MediumChoice::Format(f)
                }),
                forwards,
                secure_boot,
                interactive: false,
            };
            let timeout = Duration::from_secs(timeout);
            if interactive {
                // The report went by on the console; QEMU's status is the command's.
                let (_, status) = run_interactive(&opts, timeout)?;
                return Ok(if status.success() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let Some(exec) = exec else {
                let first_boot = run(&opts, timeout)?;
                println!("{}", first_boot.line);
                return Ok(ExitCode::SUCCESS);
            };
            let (_, status) = run_then(&opts, timeout, |first_boot| {
                println!("{}", first_boot.line);
                // CMD writes to the same stdout: the report line comes first.
                let _ = std::io::Write::flush(&mut std::io::stdout());
                run_on_host(&exec)
            })?;
            Ok(ExitCode::from(status))
        }
        Command::Inventory(InventoryCommand::Render { inventory, out }) => {
            let inv = crate::inventory::load(&inventory)?;
            let (dir, report) = crate::inventory::render::render(&inv, &out)?;
            let hosts = report.nodes.iter().filter(|n| n.host.is_some()).count();
            println!(
                "rendered {} node(s) of site {} into {} ({hosts} Vaquero host document(s))",
                report.nodes.len(),
                report.site,
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Push {
            out,
            reference,
            plain_http,
            creds,
            authfile,
            chunk_size,
            sign_key,
        } => {
            let credentials = creds
                .as_deref()
                .map(crate::oci::client::Credentials::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--creds: {e}"))?;
            let registry = crate::oci::client::RegistryOptions {
                plain_http,
                credentials,
                authfile,
            };
            push(&out, &reference, registry, chunk_size, sign_key.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { image, json } => {
            let report = crate::verify::verify(&image)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.text());
            }
            if report.ok() {
                Ok(ExitCode::SUCCESS)
            } else {
                anyhow::bail!(
                    "{}: {} rule(s) failed: {}",
                    image.display(),
                    report.failed,
                    report.failed_ids().join(", ")
                )
            }
        }
        Command::Base(BaseCommand::Debian {
            packages,
            mode,
            out,
            tag,
            cache,
            source_date_epoch,
        }) => {
            let names = crate::build::default_base::read_package_list(&packages)
                .with_context(|| format!("reading package list {}", packages.display()))?;
            let opts = crate::base::debian::DebianBaseOptions {
                packages: names,
                mode: mode.into(),
                out,
                tag,
                cache: cache.unwrap_or_else(crate::cache::default_dir),
                source_date_epoch,
            };
            let summary = crate::base::debian::make_debian_base(&opts)?;
            println!(
                "wrote {}:{} ({})",
                summary.out.display(),
                summary.tag,
                summary.manifest_digest
            );
            for p in &summary.packages {
                println!("  {} {} {}", p.name, p.version, p.sha256);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn push(
    out: &std::path::Path,
    reference: &str,
    registry: crate::oci::client::RegistryOptions,
    chunk_size: u64,
    sign_key: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use crate::oci::push::{push_layout, PushOptions};
    use crate::oci::sigstore;
    // The key is read before anything is pushed: a bad key leaves the registry untouched.
    let key = sign_key
        .map(sigstore::load_signing_key)
        .transpose()
        .context("--sign-key")?;
    let layout = if out.join("oci-layout").is_file() {
        out.to_path_buf()
    } else {
        out.join("oci")
    };
    anyhow::ensure!(
        layout.join("oci-layout").is_file(),
        "{}: no OCI image layout (was the image built with the `oci` output?)",
        layout.display()
    );
    let full = if reference.contains("://") {
        reference.to_string()
    } else {
        format!("docker://{reference}")
    };
    let target: crate::oci::ImageRef = full.parse()?;
    let opts = PushOptions {
        registry,
        chunk_size,
    };
    let report = push_layout(&layout, &target, &opts)
        .with_context(|| format!("pushing {} to {full}", layout.display()))?;
    println!("{}", report.pinned);
    if let (
        Some(key),
        crate::oci::ImageRef::Registry {
            registry,
            repository,
            ..
        },
    ) = (key, &target)
    {
        let signature = sigstore::sign_pushed(
            registry,
            repository,
            &report.manifest_digest,
            &key,
            &opts.registry,
        )
        .with_context(|| format!("signing {}", report.pinned))?;
        println!("{signature}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("harmony").chain(args.iter().copied()))
    }

    #[test]
    fn run_takes_repeated_forwards_and_one_exec() {
        let cli = parse(&[
            "run",
            "out",
            "--forward",
            "tcp:127.0.0.1:8080-:80",
            "--forward=tcp::2222-:22",
            "--exec",
            "curl -sf http://127.0.0.1:8080/",
        ])
        .unwrap();
        let Command::Run { forwards, exec, .. } = cli.command else {
            panic!("not run");
        };
        let shown: Vec<String> = forwards.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["tcp:127.0.0.1:8080-:80", "tcp::2222-:22"]);
        assert_eq!(exec.as_deref(), Some("curl -sf http://127.0.0.1:8080/"));
    }

    #[test]
    fn run_takes_secure_boot_with_a_disk_format() {
        let cli = parse(&["run", "out", "--format", "qcow2", "--secure-boot"]).unwrap();
        let Command::Run {
            secure_boot,
            format,
            ..
        } = cli.command
        else {
            panic!("not run");
        };
        assert!(secure_boot);
        assert_eq!(format.map(|f| f.to_string()).as_deref(), Some("qcow2"));
        let cli = parse(&["run", "out"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run {
                secure_boot: false,
                ..
            }
        ));
    }

    #[test]
    fn build_and_run_take_progress_auto_by_default() {
        let cli = parse(&["build", "--progress=json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Build {
                progress: Mode::Json,
                ..
            }
        ));
        let cli = parse(&["run", "out", "--progress", "plain"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run {
                progress: Mode::Plain,
                ..
            }
        ));
        let cli = parse(&["build"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Build {
                progress: Mode::Auto,
                ..
            }
        ));
        let err = parse(&["build", "--progress=bars"]).err().expect("refused");
        assert!(err.to_string().contains("auto, plain, json"), "{err}");
    }

    #[test]
    fn interactive_and_exec_exclude_each_other() {
        let cli = parse(&["run", "out", "--interactive"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Run {
                interactive: true,
                ..
            }
        ));
        let err = parse(&["run", "out", "--interactive", "--exec", "true"])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("--interactive") && err.contains("--exec"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_forward_names_the_flag_and_the_value() {
        let err = parse(&["run", "out", "--forward", "tcp:127.0.0.1:8080:80"])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("--forward") && err.contains("tcp:127.0.0.1:8080:80"),
            "{err}"
        );
        assert!(err.contains("tcp:HOSTADDR:HOSTPORT-:GUESTPORT"), "{err}");
    }
}
