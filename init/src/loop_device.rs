//! Attaching the root image to a loop device, read-only.
//!
//! loopdev-3 needs bindgen (libclang) at build time, so the three ioctls are
//! declared here by hand from `<linux/loop.h>`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

const LOOP_CONTROL: &str = "/dev/loop-control";
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_NAME_SIZE: usize = 64;
/// LOOP_CTL_GET_FREE can hand out a device another opener grabs first;
/// retry a few times on EBUSY before giving up.
const ATTACH_ATTEMPTS: usize = 5;

/// `struct loop_info64` from `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config` from `<linux/loop.h>` (LOOP_CONFIGURE, Linux 5.8+).
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

impl LoopConfig {
    fn read_only(backing_fd: u32, backing_path: &Path) -> Self {
        let mut file_name = [0u8; LO_NAME_SIZE];
        // The kernel shows this in /sys/block/loopN/loop/backing_file only
        // as a hint; truncate, keeping the terminating NUL.
        let name = backing_path.as_os_str().as_bytes();
        let len = name.len().min(LO_NAME_SIZE - 1);
        file_name[..len].copy_from_slice(&name[..len]);
        LoopConfig {
            fd: backing_fd,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_READ_ONLY,
                lo_file_name: file_name,
                lo_crypt_name: [0; LO_NAME_SIZE],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        }
    }
}

// nix's ioctl macros generate `unsafe fn`s, wrapped here into safe functions. Each wrapper passes
// a valid open fd and, for LOOP_CONFIGURE, a pointer to a live, fully
// initialised `LoopConfig` that the kernel only reads during the call.
#[allow(unsafe_code)]
mod ioctl {
    use super::LoopConfig;
    use std::os::fd::RawFd;

    nix::ioctl_none_bad!(loop_ctl_get_free, 0x4C82);
    nix::ioctl_write_ptr_bad!(loop_configure, 0x4C0A, LoopConfig);
    nix::ioctl_write_int_bad!(loop_set_fd, 0x4C00);

    pub fn get_free(control: RawFd) -> nix::Result<i32> {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument; a bad fd is an error, not UB.
        unsafe { loop_ctl_get_free(control) }
    }

    pub fn configure(device: RawFd, config: &LoopConfig) -> nix::Result<()> {
        // SAFETY: `config` is a live, fully initialised LoopConfig the kernel only reads
        // during the call.
        unsafe { loop_configure(device, config) }.map(drop)
    }

    pub fn set_fd(device: RawFd, backing: RawFd) -> nix::Result<()> {
        // SAFETY: LOOP_SET_FD takes the backing fd by value; no memory is shared.
        unsafe { loop_set_fd(device, backing) }.map(drop)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error("open {path}: {source} (is the loop module loaded?)")]
    Control {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("{LOOP_CONTROL}: LOOP_CTL_GET_FREE: {0}")]
    GetFree(Errno),
    #[error("open {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("attach {} to {}: {source}", backing.display(), device.display())]
    Attach {
        backing: PathBuf,
        device: PathBuf,
        source: Errno,
    },
}

/// Attaches `backing` read-only to a free loop device and returns the
/// device's path (e.g. `/dev/loop0`). The device stays attached for the life
/// of the system: the root filesystem lives on it.
pub fn attach_read_only(backing: &Path) -> Result<PathBuf, LoopError> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(LOOP_CONTROL)
        .map_err(|source| LoopError::Control {
            path: LOOP_CONTROL,
            source,
        })?;
    // Opened read-only: even the LOOP_SET_FD fallback then gives a read-only device.
    let backing_file = File::open(backing).map_err(|source| LoopError::Open {
        path: backing.to_path_buf(),
        source,
    })?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let number = ioctl::get_free(control.as_raw_fd()).map_err(LoopError::GetFree)?;
        let device = PathBuf::from(format!("/dev/loop{number}"));
        // devtmpfs creates the node as the kernel adds the device.
        let device_file = File::open(&device).map_err(|source| LoopError::Open {
            path: device.clone(),
            source,
        })?;
        match configure(&device_file, &backing_file, backing) {
            Ok(()) => return Ok(device),
            Err(Errno::EBUSY) if attempt < ATTACH_ATTEMPTS => continue,
            Err(source) => {
                return Err(LoopError::Attach {
                    backing: backing.to_path_buf(),
                    device,
                    source,
                })
            }
        }
    }
}

fn configure(device: &File, backing: &File, backing_path: &Path) -> Result<(), Errno> {
    let fd = u32::try_from(backing.as_raw_fd()).map_err(|_| Errno::EBADF)?;
    let config = LoopConfig::read_only(fd, backing_path);
    match ioctl::configure(device.as_raw_fd(), &config) {
        // Kernels before 5.8 lack LOOP_CONFIGURE; the read-only backing fd
        // makes LOOP_SET_FD's device read-only as well.
        Err(Errno::EINVAL | Errno::ENOTTY) => {
            ioctl::set_fd(device.as_raw_fd(), backing.as_raw_fd())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_kernel_abi() {
        // Sizes from <linux/loop.h> on x86_64: a mismatch would make the
        // kernel read garbage, so pin them.
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
        assert_eq!(std::mem::offset_of!(LoopConfig, info), 8);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_flags), 52);
        assert_eq!(std::mem::offset_of!(LoopInfo64, lo_file_name), 56);
    }

    #[test]
    fn config_is_read_only_and_names_the_backing_file() {
        let c = LoopConfig::read_only(7, Path::new("/harmony/root.squashfs"));
        assert_eq!(c.fd, 7);
        assert_eq!(c.info.lo_flags, LO_FLAGS_READ_ONLY);
        assert_eq!(&c.info.lo_file_name[..22], b"/harmony/root.squashfs");
        assert_eq!(c.info.lo_file_name[22], 0);
    }

    #[test]
    fn long_backing_name_is_truncated_with_nul() {
        let long = format!("/{}", "x".repeat(100));
        let c = LoopConfig::read_only(3, Path::new(&long));
        assert_eq!(c.info.lo_file_name[LO_NAME_SIZE - 1], 0);
        assert_eq!(c.info.lo_file_name[LO_NAME_SIZE - 2], b'x');
    }
}
