//! Extra kernel arguments from outside the UKI, appended to its built-in command line
//! (cmdline.rs says why append-only): first our load options (a boot entry's or the
//! UEFI shell's arguments), then the SMBIOS OEM string
//! `io.systemd.stub.kernel-cmdline-extra=` (a VMM's, e.g. `harmony run --append`), the
//! order systemd-stub uses: most fixed to most dynamic.
//!
//! Unlike systemd-stub, nothing here is read while Secure Boot is on: systemd-stub
//! still appends the SMBIOS string then (measured into TPM PCR 12), but this stub
//! measures nothing, so with Secure Boot the signed `.cmdline` alone is what boots.

use core::ffi::c_void;
use core::ptr::null_mut;

use r_efi::efi;
use r_efi::protocols::{loaded_image, shell_parameters};

use crate::boot::Firmware;
use crate::cmdline::{Cmdline, MAX_CMDLINE};
use crate::console::Console;
use crate::load_options::{self, LoadOptions};
use crate::smbios::{self, EntryPoint};

const GLOBAL_VARIABLE: efi::Guid = efi::Guid::from_fields(
    0x8be4df61,
    0x93ca,
    0x11d2,
    0xaa,
    0x0d,
    &[0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);

/// Append what the firmware passes; every problem is one console line, never a failed boot.
///
/// # Safety
/// `me` is our image's LoadedImage protocol; boot services are running.
pub unsafe fn append(fw: &Firmware, me: &loaded_image::Protocol, line: &mut Cmdline) {
    let console = fw.console();
    if secure_boot(fw) {
        if !me.load_options.is_null() || smbios_table(fw, &console).is_some() {
            console.note(&[b"Secure Boot is on: extra kernel arguments are not read"]);
        }
        return;
    }

    if !me.load_options.is_null() && me.load_options_size > 0 {
        let mut text = [0u8; MAX_CMDLINE];
        // SAFETY: the firmware (or our caller) gave these bytes as our load options.
        let options = unsafe {
            core::slice::from_raw_parts(me.load_options as *const u8, me.load_options_size as usize)
        };
        match load_options::decode(options, started_by_shell(fw), &mut text) {
            LoadOptions::Text(0) | LoadOptions::NotText => {}
            LoadOptions::Text(len) => add(&console, line, b"load options", &text[..len]),
            LoadOptions::TooLong => {
                console.note(&[b"load options ignored: longer than a kernel command line"])
            }
        }
    }

    if let Some(table) = smbios_table(fw, &console) {
        match smbios::find_oem_string(table, smbios::CMDLINE_EXTRA_PREFIX) {
            Ok(Some(extra)) => add(&console, line, b"SMBIOS", extra),
            Ok(None) => {}
            Err(what) => console.note(&[b"SMBIOS ignored: ", what.as_bytes()]),
        }
    }
}

fn add(console: &Console, line: &mut Cmdline, source: &[u8], extra: &[u8]) {
    let before = line.as_bytes().len();
    let result = line.append(extra, |arg| {
        console.note(&[
            b"dropped an extra argument from ",
            source,
            b" (it would change the verified root): ",
            arg,
        ])
    });
    match result {
        // What was appended, after its separating space: the dropped ones are not.
        Ok(()) => match line.as_bytes().get(before + 1..) {
            Some(added) if !added.is_empty() => {
                console.note(&[b"extra kernel arguments from ", source, b": ", added])
            }
            _ => {}
        },
        Err(e) => console.note(&[source, b" ignored: ", e.what().as_bytes()]),
    }
}

/// The EFI global variable `SecureBoot` is 1.
pub fn secure_boot(fw: &Firmware) -> bool {
    let mut name: [u16; 11] = [0; 11];
    for (slot, b) in name.iter_mut().zip(b"SecureBoot") {
        *slot = u16::from(*b);
    }
    let mut guid = GLOBAL_VARIABLE;
    let mut attributes = 0u32;
    let mut value = 0u8;
    let mut size = 1usize;
    // SAFETY: GetVariable with valid pointers; `value` holds the one byte asked for.
    let status = unsafe {
        let rt = (*fw.system_table()).runtime_services;
        ((*rt).get_variable)(
            name.as_mut_ptr(),
            &mut guid,
            &mut attributes,
            &mut size,
            &mut value as *mut u8 as *mut c_void,
        )
    };
    !status.is_error() && size == 1 && value == 1
}

/// The UEFI shell installs its parameters protocol on the images it starts; their load
/// options then begin with the image's own path.
fn started_by_shell(fw: &Firmware) -> bool {
    let mut guid = shell_parameters::PROTOCOL_GUID;
    let mut interface: *mut c_void = null_mut();
    // SAFETY: HandleProtocol with our own handle and valid out pointer.
    let status =
        unsafe { ((*fw.boot_services()).handle_protocol)(fw.image(), &mut guid, &mut interface) };
    !status.is_error() && !interface.is_null()
}

/// The vendor table the firmware lists under `guid`.
fn configuration_table(fw: &Firmware, guid: &efi::Guid) -> Option<*const u8> {
    // SAFETY: the system table's configuration table holds `number_of_table_entries`.
    unsafe {
        let st = fw.system_table();
        let tables = (*st).configuration_table;
        if tables.is_null() {
            return None;
        }
        (0..(*st).number_of_table_entries)
            .map(|i| &*tables.add(i))
            .find(|t| t.vendor_guid == *guid && !t.vendor_table.is_null())
            .map(|t| t.vendor_table as *const u8)
    }
}

/// The SMBIOS structure table: through the SMBIOS 3 (64-bit) entry point, else the
/// 32-bit one. A malformed entry point is a console line and the next one is tried.
fn smbios_table(fw: &Firmware, console: &Console) -> Option<&'static [u8]> {
    for (guid, kind, name) in [
        (
            efi::SMBIOS3_TABLE_GUID,
            EntryPoint::Smbios3,
            &b"SMBIOS 3"[..],
        ),
        (efi::SMBIOS_TABLE_GUID, EntryPoint::Smbios2, &b"SMBIOS"[..]),
    ] {
        let Some(ep) = configuration_table(fw, &guid) else {
            continue;
        };
        // SAFETY: the firmware's entry point: its first 7 bytes, then the length it
        // states, at most MAX_ENTRY_POINT_BYTES (entry_point_len checks).
        let located = smbios::entry_point_len(kind, unsafe { core::slice::from_raw_parts(ep, 7) })
            .and_then(|len| {
                // SAFETY: `len` is the length the entry point states, checked by
                // entry_point_len against MAX_ENTRY_POINT_BYTES.
                smbios::parse_entry_point(kind, unsafe { core::slice::from_raw_parts(ep, len) })
            });
        match located {
            Ok(table) => {
                // SAFETY: the table the entry point names, cut at MAX_TABLE_BYTES;
                // identity-mapped while boot services run.
                return Some(unsafe {
                    core::slice::from_raw_parts(table.address as usize as *const u8, table.len)
                });
            }
            Err(what) => console.note(&[name, b" ignored: ", what.as_bytes()]),
        }
    }
    None
}
