//! harmony-efi-stub: the EFI application at the front of a Harmony unified kernel image.
//!
//! It does what systemd-stub does, and no more: find the `.linux`, `.initrd` and
//! `.cmdline` sections of its own PE image, offer the initrd to the kernel through the
//! Linux initrd media LoadFile2 protocol, load the kernel's EFI stub with LoadImage, give
//! it the command line as its load options and start it. Extra kernel arguments (load
//! options, SMBIOS OEM string `io.systemd.stub.kernel-cmdline-extra=`) are appended to
//! the built-in line, never replace it (cmdline.rs, extra_args.rs); under Secure Boot none
//! are read, and the kernel, verified as part of this image, is loaded past the firmware's
//! signature check (security_override.rs). Every failure is printed on the
//! firmware console with the EFI status, then returned to the firmware.
// The host's std only for `cargo test` of the pure parsers and for the fuzz targets
// (fuzz/, built with `--cfg fuzzing`).
#![cfg_attr(not(any(test, fuzzing)), no_std)]
// Everything here talks to the firmware through raw pointers and `extern "efiapi"` calls.
#![allow(unsafe_code)]

mod boot;
// Public for the fuzz targets (fuzz/): the extras and SMBIOS come from outside the UKI.
pub mod cmdline;
mod console;
mod extra_args;
mod initrd;
mod load_options;
#[cfg(not(any(test, fuzzing)))]
mod mem;
mod sections;
mod security_override;
pub mod smbios;

use r_efi::efi;

/// The PE entry point (`-e efi_main`).
///
/// # Safety
/// Called by the firmware only, with our image handle and its valid system table.
#[no_mangle]
pub unsafe extern "efiapi" fn efi_main(
    image: efi::Handle,
    system_table: *mut efi::SystemTable,
) -> efi::Status {
    // SAFETY: see above; the system table outlives this call.
    let firmware = unsafe { boot::Firmware::new(image, system_table) };
    match boot::boot_linux(&firmware) {
        Ok(status) => status,
        Err(failure) => {
            firmware.console().failure(failure.what, failure.status);
            failure.status
        }
    }
}

#[cfg(not(any(test, fuzzing)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // No unwinding and nothing to clean up: a bug in the stub stops the machine here.
    loop {
        core::hint::spin_loop();
    }
}
