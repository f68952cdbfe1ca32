//! A unified kernel image (UKI): the EFI stub with the kernel, the initrd, the command
//! line and the os-release appended as PE sections (`.osrel`, `.cmdline`, `.linux`,
//! `.initrd`), as systemd's ukify lays them out, after an `.sbat` section (the stub's
//! SBAT generation, which shim and firmware revocation policies read). Firmware boots it
//! as `\EFI\BOOT\BOOTX64.EFI`; the stub starts the kernel with the other three. With a
//! recipe's `secure_boot`, the UKI is signed (pe_authenticode.rs): the signature covers
//! every section, so the kernel, initrd and command line are what Secure Boot verified.

use super::pe::{PeError, PeImage, READ_ONLY_DATA};
use super::pe_authenticode::{self, AuthenticodeError};
use super::uki_signer::UkiSigner;

/// The `.sbat` section, systemd-stub's format: the SBAT format line, then ours. Raise
/// the generation (the second field) when a security fix in the stub must make every
/// older stub revocable by an SBAT policy.
pub const SBAT: &str = concat!(
    "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\n",
    "harmony,1,Harmony,harmony-efi-stub,",
    env!("CARGO_PKG_VERSION"),
    ",\n"
);

#[derive(Debug, thiserror::Error)]
pub enum UkiError {
    #[error("UKI: {0}")]
    Pe(#[from] PeError),
    #[error("UKI: the kernel command line must be printable ASCII (the EFI stub hands it over as UCS-2): {0:?}")]
    Cmdline(String),
    #[error("UKI: the stub already has a {0} section")]
    Duplicate(String),
    #[error("UKI: signing it: {0}")]
    Sign(#[from] AuthenticodeError),
}

pub struct UkiParts<'a> {
    /// The image's os-release (`.osrel`).
    pub os_release: &'a [u8],
    pub cmdline: &'a str,
    /// The kernel, a bzImage with its own EFI stub (CONFIG_EFI_STUB).
    pub linux: &'a [u8],
    /// Concatenated initrds (the kernel unpacks each cpio in turn).
    pub initrd: Vec<u8>,
}

pub const PAYLOAD_SECTIONS: [&str; 5] = [".sbat", ".osrel", ".cmdline", ".linux", ".initrd"];

/// The UKI's bytes: `stub` with the payload sections appended, signed by `signer`.
pub fn unified_kernel_image(
    mut stub: PeImage,
    parts: UkiParts,
    signer: Option<&UkiSigner>,
) -> Result<Vec<u8>, UkiError> {
    if !parts.cmdline.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        return Err(UkiError::Cmdline(parts.cmdline.to_string()));
    }
    if let Some(s) = stub
        .sections
        .iter()
        .find(|s| PAYLOAD_SECTIONS.contains(&s.name.as_str()))
    {
        return Err(UkiError::Duplicate(s.name.clone()));
    }
    stub.push_section(".sbat", SBAT.as_bytes().to_vec(), READ_ONLY_DATA)?;
    stub.push_section(".osrel", parts.os_release.to_vec(), READ_ONLY_DATA)?;
    stub.push_section(
        ".cmdline",
        parts.cmdline.as_bytes().to_vec(),
        READ_ONLY_DATA,
    )?;
    stub.push_section(".linux", parts.linux.to_vec(), READ_ONLY_DATA)?;
    stub.push_section(".initrd", parts.initrd, READ_ONLY_DATA)?;
    let unsigned = stub.to_bytes()?;
    Ok(match signer {
        Some(signer) => pe_authenticode::sign(&unsigned, signer)?,
        None => unsigned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::efi_stub::pe_from_elf;
    use object::read::pe::PeFile64;
    use object::{Object, ObjectSection};

    fn stub() -> PeImage {
        pe_from_elf(
            &crate::emit::efi_stub::tests::tiny_shared_object(None),
            "tiny.so",
        )
        .unwrap()
    }

    fn parts(cmdline: &str) -> UkiParts<'_> {
        UkiParts {
            os_release: b"ID=test\n",
            cmdline,
            linux: b"MZ-kernel",
            initrd: b"07070101initrd".to_vec(),
        }
    }

    #[test]
    fn payload_sections_follow_the_stub_and_read_back() {
        let bytes = unified_kernel_image(stub(), parts("console=ttyS0 quiet"), None).unwrap();
        let pe = PeFile64::parse(&*bytes).unwrap();
        let names: Vec<&str> = pe.sections().map(|s| s.name().unwrap()).collect();
        assert_eq!(
            names,
            [".text", ".data", ".reloc", ".sbat", ".osrel", ".cmdline", ".linux", ".initrd"]
        );
        let section = |n: &str| pe.section_by_name(n).unwrap().data().unwrap().to_vec();
        assert_eq!(section(".cmdline"), b"console=ttyS0 quiet");
        assert_eq!(section(".linux"), b"MZ-kernel");
        assert_eq!(section(".initrd"), b"07070101initrd");
        assert_eq!(section(".osrel"), b"ID=test\n");
        let sbat = String::from_utf8(section(".sbat")).unwrap();
        let lines: Vec<Vec<&str>> = sbat.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(lines[0][..2], ["sbat", "1"], "{sbat}");
        assert_eq!(
            lines[1][..5],
            [
                "harmony",
                "1",
                "Harmony",
                "harmony-efi-stub",
                env!("CARGO_PKG_VERSION")
            ],
            "{sbat}"
        );
        assert!(
            lines.iter().all(|l| l.len() == 6),
            "six CSV fields a line: {sbat}"
        );
        // Each section on its own page, in order, and SizeOfImage covers the last.
        let rvas: Vec<u64> = pe.sections().map(|s| s.address()).collect();
        assert!(
            rvas.windows(2).all(|w| w[0] < w[1] && w[1] % 4096 == 0),
            "{rvas:x?}"
        );
        let size_of_image = pe
            .nt_headers()
            .optional_header
            .size_of_image
            .get(object::LittleEndian);
        assert_eq!(u64::from(size_of_image), rvas.last().unwrap() + 4096);
    }

    #[test]
    fn same_parts_same_bytes() {
        assert_eq!(
            unified_kernel_image(stub(), parts("quiet"), None).unwrap(),
            unified_kernel_image(stub(), parts("quiet"), None).unwrap()
        );
    }

    #[test]
    fn a_non_ascii_command_line_is_refused() {
        let e = unified_kernel_image(stub(), parts("quiet\nroot=é"), None).unwrap_err();
        assert!(e.to_string().contains("printable ASCII"), "{e}");
    }

    #[test]
    fn a_stub_with_payload_sections_is_refused() {
        let mut s = stub();
        s.push_section(".linux", vec![1], READ_ONLY_DATA).unwrap();
        assert!(
            matches!(unified_kernel_image(s, parts("quiet"), None), Err(UkiError::Duplicate(n)) if n == ".linux")
        );
    }
}
