//! The boot sequence: own image → payload sections → command line (built-in, then the
//! extras: extra_args.rs) → initrd protocol → LoadImage(kernel) → load options = command
//! line → StartImage. If StartImage returns, everything we installed or allocated for
//! the kernel is taken back before we return to the firmware.

use core::ffi::c_void;
use core::ptr::null_mut;

use r_efi::efi;
use r_efi::protocols::loaded_image;

use crate::cmdline::Cmdline;
use crate::console::Console;
use crate::extra_args;
use crate::initrd::{self, InitrdLoader};
use crate::sections::{self, Section};
use crate::security_override;

pub struct Firmware {
    image: efi::Handle,
    system_table: *mut efi::SystemTable,
}

/// What went wrong, for the console.
pub struct Failure {
    pub what: &'static str,
    pub status: efi::Status,
}

fn fail(what: &'static str, status: efi::Status) -> Failure {
    Failure { what, status }
}

impl Firmware {
    /// # Safety
    /// `system_table` is the one the firmware passed to the entry point.
    pub unsafe fn new(image: efi::Handle, system_table: *mut efi::SystemTable) -> Self {
        Firmware {
            image,
            system_table,
        }
    }

    pub fn console(&self) -> Console {
        // SAFETY: the system table is valid while boot services run.
        unsafe { Console::new((*self.system_table).con_out) }
    }

    pub(crate) fn boot_services(&self) -> *mut efi::BootServices {
        // SAFETY: as above.
        unsafe { (*self.system_table).boot_services }
    }

    pub(crate) fn image(&self) -> efi::Handle {
        self.image
    }

    pub(crate) fn system_table(&self) -> *mut efi::SystemTable {
        self.system_table
    }

    /// The LoadedImage protocol of `handle`.
    fn loaded_image(
        &self,
        handle: efi::Handle,
    ) -> Result<*mut loaded_image::Protocol, efi::Status> {
        let mut guid = loaded_image::PROTOCOL_GUID;
        let mut interface: *mut c_void = null_mut();
        // SAFETY: HandleProtocol with a valid handle and out pointer.
        let status =
            unsafe { ((*self.boot_services()).handle_protocol)(handle, &mut guid, &mut interface) };
        if status.is_error() {
            return Err(status);
        }
        Ok(interface as *mut loaded_image::Protocol)
    }
}

/// The command line as UCS-2 with a terminating NUL, in pool memory (it must outlive us:
/// the kernel reads it through its LoadedImage). `line` is ASCII (cmdline.rs).
fn ucs2_cmdline(fw: &Firmware, line: &[u8]) -> Result<(*mut u16, usize), Failure> {
    let bytes = (line.len() + 1) * 2;
    let mut buffer: *mut c_void = null_mut();
    // SAFETY: AllocatePool with a valid out pointer.
    let status =
        unsafe { ((*fw.boot_services()).allocate_pool)(efi::LOADER_DATA, bytes, &mut buffer) };
    if status.is_error() {
        return Err(fail("cannot allocate the command line", status));
    }
    let out = buffer as *mut u16;
    for (i, &b) in line.iter().enumerate() {
        // SAFETY: i < len, and the pool holds len + 1 units.
        unsafe { out.add(i).write(b as u16) };
    }
    // SAFETY: as above.
    unsafe { out.add(line.len()).write(0) };
    Ok((out, bytes))
}

/// Boot the kernel. Returns only if the kernel's EFI stub returns (its status).
pub fn boot_linux(fw: &Firmware) -> Result<efi::Status, Failure> {
    let bs = fw.boot_services();
    let me = fw
        .loaded_image(fw.image)
        .map_err(|s| fail("no LoadedImage protocol on our own image handle", s))?;
    // SAFETY: the firmware filled the protocol for our image; base/size describe it.
    let payload = unsafe {
        sections::find_payload((*me).image_base as *const u8, (*me).image_size as usize)
            .map_err(|what| fail(what, efi::Status::LOAD_ERROR))?
    };
    let linux: Section = payload
        .linux
        .filter(|s| s.len > 0)
        .ok_or_else(|| fail("this image has no .linux section", efi::Status::NOT_FOUND))?;
    let builtin: &[u8] = match &payload.cmdline {
        // SAFETY: the section lies inside our loaded image.
        Some(section) => unsafe { section.bytes() },
        None => &[],
    };
    let mut line = Cmdline::new(builtin).map_err(|what| fail(what, efi::Status::LOAD_ERROR))?;
    // SAFETY: `me` is our own LoadedImage, valid while we run.
    unsafe { extra_args::append(fw, &*me, &mut line) };

    // Kept on this frame: StartImage does not return while the kernel still needs it.
    let mut loader = payload.initrd.filter(|s| s.len > 0).map(InitrdLoader::new);
    let installed = match loader.as_mut() {
        // SAFETY: `loader` lives until this function returns, after the kernel is done;
        // every way out below uninstalls it first.
        Some(loader) => Some(unsafe { initrd::install(bs, loader) }.map_err(|s| {
            fail(
                "cannot install the initrd LoadFile2 protocol (another initrd is registered?)",
                s,
            )
        })?),
        None => None,
    };
    let started = start_kernel(
        fw,
        linux,
        line.as_bytes(),
        payload.initrd.map_or(0, |s| s.len),
    );
    // Whatever the kernel's EFI stub returned, Linux did not take over: nothing may keep
    // pointing into this frame (the next boot option's loader would find our initrd).
    if let (Some(installed), Some(loader)) = (installed, loader.as_mut()) {
        // SAFETY: installed on this loader above.
        if let Err(status) = unsafe { initrd::uninstall(bs, installed, loader) } {
            fw.console()
                .failure("cannot uninstall the initrd LoadFile2 protocol", status);
        }
    }
    started
}

/// LoadImage(.linux), its load options = `line`, StartImage. The load options' pool is
/// freed and the kernel image unloaded again when it does not start or returns.
fn start_kernel(
    fw: &Firmware,
    linux: Section,
    line: &[u8],
    initrd_len: usize,
) -> Result<efi::Status, Failure> {
    let bs = fw.boot_services();
    let mut kernel: efi::Handle = null_mut();
    // Secure Boot verified the kernel as part of this image: let LoadImage take it.
    let hooked = extra_args::secure_boot(fw).then(|| {
        // SAFETY: boot services run; uninstalled right after LoadImage, below.
        unsafe { security_override::install(bs, linux.ptr, linux.len) }
    });
    // SAFETY: the .linux bytes stay mapped; LoadImage copies them.
    let status = unsafe {
        ((*bs).load_image)(
            efi::Boolean::FALSE,
            fw.image,
            null_mut(),
            linux.ptr as *mut c_void,
            linux.len,
            &mut kernel,
        )
    };
    if let Some(hooked) = hooked {
        // SAFETY: from install above.
        unsafe { security_override::uninstall(hooked) };
    }
    if status.is_error() {
        return Err(fail("LoadImage refused the .linux section", status));
    }
    let mut options: *mut u16 = null_mut();
    let prepared = (|| {
        if line.is_empty() {
            return Ok(());
        }
        let (buffer, size) = ucs2_cmdline(fw, line)?;
        options = buffer;
        let child = fw
            .loaded_image(kernel)
            .map_err(|s| fail("no LoadedImage protocol on the kernel's handle", s))?;
        // SAFETY: the kernel's LoadedImage is ours to fill before StartImage.
        unsafe {
            (*child).load_options = buffer as *mut c_void;
            (*child).load_options_size = size as u32;
        }
        Ok(())
    })();
    let free_options = |options: *mut u16| {
        if !options.is_null() {
            // SAFETY: allocated by ucs2_cmdline; nothing refers to it any more.
            unsafe { ((*bs).free_pool)(options as *mut c_void) };
        }
    };
    if let Err(failure) = prepared {
        // SAFETY: loaded above and never started.
        unsafe { ((*bs).unload_image)(kernel) };
        free_options(options);
        return Err(failure);
    }

    fw.console().booting(linux.len, initrd_len);
    let mut exit_size = 0usize;
    let mut exit_data: *mut efi::Char16 = null_mut();
    // SAFETY: `kernel` is the handle LoadImage returned.
    let status = unsafe { ((*bs).start_image)(kernel, &mut exit_size, &mut exit_data) };
    // The firmware unloaded the kernel (an application) when it returned, so its
    // LoadedImage no longer points at the options.
    free_options(options);
    if !exit_data.is_null() {
        // SAFETY: StartImage hands the caller the exit data's pool buffer.
        unsafe { ((*bs).free_pool)(exit_data as *mut c_void) };
    }
    if status.is_error() {
        return Err(fail("the kernel's EFI stub returned an error", status));
    }
    Ok(status)
}
