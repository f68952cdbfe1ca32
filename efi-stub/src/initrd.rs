//! The initrd, offered to the kernel as Linux ≥ 5.8 asks for it: a handle with the
//! vendor media device path LINUX_EFI_INITRD_MEDIA_GUID and an EFI_LOAD_FILE2_PROTOCOL
//! whose LoadFile copies the `.initrd` section (as in Linux's
//! drivers/firmware/efi/libstub/efi-stub-helper.c and systemd's src/boot/efi/initrd.c).

use core::ffi::c_void;
use core::ptr::null_mut;

use r_efi::efi;
use r_efi::protocols::{device_path, load_file, load_file2};

use crate::sections::Section;

pub const LINUX_EFI_INITRD_MEDIA_GUID: efi::Guid = efi::Guid::from_fields(
    0x5568e427,
    0x68fc,
    0x4f3d,
    0xac,
    0x74,
    &[0xca, 0x55, 0x52, 0x31, 0xcc, 0x68],
);

/// VENDOR_DEVICE_PATH (media, vendor) followed by the end node: 20 + 4 bytes, no padding
/// (the GUID sits at offset 4, its natural alignment; checked below).
#[repr(C)]
pub struct InitrdDevicePath {
    vendor: device_path::Protocol,
    guid: efi::Guid,
    end: device_path::Protocol,
}

const _: () = assert!(core::mem::size_of::<InitrdDevicePath>() == 24);
const _: () = assert!(core::mem::offset_of!(InitrdDevicePath, end) == 20);

static DEVICE_PATH: InitrdDevicePath = InitrdDevicePath {
    vendor: device_path::Protocol {
        r#type: device_path::TYPE_MEDIA,
        sub_type: device_path::Media::SUBTYPE_VENDOR,
        length: [20, 0],
    },
    guid: LINUX_EFI_INITRD_MEDIA_GUID,
    end: device_path::Protocol {
        r#type: device_path::TYPE_END,
        sub_type: device_path::End::SUBTYPE_ENTIRE,
        length: [4, 0],
    },
};

/// The protocol interface, extended with what LoadFile copies (the firmware passes the
/// interface pointer back as `this`).
#[repr(C)]
pub struct InitrdLoader {
    protocol: load_file::Protocol,
    initrd: Section,
}

impl InitrdLoader {
    pub fn new(initrd: Section) -> Self {
        InitrdLoader {
            protocol: load_file::Protocol {
                load_file: load_initrd,
            },
            initrd,
        }
    }
}

unsafe extern "efiapi" fn load_initrd(
    this: *mut load_file::Protocol,
    file_path: *mut device_path::Protocol,
    boot_policy: efi::Boolean,
    buffer_size: *mut usize,
    buffer: *mut c_void,
) -> efi::Status {
    if this.is_null() || file_path.is_null() || buffer_size.is_null() {
        return efi::Status::INVALID_PARAMETER;
    }
    if boot_policy != efi::Boolean::FALSE {
        return efi::Status::UNSUPPORTED;
    }
    // SAFETY: `this` is the interface we installed, the first field of an InitrdLoader.
    let initrd = unsafe { (*(this as *const InitrdLoader)).initrd };
    // SAFETY: buffer_size was checked non-null; the caller owns it.
    unsafe {
        if buffer.is_null() || *buffer_size < initrd.len {
            *buffer_size = initrd.len;
            return efi::Status::BUFFER_TOO_SMALL;
        }
        core::ptr::copy_nonoverlapping(initrd.ptr, buffer as *mut u8, initrd.len);
        *buffer_size = initrd.len;
    }
    efi::Status::SUCCESS
}

/// The new handle the device path and LoadFile2 sit on.
pub struct Installed {
    handle: efi::Handle,
}

/// Install the device path and LoadFile2 on a new handle. `loader` must stay in place
/// until the kernel has read the initrd, or until [`uninstall`].
///
/// # Safety
/// Boot services are running; `loader` outlives the kernel's use of it.
pub unsafe fn install(
    bs: *mut efi::BootServices,
    loader: &mut InitrdLoader,
) -> Result<Installed, efi::Status> {
    let mut handle: efi::Handle = null_mut();
    let mut dp_guid = device_path::PROTOCOL_GUID;
    let mut lf2_guid = load_file2::PROTOCOL_GUID;
    // An initrd someone else registered (a loader before us, or a stub that failed and
    // left its own behind) would leave the kernel to pick one of two: refuse, as
    // systemd-stub does.
    let mut path = &DEVICE_PATH as *const InitrdDevicePath as *mut device_path::Protocol;
    let mut found: efi::Handle = null_mut();
    // SAFETY: LocateDevicePath with valid pointers; it only advances `path`.
    let status = unsafe { ((*bs).locate_device_path)(&mut lf2_guid, &mut path, &mut found) };
    if status != efi::Status::NOT_FOUND {
        return Err(efi::Status::ALREADY_STARTED);
    }
    // SAFETY: both interfaces are valid for as long as the kernel may call them.
    unsafe {
        let status = ((*bs).install_protocol_interface)(
            &mut handle,
            &mut dp_guid,
            efi::NATIVE_INTERFACE,
            &DEVICE_PATH as *const InitrdDevicePath as *mut c_void,
        );
        if status.is_error() {
            return Err(status);
        }
        let status = ((*bs).install_protocol_interface)(
            &mut handle,
            &mut lf2_guid,
            efi::NATIVE_INTERFACE,
            loader as *mut InitrdLoader as *mut c_void,
        );
        if status.is_error() {
            // A lone initrd device path would point the next loader at nothing.
            ((*bs).uninstall_protocol_interface)(
                handle,
                &mut dp_guid,
                &DEVICE_PATH as *const InitrdDevicePath as *mut c_void,
            );
            return Err(status);
        }
    }
    Ok(Installed { handle })
}

/// Take both protocols off their handle again (the firmware then frees the handle): the
/// kernel did not take over, and `loader` goes away with the caller's frame, so a later
/// loader must not find it. Err: the first status the firmware refused with.
///
/// # Safety
/// Boot services are running; `installed` came from `install(bs, loader)`.
pub unsafe fn uninstall(
    bs: *mut efi::BootServices,
    installed: Installed,
    loader: &mut InitrdLoader,
) -> Result<(), efi::Status> {
    let mut dp_guid = device_path::PROTOCOL_GUID;
    let mut lf2_guid = load_file2::PROTOCOL_GUID;
    // SAFETY: the same handle, GUIDs and interfaces `install` used.
    let (lf2, dp) = unsafe {
        (
            ((*bs).uninstall_protocol_interface)(
                installed.handle,
                &mut lf2_guid,
                loader as *mut InitrdLoader as *mut c_void,
            ),
            ((*bs).uninstall_protocol_interface)(
                installed.handle,
                &mut dp_guid,
                &DEVICE_PATH as *const InitrdDevicePath as *mut c_void,
            ),
        )
    };
    match (lf2.is_error(), dp.is_error()) {
        (false, false) => Ok(()),
        (true, _) => Err(lf2),
        (false, true) => Err(dp),
    }
}
