//! Under Secure Boot the firmware verified this whole UKI before starting it, `.linux`
//! included: the signature covers every section. LoadImage of `.linux` would ask the
//! firmware's security protocols again, and the kernel carries its distribution's
//! signature (Debian's), not one by a key in the user's db. As systemd-stub does
//! (src/boot/efi/secure-boot.c, `install_security_override`), the file-authentication
//! functions of the PI Security and Security2 architectural protocols are hooked around
//! that one LoadImage: the exact buffer of our `.linux` section passes, every other
//! image goes to the firmware's own function. The hooks are taken out right after.

use core::ffi::c_void;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};

use r_efi::efi;
use r_efi::protocols::device_path;

const SECURITY_ARCH_PROTOCOL_GUID: efi::Guid = efi::Guid::from_fields(
    0xa46423e3,
    0x4617,
    0x49f1,
    0xb9,
    0xff,
    &[0xd1, 0xbf, 0xa9, 0x11, 0x58, 0x39],
);
const SECURITY2_ARCH_PROTOCOL_GUID: efi::Guid = efi::Guid::from_fields(
    0x94ab2f58,
    0x1438,
    0x4ef1,
    0x91,
    0x52,
    &[0x18, 0x94, 0x1a, 0x3a, 0x0e, 0x68],
);

type FileAuthenticationState = unsafe extern "efiapi" fn(
    this: *const Security,
    authentication_status: u32,
    file: *const device_path::Protocol,
) -> efi::Status;

type FileAuthentication = unsafe extern "efiapi" fn(
    this: *const Security2,
    file: *const device_path::Protocol,
    file_buffer: *mut c_void,
    file_size: usize,
    boot_policy: efi::Boolean,
) -> efi::Status;

#[repr(C)]
pub struct Security {
    file_authentication_state: FileAuthenticationState,
}

#[repr(C)]
pub struct Security2 {
    file_authentication: FileAuthentication,
}

// What the hooks allow and whom they defer to. One override at a time, on one CPU
// (boot services are single-threaded); atomics because statics must be Sync.
static ALLOWED_BUFFER: AtomicUsize = AtomicUsize::new(0);
static ALLOWED_SIZE: AtomicUsize = AtomicUsize::new(0);
static ORIGINAL: AtomicUsize = AtomicUsize::new(0);
static ORIGINAL2: AtomicUsize = AtomicUsize::new(0);

/// Security2: our `.linux` buffer passes, anything else is the firmware's decision.
unsafe extern "efiapi" fn file_authentication_hook(
    this: *const Security2,
    file: *const device_path::Protocol,
    file_buffer: *mut c_void,
    file_size: usize,
    boot_policy: efi::Boolean,
) -> efi::Status {
    if !file_buffer.is_null()
        && file_buffer as usize == ALLOWED_BUFFER.load(Ordering::SeqCst)
        && file_size == ALLOWED_SIZE.load(Ordering::SeqCst)
    {
        return efi::Status::SUCCESS;
    }
    // SAFETY: ORIGINAL2 holds the firmware's function, stored by `install` before this
    // hook was put in place, and it is never 0 while the hook is installed.
    let original: FileAuthentication = unsafe {
        core::mem::transmute::<usize, FileAuthentication>(ORIGINAL2.load(Ordering::SeqCst))
    };
    // SAFETY: the firmware's own function with the arguments the firmware gave us.
    unsafe { original(this, file, file_buffer, file_size, boot_policy) }
}

/// Security (the older protocol) sees no buffer, only a device path: our LoadImage from
/// memory has none, so a path-less image passes while the override is in place.
unsafe extern "efiapi" fn file_authentication_state_hook(
    this: *const Security,
    authentication_status: u32,
    file: *const device_path::Protocol,
) -> efi::Status {
    if file.is_null() {
        return efi::Status::SUCCESS;
    }
    // SAFETY: as for ORIGINAL2 above.
    let original: FileAuthenticationState = unsafe {
        core::mem::transmute::<usize, FileAuthenticationState>(ORIGINAL.load(Ordering::SeqCst))
    };
    // SAFETY: the firmware's own function with the arguments the firmware gave us.
    unsafe { original(this, authentication_status, file) }
}

/// The hooked protocols, to put back.
pub struct Override {
    security: *mut Security,
    security2: *mut Security2,
}

fn locate(bs: *mut efi::BootServices, guid: &efi::Guid) -> *mut c_void {
    let mut guid = *guid;
    let mut interface: *mut c_void = null_mut();
    // SAFETY: LocateProtocol with valid pointers.
    let status = unsafe { ((*bs).locate_protocol)(&mut guid, null_mut(), &mut interface) };
    if status.is_error() {
        null_mut()
    } else {
        interface
    }
}

/// Let LoadImage take `buffer[..size]` (our `.linux` section) without a signature check.
///
/// # Safety
/// Boot services are running; [`uninstall`] follows before the stub returns or starts
/// any other image.
pub unsafe fn install(bs: *mut efi::BootServices, buffer: *const u8, size: usize) -> Override {
    ALLOWED_BUFFER.store(buffer as usize, Ordering::SeqCst);
    ALLOWED_SIZE.store(size, Ordering::SeqCst);
    let security = locate(bs, &SECURITY_ARCH_PROTOCOL_GUID) as *mut Security;
    let security2 = locate(bs, &SECURITY2_ARCH_PROTOCOL_GUID) as *mut Security2;
    // SAFETY: the firmware's protocol structures, writable boot-services data; the
    // original function is stored before the hook replaces it.
    unsafe {
        if !security.is_null() {
            ORIGINAL.store(
                (*security).file_authentication_state as usize,
                Ordering::SeqCst,
            );
            (*security).file_authentication_state = file_authentication_state_hook;
        }
        if !security2.is_null() {
            ORIGINAL2.store((*security2).file_authentication as usize, Ordering::SeqCst);
            (*security2).file_authentication = file_authentication_hook;
        }
    }
    Override {
        security,
        security2,
    }
}

/// Put the firmware's functions back.
///
/// # Safety
/// `hooked` came from [`install`]; boot services are running.
pub unsafe fn uninstall(hooked: Override) {
    // SAFETY: the same structures `install` changed, with the functions it saved.
    unsafe {
        if !hooked.security.is_null() {
            (*hooked.security).file_authentication_state =
                core::mem::transmute::<usize, FileAuthenticationState>(
                    ORIGINAL.load(Ordering::SeqCst),
                );
        }
        if !hooked.security2.is_null() {
            (*hooked.security2).file_authentication =
                core::mem::transmute::<usize, FileAuthentication>(ORIGINAL2.load(Ordering::SeqCst));
        }
    }
    ALLOWED_BUFFER.store(0, Ordering::SeqCst);
    ALLOWED_SIZE.store(0, Ordering::SeqCst);
}
