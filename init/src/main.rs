//! harmony-init: the initramfs's /init (docs/boot-flow.md). PID 1 must never
//! panic or exit: every failure ends in one HARMONY-INIT-ERROR line and a
//! power-off.

use std::time::Duration;

use harmony_init::{boot, console};

use nix::sys::reboot::{reboot, RebootMode};
use nix::unistd::{getpid, sync};

fn main() {
    // It mounts over / and powers the machine off: never as anything but PID 1.
    if getpid().as_raw() != 1 {
        eprintln!("harmony-init: must run as PID 1 (the initramfs's /init); refusing");
        std::process::exit(2);
    }
    let message = match std::panic::catch_unwind(boot::run) {
        Ok(Err(error)) => format!("{error:#}"),
        Ok(Ok(never)) => match never {},
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("internal error: panic: {what}")
        }
    };
    console::fatal(message);
    power_off()
}

/// Leaves time to read the error, then powers off. Exiting PID 1 would
/// panic the kernel instead, so if power-off fails we wait forever.
fn power_off() -> ! {
    sync();
    std::thread::sleep(Duration::from_secs(2));
    let _ = reboot(RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
