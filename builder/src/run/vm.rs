//! One QEMU guest booted from `harmony build`'s PXE artifacts, with its serial console.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::accel::{choose_accel, Accel};
use super::console::{Console, Echo, WaitError};
use super::forward::Forward;
use super::medium::{self, DiskFormat, Medium, MediumChoice};
use super::secure_boot;
use super::RunError;
use crate::manifest::Manifest;

/// Lines of console output kept for error messages.
pub const TAIL_LINES: usize = 40;
pub const STATE_LABEL: &str = "harmony-state";
const STATE_DISK_BYTES: u64 = 512 * 1024 * 1024;
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct VmOptions {
    /// A `harmony build` output directory (with manifest.json).
    pub out_dir: PathBuf,
    /// Ignition config handed over by fw_cfg (`opt/com.coreos/config`).
    pub ignition: Option<PathBuf>,
    /// Raw disk for the writable layer; created (512 MiB, ext4 labelled harmony-state) if missing.
    pub state: Option<PathBuf>,
    pub memory_mb: u32,
    pub extra_cmdline: Vec<String>,
    /// More raw disks, attached read-only after the state disk (e.g. a NoCloud seed).
    pub extra_drives: Vec<PathBuf>,
    /// Copy the guest console to our stderr.
    pub echo: bool,
    /// PXE artifacts or a disk image (`--format`).
    pub medium: MediumChoice,
    /// QEMU user-network host forwards (`--forward`), the same for every medium.
    pub forwards: Vec<Forward>,
    /// `--secure-boot`: a disk image under OVMF's Secure Boot firmware (secure_boot.rs).
    pub secure_boot: bool,
    /// `--interactive`: the serial console multiplexed with QEMU's monitor (Ctrl-A X
    /// quits), echoed byte for byte to our stdout; [`Vm::interact`] hands it input.
    pub interactive: bool,
}

impl VmOptions {
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        VmOptions {
            out_dir: out_dir.into(),
            ignition: None,
            state: None,
            memory_mb: 1024,
            extra_cmdline: Vec::new(),
            extra_drives: Vec::new(),
            echo: false,
            medium: MediumChoice::Auto,
            forwards: Vec::new(),
            secure_boot: false,
            interactive: false,
        }
    }
}

pub struct Vm {
    child: Child,
    stdin: Mutex<ChildStdin>,
    console: Console,
    qemu_stderr: Console,
    /// initramfs + rootfs concatenated (PXE boots), or the run's own UEFI variable store
    /// (`--secure-boot`): kept until the VM is gone.
    _scratch: Option<tempfile::NamedTempFile>,
}

impl Vm {
    pub fn boot(opts: &VmOptions) -> Result<Vm, RunError> {
        let medium = match &opts.medium {
            MediumChoice::File { path, format } => Medium::Disk {
                path: path.clone(),
                format: *format,
            },
            choice => {
                let manifest = Manifest::load(&opts.out_dir)?;
                medium::resolve(choice, &manifest, &opts.out_dir)?
            }
        };
        let accel = choose_accel()?;
        let mut cmd = Command::new("qemu-system-x86_64");
        // Under TCG on 2 host cores, -smp 1 reached the first-boot line sooner than -smp 2
        // (3.0-3.2 s vs 3.6 s, busybox guest): the extra vCPU thread only competes.
        let cpus = if accel == Accel::Kvm { "2" } else { "1" };
        cmd.args([
            "-accel",
            &accel.to_string(),
            "-m",
            &opts.memory_mb.to_string(),
            "-smp",
            cpus,
        ])
        .args(["-display", "none"])
        .args(if opts.interactive {
            // QEMU's own mux: Ctrl-A X quits, Ctrl-A C reaches the monitor.
            &["-serial", "mon:stdio"][..]
        } else {
            &["-serial", "stdio", "-monitor", "none"][..]
        })
        .arg("-no-reboot")
        .arg("-nic")
        .arg(user_nic(&opts.forwards));
        if accel == Accel::Kvm {
            cmd.args(["-cpu", "host"]);
        }
        let scratch = match &medium {
            Medium::Pxe if opts.secure_boot => return Err(RunError::BadPath {
                path: opts.out_dir.display().to_string(),
                reason:
                    "--secure-boot boots a disk image under UEFI: add --format raw, qcow2 or vmdk"
                        .into(),
            }),
            Medium::Pxe => Some(pxe_args(&mut cmd, opts)?),
            Medium::Disk { path, format } => disk_args(&mut cmd, opts, path, *format)?,
        };
        if let Some(ignition) = &opts.ignition {
            cmd.arg("-fw_cfg").arg(format!(
                "name=opt/com.coreos/config,file={}",
                qemu_path(ignition)?
            ));
        }
        for drive in &opts.extra_drives {
            cmd.arg("-drive").arg(format!(
                "file={},if=virtio,format=raw,readonly=on",
                qemu_path(drive)?
            ));
        }
        tracing::debug!(?cmd, "starting QEMU");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RunError::Spawn { source })?;
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => unreachable!("all three streams were piped"),
            };
        let (console_echo, qemu_echo) = match (opts.interactive, opts.echo) {
            (true, _) => (Echo::Raw, Echo::Lines),
            (false, true) => (Echo::Lines, Echo::Lines),
            (false, false) => (Echo::Off, Echo::Off),
        };
        Ok(Vm {
            child,
            stdin: Mutex::new(stdin),
            console: Console::new(stdout, TAIL_LINES, console_echo),
            qemu_stderr: Console::new(stderr, TAIL_LINES, qemu_echo),
            _scratch: scratch,
        })
    }

    /// Wait for a console line matching `pred` (see [`Console::wait_for_line`]).
    pub fn wait_for_line(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, RunError> {
        match self.console.wait_for_line(pred, timeout) {
            Ok(line) => Ok(line),
            Err(WaitError::Timeout) => Err(RunError::Timeout {
                waited: timeout,
                tail: self.tail(),
            }),
            Err(WaitError::Closed) => Err(RunError::Exited {
                qemu: self.qemu_stderr.tail(),
                tail: self.tail(),
            }),
        }
    }

    /// Type `text` on the guest's serial console.
    pub fn send(&self, text: &str) -> Result<(), RunError> {
        let mut stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        stdin
            .write_all(text.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|source| RunError::Send { source })
    }

    /// Copy `input` to the guest's console until QEMU exits (Ctrl-A X on a
    /// `--interactive` VM, or the guest powering off); QEMU's exit status. The copy runs
    /// on a thread of its own, left blocked on `input` when QEMU is gone.
    pub fn interact(
        mut self,
        mut input: impl Read + Send + 'static,
    ) -> Result<std::process::ExitStatus, RunError> {
        let pipe = {
            let stdin = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
            stdin
                .as_fd()
                .try_clone_to_owned()
                .map_err(|source| RunError::Send { source })?
        };
        let mut pipe = std::fs::File::from(pipe);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            // Each read (a key press on a raw terminal) goes to QEMU at once; the copy ends
            // with our input or when QEMU has closed its end.
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 || pipe.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let status = self
            .child
            .wait()
            .map_err(|source| RunError::Wait { source })?;
        Ok(status)
    }

    /// The last console lines.
    pub fn tail(&self) -> Vec<String> {
        self.console.tail()
    }

    /// SIGTERM and wait, so QEMU flushes the state disk; SIGKILL after a grace period.
    pub fn shutdown(mut self) -> Result<(), RunError> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<(), RunError> {
        if self
            .child
            .try_wait()
            .map_err(|source| RunError::Wait { source })?
            .is_some()
        {
            return Ok(());
        }
        let pid = Pid::from_raw(self.child.id() as i32);
        // ESRCH: it exited between the check and the signal, which is what we want.
        let _ = kill(pid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < SHUTDOWN_GRACE {
            if self
                .child
                .try_wait()
                .map_err(|source| RunError::Wait { source })?
                .is_some()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        tracing::warn!("QEMU ignored SIGTERM for {SHUTDOWN_GRACE:?}; killing it");
        self.child
            .kill()
            .map_err(|source| RunError::Wait { source })?;
        self.child
            .wait()
            .map_err(|source| RunError::Wait { source })?;
        Ok(())
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Dropping without shutdown() is an abort (a failed test, an error): no grace.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.console.join();
        self.qemu_stderr.join();
    }
}

/// QEMU's user network on a virtio NIC, with the host forwards.
fn user_nic(forwards: &[Forward]) -> String {
    std::iter::once("user,model=virtio-net-pci".to_string())
        .chain(forwards.iter().map(Forward::qemu_hostfwd))
        .collect::<Vec<_>>()
        .join(",")
}

/// Direct kernel boot of the PXE artifacts: kernel, both initrds as one, the command line,
/// and the state disk. Returns the joined initrd, which must outlive QEMU's start.
fn pxe_args(cmd: &mut Command, opts: &VmOptions) -> Result<tempfile::NamedTempFile, RunError> {
    let manifest = Manifest::load(&opts.out_dir)?;
    let artifact = |kind: &str| -> Result<PathBuf, RunError> {
        Ok(opts
            .out_dir
            .join(&manifest.artifact(&opts.out_dir, kind)?.path))
    };
    let kernel = artifact("kernel")?;
    let initrd = concat_initrds(&[artifact("initramfs")?, artifact("rootfs")?])?;
    if let Some(state) = &opts.state {
        ensure_state_disk(state)?;
    }
    let append = kernel_cmdline(
        &manifest.cmdline,
        opts.ignition.is_some(),
        opts.state.is_some(),
        &opts.extra_cmdline,
    );
    cmd.arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(initrd.path())
        .args(["-append", &append]);
    if let Some(state) = &opts.state {
        cmd.arg("-drive")
            .arg(format!("file={},if=virtio,format=raw", qemu_path(state)?));
    }
    Ok(initrd)
}

/// UEFI boot of a disk image (OVMF finds the ESP's `\EFI\BOOT\BOOTX64.EFI`) on virtio-blk.
/// Extra kernel arguments go in an SMBIOS OEM string, which our EFI stub appends to the
/// UKI's built-in command line (efi-stub/src/extra_args.rs).
/// The image itself is never written: without `--state` QEMU keeps the guest's writes in
/// a temporary overlay (`snapshot=on`); with it they go to a qcow2 overlay backed by the
/// image, made on the first run, so the next run boots the same node.
/// With `--secure-boot`, returns the run's variable store, which must outlive QEMU.
fn disk_args(
    cmd: &mut Command,
    opts: &VmOptions,
    image: &Path,
    format: DiskFormat,
) -> Result<Option<tempfile::NamedTempFile>, RunError> {
    let vars = if opts.secure_boot {
        let cert = secure_boot::image_certificate(&opts.out_dir)?;
        if cert.is_none() {
            tracing::warn!(
                "{}: no {} (the recipe has no secure_boot): the firmware will refuse the unsigned UKI",
                opts.out_dir.display(),
                secure_boot::CERT_FILE
            );
        }
        let vars = secure_boot::fresh_vars(cert.as_deref(), &std::env::temp_dir())?;
        qemu_path(vars.path())?;
        cmd.args(secure_boot::qemu_args(vars.path()));
        Some(vars)
    } else {
        cmd.arg("-bios").arg(medium::ovmf()?);
        None
    };
    let drive = match &opts.state {
        None => format!(
            "id=boot,if=none,file={},format={},snapshot=on",
            qemu_path(image)?,
            format.qemu_name()
        ),
        Some(state) => {
            ensure_disk_overlay(state, image, format)?;
            format!("id=boot,if=none,file={},format=qcow2", qemu_path(state)?)
        }
    };
    if let Some(oem) = smbios_cmdline_extra(&opts.extra_cmdline, image)? {
        cmd.arg("-smbios").arg(oem);
    }
    cmd.arg("-drive")
        .arg(drive)
        .args(["-device", "virtio-blk-pci,drive=boot,bootindex=0"]);
    Ok(vars)
}

/// The OEM string systemd-stub and ours read for extra kernel arguments.
pub const CMDLINE_EXTRA_OEM_STRING: &str = "io.systemd.stub.kernel-cmdline-extra=";

/// `-smbios` value carrying `extra` to the EFI stub, `None` without any. QEMU splits its
/// option values on `,`, so each `,` in an argument is doubled.
fn smbios_cmdline_extra(extra: &[String], image: &Path) -> Result<Option<String>, RunError> {
    let args = extra.join(" ").trim().to_string();
    if args.is_empty() {
        return Ok(None);
    }
    if !args.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(RunError::BadPath {
            path: image.display().to_string(),
            reason: format!(
                "--append {args:?}: a disk boot's EFI stub takes printable ASCII kernel arguments only"
            ),
        });
    }
    Ok(Some(format!(
        "type=11,value={CMDLINE_EXTRA_OEM_STRING}{}",
        args.replace(',', ",,")
    )))
}

/// A missing `--state` for a disk boot is created as a qcow2 overlay over the image.
fn ensure_disk_overlay(state: &Path, image: &Path, format: DiskFormat) -> Result<(), RunError> {
    if state.exists() {
        return Ok(());
    }
    let image = std::path::absolute(image).map_err(|source| RunError::Io {
        path: image.display().to_string(),
        source,
    })?;
    let out = Command::new("qemu-img")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            format.qemu_name(),
            "-b",
        ])
        .arg(&image)
        .arg(state)
        .output()
        .map_err(|source| RunError::Io {
            path: "qemu-img".into(),
            source,
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(state);
        return Err(RunError::BadPath {
            path: state.display().to_string(),
            reason: format!(
                "qemu-img create (overlay over {}) failed: {}",
                image.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

/// The manifest's command line plus what `harmony run` adds (docs/boot-flow.md).
/// The platform is named only when we hand a config through fw_cfg; otherwise the agent
/// detects it (a `--disk` NoCloud seed must win over QEMU's empty fw_cfg).
pub fn kernel_cmdline(base: &str, with_fw_cfg: bool, with_state: bool, extra: &[String]) -> String {
    let mut parts = vec![
        base.trim().to_string(),
        "harmony.root=/harmony/root.squashfs".into(),
    ];
    if with_fw_cfg {
        parts.push("ignition.platform.id=qemu".into());
    }
    if with_state {
        parts.push(format!("harmony.state={STATE_LABEL}"));
    }
    parts.extend(extra.iter().cloned());
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

/// QEMU splits option values on `,`: a path with one cannot be passed safely.
fn qemu_path(path: &Path) -> Result<String, RunError> {
    let text = path.display().to_string();
    if text.contains(',') {
        return Err(RunError::BadPath {
            path: text,
            reason: "QEMU options cannot hold a `,` in a file name".into(),
        });
    }
    Ok(text)
}

fn concat_initrds(parts: &[PathBuf]) -> Result<tempfile::NamedTempFile, RunError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RunError::Io { path, source }
    };
    let mut out = tempfile::Builder::new()
        .prefix("harmony-initrd-")
        .tempfile()
        .map_err(io(Path::new("$TMPDIR")))?;
    for part in parts {
        let mut file = std::fs::File::open(part).map_err(io(part))?;
        std::io::copy(&mut file, &mut out).map_err(io(part))?;
    }
    out.flush().map_err(io(out.path()))?;
    Ok(out)
}

/// A missing state disk is created: sparse, ext4, labelled for `harmony.state=`.
fn ensure_state_disk(path: &Path) -> Result<(), RunError> {
    if path.exists() {
        return Ok(());
    }
    let shown = path.display().to_string();
    let file = std::fs::File::create_new(path).map_err(|source| RunError::Io {
        path: shown.clone(),
        source,
    })?;
    file.set_len(STATE_DISK_BYTES)
        .map_err(|source| RunError::Io {
            path: shown.clone(),
            source,
        })?;
    drop(file);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", STATE_LABEL, "-E", "root_owner=0:0"])
        .arg(path)
        .output()
        .map_err(|source| RunError::Io {
            path: "mkfs.ext4".into(),
            source,
        })?;
    if !out.status.success() {
        // Do not leave a file that looks like a state disk but is not one.
        let _ = std::fs::remove_file(path);
        return Err(RunError::BadPath {
            path: shown,
            reason: format!(
                "mkfs.ext4 failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_adds_root_platform_state_and_extra_in_order() {
        let c = kernel_cmdline(
            "console=ttyS0,115200 quiet ",
            true,
            true,
            &["harmony.init=/bin/sh".into()],
        );
        assert_eq!(
            c,
            "console=ttyS0,115200 quiet harmony.root=/harmony/root.squashfs ignition.platform.id=qemu \
             harmony.state=harmony-state harmony.init=/bin/sh"
        );
        assert!(!kernel_cmdline("quiet", true, false, &[]).contains("harmony.state"));
        assert!(!kernel_cmdline("quiet", false, false, &[]).contains("ignition.platform.id"));
    }

    #[test]
    fn forwards_go_on_the_user_nic() {
        assert_eq!(user_nic(&[]), "user,model=virtio-net-pci");
        let forwards = [
            Forward::loopback_tcp(8080, 80),
            "udp::5353-:53".parse().unwrap(),
        ];
        assert_eq!(
            user_nic(&forwards),
            "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-:53"
        );
    }

    #[test]
    fn a_comma_in_a_path_is_refused() {
        assert!(qemu_path(Path::new("/tmp/a,b.ign")).is_err());
        assert_eq!(qemu_path(Path::new("/tmp/a.ign")).unwrap(), "/tmp/a.ign");
    }

    #[test]
    fn initrds_are_concatenated_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"first").unwrap();
        std::fs::write(&b, b"second").unwrap();
        let joined = concat_initrds(&[a, b]).unwrap();
        assert_eq!(std::fs::read(joined.path()).unwrap(), b"firstsecond");
    }

    #[test]
    fn a_disk_state_is_a_qcow2_overlay_over_the_image_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.raw");
        std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
        let state = dir.path().join("node.qcow2");
        ensure_disk_overlay(&state, &image, DiskFormat::Raw).unwrap();
        let info = Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&state)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(info["format"], "qcow2", "{info}");
        assert_eq!(info["backing-filename-format"], "raw", "{info}");
        assert_eq!(info["full-backing-filename"], image.display().to_string());
        // An existing overlay (the node's state) is kept.
        std::fs::write(&state, b"keep").unwrap();
        ensure_disk_overlay(&state, &image, DiskFormat::Raw).unwrap();
        assert_eq!(std::fs::read(&state).unwrap(), b"keep");
    }

    #[test]
    fn kernel_arguments_go_to_a_disk_boot_as_an_smbios_oem_string() {
        let image = Path::new("/x/disk.qcow2");
        assert_eq!(smbios_cmdline_extra(&[], image).unwrap(), None);
        assert_eq!(smbios_cmdline_extra(&[" ".into()], image).unwrap(), None);
        assert_eq!(
            smbios_cmdline_extra(&["quiet".into(), "console=ttyS0,115200".into()], image)
                .unwrap()
                .unwrap(),
            "type=11,value=io.systemd.stub.kernel-cmdline-extra=quiet console=ttyS0,,115200"
        );
        let err = smbios_cmdline_extra(&["x=\u{e9}".into()], image)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("printable ASCII") && err.contains("/x/disk.qcow2"),
            "{err}"
        );

        if medium::ovmf().is_err() {
            harmony_test_support::skip(
                "tool ovmf not installed: the QEMU arguments of a disk boot",
            );
            return;
        }
        let mut opts = VmOptions::new("/nonexistent");
        opts.extra_cmdline = vec!["harmony.test-marker=7".into()];
        let mut cmd = Command::new("true");
        assert!(disk_args(&mut cmd, &opts, image, DiskFormat::Qcow2)
            .unwrap()
            .is_none());
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = args.iter().position(|a| a == "-smbios").expect("-smbios");
        assert_eq!(
            args[at + 1],
            "type=11,value=io.systemd.stub.kernel-cmdline-extra=harmony.test-marker=7"
        );
    }

    #[test]
    fn missing_state_disk_is_created_as_labelled_ext4() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("state.raw");
        ensure_state_disk(&disk).unwrap();
        assert_eq!(std::fs::metadata(&disk).unwrap().len(), STATE_DISK_BYTES);
        let out = Command::new("blkid")
            .args(["-o", "export"])
            .arg(&disk)
            .output();
        let out = match out {
            Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
            Err(_) => Command::new("dumpe2fs")
                .arg("-h")
                .arg(&disk)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap(),
        };
        assert!(out.contains("harmony-state"), "{out}");
        // An existing disk is left alone.
        std::fs::write(&disk, b"keep").unwrap();
        ensure_state_disk(&disk).unwrap();
        assert_eq!(std::fs::read(&disk).unwrap(), b"keep");
    }
}
