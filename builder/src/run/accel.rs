//! TCG or KVM: `/dev/kvm` existing is not enough (nested KVM can be broken), so probe it.

use std::fmt;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::RunError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        })
    }
}

pub const ACCEL_ENV: &str = "HARMONY_ACCEL";
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// isa-debug-exit turns the byte written to port 0xf4 into exit code `(byte << 1) | 1`.
const PROBE_EXIT_CODE: i32 = (0x31 << 1) | 1;

/// `HARMONY_ACCEL=tcg|kvm` wins; else KVM if a probe guest runs under it; else TCG.
/// The probe runs once per process.
pub fn choose_accel() -> Result<Accel, RunError> {
    // Set but empty counts as unset, as shells make it easy to export `HARMONY_ACCEL=`.
    if let Some(value) = std::env::var(ACCEL_ENV).ok().filter(|v| !v.is_empty()) {
        return parse_accel(&value);
    }
    static VERDICT: OnceLock<Accel> = OnceLock::new();
    Ok(*VERDICT.get_or_init(|| match probe_kvm() {
        Ok(()) => Accel::Kvm,
        Err(why) => {
            tracing::info!("using TCG: {why}");
            Accel::Tcg
        }
    }))
}

fn parse_accel(value: &str) -> Result<Accel, RunError> {
    match value {
        "tcg" => Ok(Accel::Tcg),
        "kvm" => Ok(Accel::Kvm),
        _ => Err(RunError::BadAccel {
            value: value.to_string(),
        }),
    }
}

/// A boot sector: `mov al,0x31; out 0xf4,al; hlt; jmp $-1`, then the 0x55AA signature.
fn probe_boot_sector() -> [u8; 512] {
    let mut sector = [0u8; 512];
    sector[..7].copy_from_slice(&[0xb0, 0x31, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
    sector[510] = 0x55;
    sector[511] = 0xaa;
    sector
}

/// QEMU booting the probe sector from `disk`; the guest's `out 0xf4` ends QEMU.
fn probe_command(accel: Accel, disk: &std::path::Path) -> Command {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", &accel.to_string()]);
    if accel == Accel::Kvm {
        cmd.args(["-cpu", "host"]);
    }
    cmd.args(["-M", "pc", "-display", "none", "-no-reboot"])
        .args([
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive",
        ])
        .arg(format!("format=raw,file={}", disk.display()));
    cmd
}

fn probe_kvm() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    let mut disk = tempfile::NamedTempFile::new().map_err(|e| format!("probe disk: {e}"))?;
    disk.write_all(&probe_boot_sector())
        .map_err(|e| format!("probe disk: {e}"))?;
    let mut child = probe_command(Accel::Kvm, disk.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("qemu-system-x86_64: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.code() == Some(PROBE_EXIT_CODE) => return Ok(()),
            Ok(Some(status)) => return Err(format!("KVM probe guest failed ({status})")),
            Ok(None) if start.elapsed() > PROBE_TIMEOUT => {
                // Best effort: the child is ours and about to be dropped either way.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "KVM probe guest did not finish in {PROBE_TIMEOUT:?}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for the KVM probe: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        assert_eq!(parse_accel("tcg").unwrap(), Accel::Tcg);
        assert_eq!(parse_accel("kvm").unwrap(), Accel::Kvm);
        assert!(parse_accel("hvf").unwrap_err().to_string().contains("hvf"));
    }

    #[test]
    fn boot_sector_is_bootable() {
        let s = probe_boot_sector();
        assert_eq!(&s[510..], &[0x55, 0xaa]);
        assert_eq!(PROBE_EXIT_CODE, 99);
    }

    /// The probe guest exits with 99 under TCG too: this proves the boot sector and
    /// isa-debug-exit wiring, so a KVM failure means KVM. Needs qemu-system-x86_64.
    #[test]
    fn probe_guest_exits_99_under_tcg() {
        let mut disk = tempfile::NamedTempFile::new().unwrap();
        disk.write_all(&probe_boot_sector()).unwrap();
        let status = probe_command(Accel::Tcg, disk.path()).status().unwrap();
        assert_eq!(status.code(), Some(PROBE_EXIT_CODE));
    }
}
