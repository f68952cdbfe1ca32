//! The boot sequence of docs/boot-flow.md ("harmony-init"), step by step.

use std::convert::Infallible;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use nix::mount::MsFlags;

use crate::block_probe::{read_header, root_fs_type};
use crate::cmdline::BootArgs;
use crate::console::{attach_stdio_to_console, say, warn};
use crate::disk_args::DiskArgs;
use crate::disk_root::mount_disk_root;
use crate::kernel_modules::load_all;
use crate::module_list::{parse_module_list, MODULE_LIST_PATH};
use crate::mounts::{create_dir, mount_early_filesystems, mount_efivars, mount_fs};
use crate::state_disk::wait_for_label;
use crate::switch_root::{switch_root, Carry};

const LOWER: &str = "/lower";
const STATE: &str = "/state";
const SYSROOT: &str = "/sysroot";
/// How long virtio and friends get to show the state disk.
const STATE_DISK_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the whole sequence; returns only on failure.
pub fn run() -> anyhow::Result<Infallible> {
    mount_early_filesystems()?;
    attach_stdio_to_console();
    say(format_args!("started at uptime {}", uptime()));

    let cmdline = fs::read_to_string("/proc/cmdline").context("read /proc/cmdline")?;
    let args = BootArgs::from_cmdline(&cmdline)?;
    let disk = DiskArgs::from_cmdline(&cmdline)?;

    let modules = match fs::read_to_string(MODULE_LIST_PATH) {
        Ok(text) => parse_module_list(&text)?,
        // A kernel with everything built in needs no list.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            warn(format_args!(
                "{MODULE_LIST_PATH} not found; loading no modules"
            ));
            Vec::new()
        }
        Err(e) => return Err(e).context(format!("read {MODULE_LIST_PATH}")),
    };
    let report = load_all(&modules, |failure| {
        warn(format_args!(
            "module {} not loaded: {}",
            failure.path.display(),
            failure.error
        ))
    });
    say(format_args!("modules: {report}"));
    // Not fatal: the node boots without it, and reports secure_boot false.
    if let Err(e) = mount_efivars() {
        warn(format_args!(
            "{e}; the firmware's variables are not readable"
        ));
    }

    // From here on a failure may be a missing driver's fault: say which failed.
    let mounted = match &disk {
        Some(disk) => mount_disk_root(disk, Path::new(SYSROOT)).and_then(|()| switch(&args, &[])),
        None => mount_root_and_switch(&args),
    };
    mounted.map_err(|e| match report.failure_summary() {
        Some(failed) => anyhow!("{e:#}; modules that failed to load earlier: {failed}"),
        None => e,
    })
}

fn mount_root_and_switch(args: &BootArgs) -> anyhow::Result<Infallible> {
    mount_lower(&args.root_image)?;
    mount_state(args.state_label.as_deref())?;

    let upper = Path::new(STATE).join("overlay/upper");
    let work = Path::new(STATE).join("overlay/work");
    create_dir(&upper)?;
    create_dir(&work)?;
    let options = format!(
        "lowerdir={LOWER},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    mount_fs(
        "overlay",
        Path::new(SYSROOT),
        "overlay",
        MsFlags::empty(),
        Some(&options),
    )?;

    // The node can still see its pristine root and its state disk.
    let carry = [
        Carry {
            from: PathBuf::from(LOWER),
            to: PathBuf::from("run/harmony/lower"),
        },
        Carry {
            from: PathBuf::from(STATE),
            to: PathBuf::from("run/harmony/state"),
        },
    ];
    switch(args, &carry)
}

fn switch(args: &BootArgs, carry: &[Carry]) -> anyhow::Result<Infallible> {
    say(format_args!(
        "switching root to {SYSROOT}, exec {} at uptime {}",
        args.init.display(),
        uptime()
    ));
    let init_args: Vec<_> = std::env::args_os().skip(1).collect();
    switch_root(Path::new(SYSROOT), &args.init, &init_args, carry)
}

/// Attaches the root image to a loop device and mounts it read-only at /lower.
fn mount_lower(image: &Path) -> anyhow::Result<()> {
    let header =
        read_header(image).with_context(|| format!("read root image {}", image.display()))?;
    let fs_type = root_fs_type(&header).ok_or_else(|| {
        anyhow!(
            "root image {} is neither squashfs nor erofs (no magic found)",
            image.display()
        )
    })?;
    let device = crate::loop_device::attach_read_only(image)?;
    let device_name = device.to_string_lossy();
    mount_fs(
        &device_name,
        Path::new(LOWER),
        fs_type.fstype(),
        MsFlags::MS_RDONLY,
        None,
    )?;
    say(format_args!(
        "root {} ({fs_type}) on {device_name}, read-only at {LOWER}",
        image.display()
    ));
    Ok(())
}

/// The writable layer's home: the labelled ext4 disk, or tmpfs without one.
fn mount_state(label: Option<&str>) -> anyhow::Result<()> {
    let Some(label) = label else {
        mount_fs(
            "tmpfs",
            Path::new(STATE),
            "tmpfs",
            MsFlags::empty(),
            Some("mode=0755"),
        )?;
        say("state: tmpfs (no harmony.state=; changes are lost at power off)");
        return Ok(());
    };
    let matches = wait_for_label(label, STATE_DISK_TIMEOUT)?;
    let device = matches.only(label)?;
    mount_fs(
        &device.to_string_lossy(),
        Path::new(STATE),
        "ext4",
        MsFlags::empty(),
        None,
    )?;
    say(format_args!(
        "state: {} (label {label:?}) at {STATE}, found at uptime {}",
        device.display(),
        uptime()
    ));
    Ok(())
}

/// Seconds since boot, for the console lines (boot timing at a glance).
pub fn uptime() -> String {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(|u| format!("{u} s")))
        .unwrap_or_else(|| "unknown".to_string())
}
