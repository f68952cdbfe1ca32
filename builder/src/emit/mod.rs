//! Emitters: turn the final root tree into bootable artifacts.

pub mod cpio;
pub mod disk;
pub mod disk_formats;
pub mod disk_image;
pub mod efi_stub;
pub mod esp;
pub mod gpt;
pub mod initramfs;
pub mod ipxe;
pub mod ova;
pub mod ovf;
pub mod pe;
pub mod pe_authenticode;
pub mod pxe;
pub mod qcow2;
pub mod raw_disk;
pub mod rootfs;
pub mod squashfs;
pub mod uki;
pub mod uki_signer;
pub mod vaquero;
pub mod verified_root;
pub mod verity;
pub mod vmdk;

use crate::kernel::KernelError;

#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("squashfs: {path}: {problem}")]
    Squashfs { path: String, problem: String },
    #[error("{what}: cannot write the cpio archive: {source}")]
    Cpio {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: cannot compress: {source}")]
    Compress {
        what: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Tree {
        what: String,
        source: crate::tree::TreeError,
    },
    #[error("{path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("{path}: boot module is not a regular file in the image")]
    ModuleNotAFile { path: String },
    #[error(transparent)]
    EfiStub(#[from] efi_stub::StubError),
    #[error(transparent)]
    Uki(#[from] uki::UkiError),
    #[error(transparent)]
    Esp(#[from] esp::EspError),
    #[error(transparent)]
    Disk(#[from] disk::DiskError),
}
