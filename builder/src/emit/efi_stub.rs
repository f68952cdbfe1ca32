//! harmony-efi-stub (efi-stub/) as a PE32+ EFI application, converted from the
//! position-independent ELF shared object the Rust toolchain links.
//!
//! The ELF image is moved up by one page as a whole (room for the PE headers), so
//! RIP-relative code stays valid; each PT_LOAD becomes a page-aligned section with the
//! segment's permissions; every R_X86_64_RELATIVE relocation is applied for the PE's
//! ImageBase and listed in `.reloc` as a DIR64 entry, so the firmware can move the image.
//! Any other dynamic relocation is refused: the stub must be self-contained.

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader, Rela};
use object::Endianness;

use super::pe::{
    base_relocations, PeImage, PeSection, IMAGE_SCN_CNT_CODE, IMAGE_SCN_CNT_INITIALIZED_DATA,
    IMAGE_SCN_MEM_DISCARDABLE, IMAGE_SCN_MEM_EXECUTE, IMAGE_SCN_MEM_READ, IMAGE_SCN_MEM_WRITE,
    READ_ONLY_DATA, SECTION_ALIGNMENT,
};

/// Where the ELF image starts in the PE image: after the header page.
const SHIFT: u64 = SECTION_ALIGNMENT as u64;
/// The PE ImageBase. The firmware loads the stub wherever it has room and applies `.reloc`.
const IMAGE_BASE: u64 = 0;
/// Packed relative relocations (`-z pack-relative-relocs`); not in object 0.36's constants.
const DT_RELR: u32 = 36;
/// Anything larger is not the stub.
const MAX_IMAGE: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
#[error("EFI stub {path}: {what}")]
pub struct StubError {
    pub path: String,
    pub what: String,
}

/// A loadable range of the ELF image, page-rounded.
#[derive(Debug, Clone, Copy)]
struct Range {
    start: u64,
    end: u64,
    /// End of the bytes backed by the file (past it: .bss, zeros).
    file_end: u64,
    flags: u32,
}

/// Convert the stub's ELF shared object into a PE32+ EFI application.
pub fn pe_from_elf(elf_bytes: &[u8], path: &str) -> Result<PeImage, StubError> {
    let err = |what: String| StubError {
        path: path.to_string(),
        what,
    };
    let header = elf::FileHeader64::<Endianness>::parse(elf_bytes)
        .map_err(|e| err(format!("not a 64-bit ELF file: {e}")))?;
    let e = header.endian().map_err(|e| err(e.to_string()))?;
    if header.e_machine(e) != elf::EM_X86_64 || header.e_type(e) != elf::ET_DYN {
        return Err(err("expected an x86_64 ELF shared object (ET_DYN)".into()));
    }
    let segments = header
        .program_headers(e, elf_bytes)
        .map_err(|x| err(format!("program headers: {x}")))?;

    // The image in memory, as the ELF loader would map it at address 0.
    let loads: Vec<_> = segments
        .iter()
        .filter(|p| p.p_type(e) == elf::PT_LOAD)
        .collect();
    if loads.is_empty() {
        return Err(err("no PT_LOAD segment".into()));
    }
    let image_end = loads
        .iter()
        .map(|p| p.p_vaddr(e) + p.p_memsz(e))
        .max()
        .unwrap_or(0);
    if image_end > MAX_IMAGE {
        return Err(err(format!(
            "image of {image_end} bytes: too large for the stub"
        )));
    }
    let mut memory = vec![0u8; image_end as usize];
    let mut ranges: Vec<Range> = Vec::new();
    for p in &loads {
        let data = p
            .data(e, elf_bytes)
            .map_err(|_| err("a PT_LOAD segment lies outside the file".into()))?;
        let vaddr = p.p_vaddr(e);
        if p.p_filesz(e) > p.p_memsz(e) {
            return Err(err(format!(
                "segment at {vaddr:#x}: file size above memory size"
            )));
        }
        memory[vaddr as usize..vaddr as usize + data.len()].copy_from_slice(data);
        ranges.push(Range {
            start: vaddr / SHIFT * SHIFT,
            end: (vaddr + p.p_memsz(e)).div_ceil(SHIFT) * SHIFT,
            file_end: vaddr + p.p_filesz(e),
            flags: p.p_flags(e),
        });
    }

    let relocations = apply_relocations(e, elf_bytes, segments, &mut memory).map_err(err)?;

    // Segments that share a page become one section with both permissions.
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start < last.end => {
                last.end = last.end.max(r.end);
                last.file_end = last.file_end.max(r.file_end);
                last.flags |= r.flags;
            }
            _ => merged.push(r),
        }
    }
    let mut sections = Vec::new();
    for r in merged {
        let executable = r.flags & elf::PF_X != 0;
        let writable = r.flags & elf::PF_W != 0;
        let (name, characteristics) = match (executable, writable) {
            (true, true) => {
                return Err(err(format!(
                "pages {:#x}..{:#x} are both writable and executable; link with separate segments",
                r.start, r.end
            )))
            }
            (true, false) => (
                ".text",
                IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_MEM_READ,
            ),
            (false, true) => (
                ".data",
                IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ | IMAGE_SCN_MEM_WRITE,
            ),
            (false, false) => (".rdata", READ_ONLY_DATA),
        };
        let data_end = r.file_end.min(r.end).min(image_end);
        sections.push(PeSection {
            name: name.to_string(),
            rva: (r.start + SHIFT) as u32,
            virtual_size: (r.end - r.start) as u32,
            data: memory[r.start as usize..data_end as usize].to_vec(),
            characteristics,
        });
    }
    let mut image = PeImage {
        image_base: IMAGE_BASE,
        entry_rva: (header.e_entry(e) + SHIFT) as u32,
        sections,
    };
    image
        .push_section(
            ".reloc",
            base_relocations(&relocations),
            READ_ONLY_DATA | IMAGE_SCN_MEM_DISCARDABLE,
        )
        .map_err(|x| err(x.to_string()))?;
    Ok(image)
}

/// Apply the R_X86_64_RELATIVE relocations for IMAGE_BASE + SHIFT; return the PE RVAs they
/// patched. Refuse every other kind of dynamic relocation.
fn apply_relocations(
    e: Endianness,
    elf_bytes: &[u8],
    segments: &[elf::ProgramHeader64<Endianness>],
    memory: &mut [u8],
) -> Result<Vec<u32>, String> {
    let Some(dynamic) = segments.iter().find(|p| p.p_type(e) == elf::PT_DYNAMIC) else {
        return Ok(Vec::new());
    };
    let entries = dynamic
        .dynamic(e, elf_bytes)
        .map_err(|x| format!("dynamic section: {x}"))?
        .unwrap_or(&[]);
    let (mut rela, mut rela_size) = (None, 0u64);
    for d in entries {
        let value = d.d_val(e);
        match d.d_tag(e) as u32 {
            elf::DT_RELA => rela = Some(value),
            elf::DT_RELASZ => rela_size = value,
            elf::DT_RELAENT if value != 24 => {
                return Err(format!("DT_RELAENT is {value}, expected 24"))
            }
            elf::DT_REL | DT_RELR => {
                return Err(
                    "REL/RELR relocations are not supported; link with RELA (the x86_64 default)"
                        .into(),
                )
            }
            elf::DT_JMPREL | elf::DT_NEEDED => {
                return Err(
                    "the stub imports symbols (PLT or DT_NEEDED); it must be self-contained".into(),
                )
            }
            _ => {}
        }
    }
    let Some(rela) = rela else {
        return Ok(Vec::new());
    };
    // DT_RELA is an address; find its bytes through the segment that maps it.
    let table = memory
        .get(rela as usize..(rela + rela_size) as usize)
        .ok_or("the relocation table lies outside the image")?
        .to_vec();
    let mut rvas = Vec::new();
    for chunk in table.chunks_exact(24) {
        let r: &elf::Rela64<Endianness> = object::pod::from_bytes(chunk)
            .map_err(|_| "unreadable relocation")?
            .0;
        let offset = r.r_offset(e);
        match r.r_type(e, false) {
            elf::R_X86_64_NONE => {}
            elf::R_X86_64_RELATIVE if r.r_sym(e, false) == 0 => {
                let value = IMAGE_BASE.wrapping_add(SHIFT).wrapping_add(r.r_addend(e) as u64);
                let slot = memory
                    .get_mut(offset as usize..offset as usize + 8)
                    .ok_or_else(|| format!("relocation at {offset:#x} lies outside the image"))?;
                slot.copy_from_slice(&value.to_le_bytes());
                rvas.push((offset + SHIFT) as u32);
            }
            other => {
                return Err(format!(
                    "relocation type {other} at {offset:#x} is not R_X86_64_RELATIVE; the stub must not import symbols"
                ))
            }
        }
    }
    Ok(rvas)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use object::read::pe::PeFile64;
    use object::{LittleEndian as LE, Object, ObjectSection};

    /// A tiny x86_64 ET_DYN: one R+X segment at 0 (header page + code), one RW segment
    /// at 0x1e00 (shares no page with the first) holding a pointer with a RELATIVE
    /// relocation, and a PT_DYNAMIC naming the RELA table.
    pub(crate) fn tiny_shared_object(extra_reloc_type: Option<u32>) -> Vec<u8> {
        use object::write::elf::{FileHeader, ProgramHeader, Rel, Writer};
        let mut out = Vec::new();
        let mut w = Writer::new(Endianness::Little, true, &mut out);
        w.reserve_file_header();
        w.reserve_program_headers(3);
        let code_offset = w.reserve(16, 16);
        let data_offset = w.reserve(8, 8);
        let nrel = 1 + extra_reloc_type.is_some() as usize;
        let rela_offset = w.reserve(24 * nrel, 8);
        let dyn_offset = w.reserve_dynamics(4);
        let end = w.reserved_len();
        // Map file offset o at vaddr o (first segment) and data at 0x1000 + o.
        let data_vaddr = 0x1000 + data_offset as u64;
        w.write_file_header(&FileHeader {
            os_abi: 0,
            abi_version: 0,
            e_type: elf::ET_DYN,
            e_machine: elf::EM_X86_64,
            e_entry: code_offset as u64,
            e_flags: 0,
        })
        .unwrap();
        w.write_align_program_headers();
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_LOAD,
            p_flags: elf::PF_R | elf::PF_X,
            p_offset: 0,
            p_vaddr: 0,
            p_paddr: 0,
            p_filesz: data_offset as u64,
            p_memsz: data_offset as u64,
            p_align: 0x1000,
        });
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_LOAD,
            p_flags: elf::PF_R | elf::PF_W,
            p_offset: data_offset as u64,
            p_vaddr: data_vaddr,
            p_paddr: data_vaddr,
            p_filesz: (end - data_offset) as u64,
            p_memsz: (end - data_offset) as u64 + 0x100, // and some .bss
            p_align: 0x1000,
        });
        w.write_program_header(&ProgramHeader {
            p_type: elf::PT_DYNAMIC,
            p_flags: elf::PF_R | elf::PF_W,
            p_offset: dyn_offset as u64,
            p_vaddr: 0x1000 + dyn_offset as u64,
            p_paddr: 0,
            p_filesz: 64,
            p_memsz: 64,
            p_align: 8,
        });
        w.write_align(16);
        w.write(&[0xc3; 16]);
        w.write_align(8);
        w.write(&[0; 8]);
        w.write_align(8);
        w.write_relocation(
            true,
            &Rel {
                r_offset: data_vaddr,
                r_sym: 0,
                r_type: elf::R_X86_64_RELATIVE,
                r_addend: code_offset as i64,
            },
        );
        if let Some(t) = extra_reloc_type {
            w.write_relocation(
                true,
                &Rel {
                    r_offset: data_vaddr,
                    r_sym: 1,
                    r_type: t,
                    r_addend: 0,
                },
            );
        }
        w.write_align_dynamic();
        w.write_dynamic(elf::DT_RELA, 0x1000 + rela_offset as u64);
        w.write_dynamic(elf::DT_RELASZ, 24 * nrel as u64);
        w.write_dynamic(elf::DT_RELAENT, 24);
        w.write_dynamic(elf::DT_NULL, 0);
        assert_eq!(w.reserved_len(), out.len());
        out
    }

    #[test]
    fn a_shared_object_becomes_an_efi_application_with_its_relocations() {
        let so = tiny_shared_object(None);
        let image = pe_from_elf(&so, "tiny.so").unwrap();
        let names: Vec<&str> = image.sections.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, [".text", ".data", ".reloc"]);
        let bytes = image.to_bytes().unwrap();
        let pe = PeFile64::parse(&*bytes).unwrap();
        let opt = &pe.nt_headers().optional_header;
        assert_eq!(opt.subsystem.get(LE), 10);
        let text = pe.section_by_name(".text").unwrap();
        assert_eq!(text.address(), 0x1000);
        // The entry point moved up with the image.
        let entry = u64::from(opt.address_of_entry_point.get(LE));
        assert_eq!(entry, 0x1000 + u64::from(so[24]) + (u64::from(so[25]) << 8));
        // The pointer in .data now holds ImageBase + SHIFT + addend, and .reloc lists it.
        let data = pe.section_by_name(".data").unwrap();
        assert_eq!(data.address(), 0x2000);
        assert_eq!(
            data.size(),
            0x1000,
            "virtual size covers .bss, page-rounded"
        );
        let raw = data.data().unwrap();
        let mut relocs = pe
            .data_directories()
            .relocation_blocks(&*bytes, &pe.section_table())
            .unwrap()
            .unwrap();
        let block = relocs.next().unwrap().unwrap();
        let targets: Vec<u32> = block
            .filter(|r| r.typ == 10)
            .map(|r| r.virtual_address)
            .collect();
        assert_eq!(targets.len(), 1);
        let off = (targets[0] - 0x2000) as usize;
        let value = u64::from_le_bytes(raw[off..off + 8].try_into().unwrap());
        assert_eq!(
            value, entry,
            "the pointer (to the entry) moved up with the image"
        );
    }

    #[test]
    fn symbol_relocations_are_refused() {
        let so = tiny_shared_object(Some(elf::R_X86_64_GLOB_DAT));
        let e = pe_from_elf(&so, "bad.so").unwrap_err().to_string();
        assert!(
            e.contains("bad.so") && e.contains("relocation type 6"),
            "{e}"
        );
    }

    #[test]
    fn a_non_elf_file_is_refused_by_name() {
        let e = pe_from_elf(b"MZ not an elf", "stub.so")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("EFI stub stub.so: not a 64-bit ELF"), "{e}");
    }
}
