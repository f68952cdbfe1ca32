//! Creating a device-mapper device from a one-line table, through the ioctls of
//! `<linux/dm-ioctl.h>` on `/dev/mapper/control`: DM_DEV_CREATE, DM_TABLE_LOAD,
//! DM_DEV_SUSPEND (without the suspend flag: resume, which activates the table).
//! No libdevmapper in a static initramfs, so the structures are laid out here.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{major, makedev, minor, mknod, Mode, SFlag};

const CONTROL: &str = "/dev/mapper/control";
/// `sizeof(struct dm_ioctl)`; also where the data (target specs) starts.
const DM_IOCTL_SIZE: usize = 312;
/// `sizeof(struct dm_target_spec)`.
const DM_TARGET_SPEC_SIZE: usize = 40;
const DM_NAME_LEN: usize = 128;
const DM_MAX_TYPE_NAME: usize = 16;
/// Interface version 4.0.0: any v4 kernel accepts it (minor is backward compatible).
const DM_VERSION: [u32; 3] = [4, 0, 0];
const DM_READONLY_FLAG: u32 = 1 << 0;
const DM_IOCTL_TYPE: u8 = 0xfd;
const DM_DEV_CREATE_CMD: u8 = 3;
const DM_DEV_SUSPEND_CMD: u8 = 6;
const DM_TABLE_LOAD_CMD: u8 = 9;

// Offsets inside struct dm_ioctl.
const OFF_VERSION: usize = 0;
const OFF_DATA_SIZE: usize = 12;
const OFF_DATA_START: usize = 16;
const OFF_TARGET_COUNT: usize = 20;
const OFF_FLAGS: usize = 28;
const OFF_DEV: usize = 40;
const OFF_NAME: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum DmError {
    #[error("open {CONTROL}: {0} (is dm_mod loaded?)")]
    Control(std::io::Error),
    #[error("device-mapper name {0:?} is empty, too long or has a '/'")]
    BadName(String),
    #[error("device-mapper target type {0:?} is empty or too long")]
    BadTarget(String),
    #[error("device-mapper {what} of {name}: {errno}")]
    Ioctl {
        what: &'static str,
        name: String,
        errno: Errno,
    },
    #[error("create {}: {errno}", path.display())]
    Node { path: PathBuf, errno: Errno },
}

/// One table line: `sectors` 512-byte sectors from 0 mapped by `target` with `params`.
pub struct Table<'a> {
    pub sectors: u64,
    pub target: &'a str,
    pub params: &'a str,
}

/// Creates `name` with the one-target `table`, read-only, activates it and makes
/// `/dev/mapper/NAME`. Returns that path.
pub fn create_read_only(name: &str, table: &Table) -> Result<PathBuf, DmError> {
    if name.is_empty() || name.len() >= DM_NAME_LEN || name.contains('/') {
        return Err(DmError::BadName(name.into()));
    }
    if table.target.is_empty() || table.target.len() >= DM_MAX_TYPE_NAME {
        return Err(DmError::BadTarget(table.target.into()));
    }
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open(CONTROL)
        .map_err(DmError::Control)?;
    let ioctl = |what, cmd, buffer: &mut Buffer| {
        ioctl::dm(&control, cmd, buffer).map_err(|errno| DmError::Ioctl {
            what,
            name: name.into(),
            errno,
        })
    };
    let mut create = header(name, 0, 0, DM_IOCTL_SIZE);
    ioctl("DM_DEV_CREATE", DM_DEV_CREATE_CMD, &mut create)?;
    let dev = create.u64_at(OFF_DEV);

    let mut load = table_load(name, table);
    ioctl("DM_TABLE_LOAD", DM_TABLE_LOAD_CMD, &mut load)?;
    let mut resume = header(name, 0, 0, DM_IOCTL_SIZE);
    ioctl("DM_DEV_SUSPEND (resume)", DM_DEV_SUSPEND_CMD, &mut resume)?;

    let path = Path::new("/dev/mapper").join(name);
    // The kernel's huge_encode_dev is the encoding glibc's major()/minor() decode.
    let devt = makedev(major(dev), minor(dev));
    match mknod(&path, SFlag::S_IFBLK, Mode::from_bits_truncate(0o600), devt) {
        Ok(()) | Err(Errno::EEXIST) => Ok(path),
        Err(errno) => Err(DmError::Node { path, errno }),
    }
}

/// The ioctl argument: bytes in 8-byte words, as the kernel wants them aligned.
struct Buffer {
    words: Vec<u64>,
}

impl Buffer {
    fn zeroed(len: usize) -> Self {
        Buffer {
            words: vec![0; len.div_ceil(8)],
        }
    }

    fn put(&mut self, offset: usize, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            let at = offset + i;
            let mut word = self.words[at / 8].to_ne_bytes();
            word[at % 8] = *b;
            self.words[at / 8] = u64::from_ne_bytes(word);
        }
    }

    fn u64_at(&self, offset: usize) -> u64 {
        debug_assert_eq!(offset % 8, 0);
        self.words[offset / 8]
    }

    #[cfg(test)]
    fn bytes(&self) -> Vec<u8> {
        self.words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }
}

/// `struct dm_ioctl` for `name`, in a buffer of `data_size` bytes.
fn header(name: &str, flags: u32, target_count: u32, data_size: usize) -> Buffer {
    let mut b = Buffer::zeroed(data_size);
    for (i, v) in DM_VERSION.iter().enumerate() {
        b.put(OFF_VERSION + 4 * i, &v.to_ne_bytes());
    }
    b.put(OFF_DATA_SIZE, &(data_size as u32).to_ne_bytes());
    b.put(OFF_DATA_START, &(DM_IOCTL_SIZE as u32).to_ne_bytes());
    b.put(OFF_TARGET_COUNT, &target_count.to_ne_bytes());
    b.put(OFF_FLAGS, &flags.to_ne_bytes());
    b.put(OFF_NAME, name.as_bytes());
    b
}

/// DM_TABLE_LOAD's argument: the header, one `struct dm_target_spec`, its
/// NUL-terminated parameter string, padded to 8 bytes.
fn table_load(name: &str, table: &Table) -> Buffer {
    let spec_len = (DM_TARGET_SPEC_SIZE + table.params.len() + 1).div_ceil(8) * 8;
    let mut b = header(name, DM_READONLY_FLAG, 1, DM_IOCTL_SIZE + spec_len);
    let spec = DM_IOCTL_SIZE;
    b.put(spec, &0u64.to_ne_bytes()); // sector_start
    b.put(spec + 8, &table.sectors.to_ne_bytes()); // length
    b.put(spec + 20, &(spec_len as u32).to_ne_bytes()); // next
    b.put(spec + 24, table.target.as_bytes()); // target_type
    b.put(spec + DM_TARGET_SPEC_SIZE, table.params.as_bytes());
    b
}

// The one raw ioctl: the kernel reads and writes `buffer.words`, a live, owned
// allocation of the `data_size` the header declares (header() sizes both), only
// for the duration of the call.
#[allow(unsafe_code)]
mod ioctl {
    use super::*;

    pub fn dm(control: &File, cmd: u8, buffer: &mut Buffer) -> nix::Result<()> {
        let request = nix::request_code_readwrite!(DM_IOCTL_TYPE, cmd, DM_IOCTL_SIZE);
        // SAFETY: `buffer.words` is a live, owned allocation of the `data_size` its header
        // declares, which the kernel reads and writes only during the call; a bad fd is
        // an error (EBADF), not undefined behaviour.
        let result = unsafe {
            nix::libc::ioctl(
                control.as_raw_fd(),
                request as nix::sys::ioctl::ioctl_num_type,
                buffer.words.as_mut_ptr(),
            )
        };
        Errno::result(result).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Layout and request numbers as the system's `<linux/dm-ioctl.h>` has them,
    /// printed by a C program (skipped where no C compiler or header exists).
    fn from_c_header() -> Option<String> {
        let header = Path::new("/usr/include/linux/dm-ioctl.h");
        if !header.exists() {
            harmony_test_support::skip(
                "no /usr/include/linux/dm-ioctl.h: Debian package linux-libc-dev",
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("dm.c");
        std::fs::write(
            &src,
            r#"#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/dm-ioctl.h>
int main(void) {
  printf("%zu %zu %zu %zu %zu %zu %zu %zu\n", sizeof(struct dm_ioctl),
    offsetof(struct dm_ioctl, data_size), offsetof(struct dm_ioctl, data_start),
    offsetof(struct dm_ioctl, target_count), offsetof(struct dm_ioctl, flags),
    offsetof(struct dm_ioctl, dev), offsetof(struct dm_ioctl, name),
    sizeof(struct dm_target_spec));
  printf("%zu %zu %zu\n", offsetof(struct dm_target_spec, length),
    offsetof(struct dm_target_spec, next), offsetof(struct dm_target_spec, target_type));
  printf("%lx %lx %lx %u\n", (unsigned long)DM_DEV_CREATE, (unsigned long)DM_TABLE_LOAD,
    (unsigned long)DM_DEV_SUSPEND, (unsigned)DM_READONLY_FLAG);
  return 0;
}
"#,
        )
        .unwrap();
        let exe = dir.path().join("dm");
        match Command::new("cc").arg(&src).arg("-o").arg(&exe).status() {
            Ok(s) => assert!(s.success(), "the C program did not compile"),
            Err(_) => {
                harmony_test_support::skip("no C compiler cc: Debian package gcc");
                return None;
            }
        }
        let out = Command::new(&exe).output().unwrap();
        Some(String::from_utf8(out.stdout).unwrap())
    }

    #[test]
    fn layout_and_requests_match_the_kernel_header() {
        let Some(c) = from_c_header() else { return };
        let code = |cmd| nix::request_code_readwrite!(DM_IOCTL_TYPE, cmd, DM_IOCTL_SIZE);
        let ours = format!(
            "{DM_IOCTL_SIZE} {OFF_DATA_SIZE} {OFF_DATA_START} {OFF_TARGET_COUNT} {OFF_FLAGS} \
             {OFF_DEV} {OFF_NAME} {DM_TARGET_SPEC_SIZE}\n8 20 24\n{:x} {:x} {:x} {DM_READONLY_FLAG}\n",
            code(DM_DEV_CREATE_CMD),
            code(DM_TABLE_LOAD_CMD),
            code(DM_DEV_SUSPEND_CMD),
        );
        assert_eq!(ours, c);
    }

    #[test]
    fn table_load_buffer_holds_header_spec_and_params() {
        let table = Table {
            sectors: 2048,
            target: "verity",
            params: "1 /dev/vda2 /dev/vda3 4096 4096 256 1 sha256 ab cd",
        };
        let b = table_load("harmony-root", &table).bytes();
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        assert_eq!(b.len() % 8, 0);
        assert_eq!(u32_at(OFF_DATA_SIZE) as usize, b.len());
        assert_eq!(u32_at(OFF_DATA_START) as usize, DM_IOCTL_SIZE);
        assert_eq!(u32_at(OFF_TARGET_COUNT), 1);
        assert_eq!(u32_at(OFF_FLAGS), DM_READONLY_FLAG);
        assert_eq!((u32_at(0), u32_at(4), u32_at(8)), (4, 0, 0));
        assert_eq!(&b[OFF_NAME..OFF_NAME + 13], b"harmony-root\0");
        let spec = DM_IOCTL_SIZE;
        assert_eq!(u64::from_ne_bytes(b[spec..spec + 8].try_into().unwrap()), 0);
        assert_eq!(
            u64::from_ne_bytes(b[spec + 8..spec + 16].try_into().unwrap()),
            2048
        );
        assert_eq!(u32_at(spec + 20) as usize, b.len() - DM_IOCTL_SIZE);
        assert_eq!(&b[spec + 24..spec + 31], b"verity\0");
        let params = &b[spec + DM_TARGET_SPEC_SIZE..];
        assert_eq!(&params[..table.params.len()], table.params.as_bytes());
        assert!(params[table.params.len()..].iter().all(|&x| x == 0));
    }

    #[test]
    fn bad_names_are_refused_before_any_ioctl() {
        let table = Table {
            sectors: 8,
            target: "verity",
            params: "",
        };
        assert!(matches!(
            create_read_only("a/b", &table),
            Err(DmError::BadName(_))
        ));
        assert!(matches!(
            create_read_only(&"x".repeat(128), &table),
            Err(DmError::BadName(_))
        ));
        let long_target = Table {
            target: "0123456789abcdef",
            ..table
        };
        assert!(matches!(
            create_read_only("ok", &long_target),
            Err(DmError::BadTarget(_))
        ));
    }
}
