//! A PE32+ image writer for EFI applications: headers, section table, raw data and
//! the base relocation table, laid out the way UEFI firmware loads them (sections at
//! 4 KiB-aligned RVAs, raw data 512-byte aligned, SizeOfImage/SizeOfHeaders/CheckSum
//! computed, TimeDateStamp 0 so the same sections give the same bytes).

/// Section alignment in memory: a page, so firmware can protect each section.
pub const SECTION_ALIGNMENT: u32 = 4096;
/// Raw data alignment in the file.
pub const FILE_ALIGNMENT: u32 = 512;

pub const IMAGE_SUBSYSTEM_EFI_APPLICATION: u16 = 10;
const IMAGE_FILE_MACHINE_AMD64: u16 = 0x8664;
const IMAGE_FILE_EXECUTABLE_IMAGE: u16 = 0x0002;
const IMAGE_FILE_LARGE_ADDRESS_AWARE: u16 = 0x0020;
const IMAGE_FILE_DEBUG_STRIPPED: u16 = 0x0200;
const IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE: u16 = 0x0040;
const IMAGE_DIRECTORY_ENTRY_BASERELOC: usize = 5;
const IMAGE_REL_BASED_ABSOLUTE: u16 = 0;
const IMAGE_REL_BASED_DIR64: u16 = 10;

pub const IMAGE_SCN_CNT_CODE: u32 = 0x0000_0020;
pub const IMAGE_SCN_CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
pub const IMAGE_SCN_MEM_DISCARDABLE: u32 = 0x0200_0000;
pub const IMAGE_SCN_MEM_EXECUTE: u32 = 0x2000_0000;
pub const IMAGE_SCN_MEM_READ: u32 = 0x4000_0000;
pub const IMAGE_SCN_MEM_WRITE: u32 = 0x8000_0000;

/// Read-only data: what the payload sections of a UKI are.
pub const READ_ONLY_DATA: u32 = IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ;

const DOS_HEADER_SIZE: usize = 64;
const PE_SIGNATURE_SIZE: usize = 4;
const COFF_HEADER_SIZE: usize = 20;
const OPTIONAL_HEADER_SIZE: usize = 240;
const SECTION_HEADER_SIZE: usize = 40;
const PE_OFFSET: usize = DOS_HEADER_SIZE;
const OPTIONAL_HEADER_OFFSET: usize = PE_OFFSET + PE_SIGNATURE_SIZE + COFF_HEADER_SIZE;
const CHECKSUM_OFFSET: usize = OPTIONAL_HEADER_OFFSET + 64;
const SECTION_TABLE_OFFSET: usize = OPTIONAL_HEADER_OFFSET + OPTIONAL_HEADER_SIZE;

/// The most sections whose headers fit in the first page (the first section's RVA).
pub const MAX_SECTIONS: usize =
    (SECTION_ALIGNMENT as usize - SECTION_TABLE_OFFSET) / SECTION_HEADER_SIZE;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeError {
    #[error("section name `{0}` is longer than 8 bytes")]
    LongName(String),
    #[error("more than {MAX_SECTIONS} sections")]
    TooManySections,
    #[error("section {name}: {what}")]
    BadSection { name: String, what: String },
    #[error("the image would exceed 4 GiB")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeSection {
    pub name: String,
    /// RVA, a multiple of SECTION_ALIGNMENT, at or after the first page (the headers).
    pub rva: u32,
    /// Bytes in memory; past `data.len()` the loader fills zeros.
    pub virtual_size: u32,
    pub data: Vec<u8>,
    pub characteristics: u32,
}

/// An EFI application: sections in RVA order, the entry point, the loader's relocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeImage {
    pub image_base: u64,
    pub entry_rva: u32,
    pub sections: Vec<PeSection>,
}

fn align(value: u64, to: u32) -> u64 {
    value.div_ceil(u64::from(to)) * u64::from(to)
}

impl PeImage {
    /// The first free, aligned RVA after the last section.
    pub fn next_rva(&self) -> u32 {
        let end = self
            .sections
            .iter()
            .map(|s| u64::from(s.rva) + u64::from(s.virtual_size))
            .max()
            .unwrap_or(0);
        // Sections start after the header page.
        align(end.max(u64::from(SECTION_ALIGNMENT)), SECTION_ALIGNMENT) as u32
    }

    /// Append a section of `data` at the next free RVA; its virtual size is the data's length.
    pub fn push_section(
        &mut self,
        name: &str,
        data: Vec<u8>,
        characteristics: u32,
    ) -> Result<(), PeError> {
        let rva = self.next_rva();
        let size = u32::try_from(data.len()).map_err(|_| PeError::TooLarge)?;
        if u64::from(rva) + u64::from(size) > u64::from(u32::MAX) - u64::from(SECTION_ALIGNMENT) {
            return Err(PeError::TooLarge);
        }
        self.sections.push(PeSection {
            name: name.to_string(),
            rva,
            virtual_size: size,
            data,
            characteristics,
        });
        Ok(())
    }

    /// The whole file: DOS header, PE headers, section table, raw data; CheckSum last.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PeError> {
        if self.sections.len() > MAX_SECTIONS {
            return Err(PeError::TooManySections);
        }
        let headers_end = SECTION_TABLE_OFFSET + SECTION_HEADER_SIZE * self.sections.len();
        let size_of_headers = align(headers_end as u64, FILE_ALIGNMENT);
        let mut previous_end = u64::from(SECTION_ALIGNMENT);
        let mut file_offset = size_of_headers;
        let mut placed = Vec::with_capacity(self.sections.len());
        for s in &self.sections {
            let bad = |what: &str| PeError::BadSection {
                name: s.name.clone(),
                what: what.to_string(),
            };
            if s.name.len() > 8 {
                return Err(PeError::LongName(s.name.clone()));
            }
            if s.rva % SECTION_ALIGNMENT != 0 || u64::from(s.rva) < previous_end {
                return Err(bad(
                    "RVA not aligned, or overlapping the headers or the section before",
                ));
            }
            if s.data.len() as u64 > u64::from(s.virtual_size) {
                return Err(bad("more raw data than virtual size"));
            }
            previous_end = u64::from(s.rva) + u64::from(s.virtual_size);
            let raw_size = align(s.data.len() as u64, FILE_ALIGNMENT);
            let offset = if raw_size == 0 { 0 } else { file_offset };
            placed.push((offset, raw_size));
            file_offset += raw_size;
        }
        if file_offset > u64::from(u32::MAX) {
            return Err(PeError::TooLarge);
        }
        let size_of_image = align(previous_end, SECTION_ALIGNMENT);

        let mut out = vec![0u8; file_offset as usize];
        // DOS header: the magic and where the PE header is; nothing else is read.
        out[0..2].copy_from_slice(b"MZ");
        put_u32(&mut out, 0x3c, PE_OFFSET as u32);
        out[PE_OFFSET..PE_OFFSET + 4].copy_from_slice(b"PE\0\0");

        let coff = PE_OFFSET + PE_SIGNATURE_SIZE;
        put_u16(&mut out, coff, IMAGE_FILE_MACHINE_AMD64);
        put_u16(&mut out, coff + 2, self.sections.len() as u16);
        // TimeDateStamp (coff + 4), symbol table pointer and count: 0.
        put_u16(&mut out, coff + 16, OPTIONAL_HEADER_SIZE as u16);
        put_u16(
            &mut out,
            coff + 18,
            IMAGE_FILE_EXECUTABLE_IMAGE
                | IMAGE_FILE_LARGE_ADDRESS_AWARE
                | IMAGE_FILE_DEBUG_STRIPPED,
        );

        let sum_of = |flag: u32| -> u32 {
            self.sections
                .iter()
                .zip(&placed)
                .filter(|(s, _)| s.characteristics & flag != 0)
                .map(|(_, (_, raw))| *raw as u32)
                .sum()
        };
        let base_of_code = self
            .sections
            .iter()
            .find(|s| s.characteristics & IMAGE_SCN_CNT_CODE != 0)
            .map_or(0, |s| s.rva);
        let opt = OPTIONAL_HEADER_OFFSET;
        put_u16(&mut out, opt, 0x20b); // PE32+
        out[opt + 2] = 2; // linker version 2.0 (ours)
        put_u32(&mut out, opt + 4, sum_of(IMAGE_SCN_CNT_CODE));
        put_u32(&mut out, opt + 8, sum_of(IMAGE_SCN_CNT_INITIALIZED_DATA));
        put_u32(&mut out, opt + 16, self.entry_rva);
        put_u32(&mut out, opt + 20, base_of_code);
        put_u64(&mut out, opt + 24, self.image_base);
        put_u32(&mut out, opt + 32, SECTION_ALIGNMENT);
        put_u32(&mut out, opt + 36, FILE_ALIGNMENT);
        put_u16(&mut out, opt + 48, 1); // subsystem version 1.0
        put_u32(&mut out, opt + 56, size_of_image as u32);
        put_u32(&mut out, opt + 60, size_of_headers as u32);
        put_u16(&mut out, opt + 68, IMAGE_SUBSYSTEM_EFI_APPLICATION);
        put_u16(&mut out, opt + 70, IMAGE_DLLCHARACTERISTICS_DYNAMIC_BASE);
        put_u32(&mut out, opt + 108, 16); // NumberOfRvaAndSizes
        if let Some(reloc) = self.sections.iter().find(|s| s.name == ".reloc") {
            let dir = opt + 112 + 8 * IMAGE_DIRECTORY_ENTRY_BASERELOC;
            put_u32(&mut out, dir, reloc.rva);
            put_u32(&mut out, dir + 4, reloc.virtual_size);
        }

        for (i, (s, (offset, raw_size))) in self.sections.iter().zip(&placed).enumerate() {
            let h = SECTION_TABLE_OFFSET + i * SECTION_HEADER_SIZE;
            out[h..h + s.name.len()].copy_from_slice(s.name.as_bytes());
            put_u32(&mut out, h + 8, s.virtual_size);
            put_u32(&mut out, h + 12, s.rva);
            put_u32(&mut out, h + 16, *raw_size as u32);
            put_u32(&mut out, h + 20, *offset as u32);
            put_u32(&mut out, h + 36, s.characteristics);
            let start = *offset as usize;
            out[start..start + s.data.len()].copy_from_slice(&s.data);
        }
        let checksum = pe_checksum(&out);
        put_u32(&mut out, CHECKSUM_OFFSET, checksum);
        Ok(out)
    }
}

/// The base relocation table (`.reloc`) for 64-bit absolute addresses at `rvas`: one block
/// per 4 KiB page, each padded to 4 bytes with an ABSOLUTE entry. No relocations give
/// one empty block for page 0, so the table is never missing (some loaders want one).
pub fn base_relocations(rvas: &[u32]) -> Vec<u8> {
    let mut rvas = rvas.to_vec();
    rvas.sort_unstable();
    rvas.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    if rvas.is_empty() {
        push_block(&mut out, 0, &[]);
    }
    while i < rvas.len() {
        let page = rvas[i] & !0xfff;
        let mut entries = Vec::new();
        while i < rvas.len() && rvas[i] & !0xfff == page {
            entries.push(IMAGE_REL_BASED_DIR64 << 12 | (rvas[i] & 0xfff) as u16);
            i += 1;
        }
        push_block(&mut out, page, &entries);
    }
    out
}

fn push_block(out: &mut Vec<u8>, page: u32, entries: &[u16]) {
    let mut entries = entries.to_vec();
    if entries.len() % 2 == 1 || entries.is_empty() {
        entries.push(IMAGE_REL_BASED_ABSOLUTE << 12);
    }
    if entries.len() % 2 == 1 {
        entries.push(IMAGE_REL_BASED_ABSOLUTE << 12);
    }
    out.extend_from_slice(&page.to_le_bytes());
    out.extend_from_slice(&(8 + 2 * entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.to_le_bytes());
    }
}

/// The PE CheckSum (as ImageHlp's CheckSumMappedFile): a 16-bit end-around-carry sum of
/// the file's little-endian words, the CheckSum field counted as 0, plus the file length.
pub fn pe_checksum(file: &[u8]) -> u32 {
    let mut sum: u32 = 0;
    for (i, pair) in file.chunks(2).enumerate() {
        let word = if (CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4).contains(&(i * 2)) {
            0
        } else {
            u32::from(pair[0]) | u32::from(*pair.get(1).unwrap_or(&0)) << 8
        };
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    sum.wrapping_add(file.len() as u32)
}

fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut [u8], at: usize, v: u64) {
    out[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::pe::PeFile64;
    use object::{Object, ObjectSection};

    fn sample() -> PeImage {
        let mut image = PeImage {
            image_base: 0,
            entry_rva: 0x1010,
            sections: Vec::new(),
        };
        image
            .push_section(
                ".text",
                vec![0xc3; 100],
                IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_EXECUTE | IMAGE_SCN_MEM_READ,
            )
            .unwrap();
        image
            .push_section(
                ".reloc",
                base_relocations(&[0x1008, 0x2000, 0x1000]),
                READ_ONLY_DATA | IMAGE_SCN_MEM_DISCARDABLE,
            )
            .unwrap();
        image
            .push_section(".cmdline", b"quiet".to_vec(), READ_ONLY_DATA)
            .unwrap();
        image
    }

    #[test]
    fn sections_follow_each_other_on_page_boundaries() {
        let image = sample();
        let rvas: Vec<u32> = image.sections.iter().map(|s| s.rva).collect();
        assert_eq!(rvas, [0x1000, 0x2000, 0x3000]);
        assert_eq!(image.next_rva(), 0x4000);
    }

    #[test]
    fn object_reads_what_we_write() {
        let bytes = sample().to_bytes().unwrap();
        let pe = PeFile64::parse(&*bytes).unwrap();
        let opt = &pe.nt_headers().optional_header;
        use object::LittleEndian as LE;
        assert_eq!(opt.subsystem.get(LE), IMAGE_SUBSYSTEM_EFI_APPLICATION);
        assert_eq!(opt.size_of_image.get(LE), 0x4000);
        assert_eq!(opt.size_of_headers.get(LE), 512);
        assert_eq!(opt.address_of_entry_point.get(LE), 0x1010);
        assert_eq!(opt.check_sum.get(LE), pe_checksum(&bytes));
        let names: Vec<&str> = pe.sections().map(|s| s.name().unwrap()).collect();
        assert_eq!(names, [".text", ".reloc", ".cmdline"]);
        let cmdline = pe.section_by_name(".cmdline").unwrap();
        assert_eq!(cmdline.data().unwrap(), b"quiet");
        // The base relocation directory points at .reloc and parses back to our RVAs.
        let mut relocs = pe
            .data_directories()
            .relocation_blocks(&*bytes, &pe.section_table())
            .unwrap()
            .unwrap();
        let mut found = Vec::new();
        while let Some(block) = relocs.next().unwrap() {
            for r in block {
                if r.typ == IMAGE_REL_BASED_DIR64 {
                    found.push(r.virtual_address);
                }
            }
        }
        assert_eq!(found, [0x1000, 0x1008, 0x2000]);
    }

    #[test]
    fn checksum_matches_a_known_value() {
        // Sum of words 0x0201 + 0x0403 = 0x0604, plus the length 4.
        assert_eq!(pe_checksum(&[1, 2, 3, 4]), 0x0608);
        // End-around carry: 0xffff + 0x0002 = 0x10001 → 0x0002.
        assert_eq!(pe_checksum(&[0xff, 0xff, 0x02, 0x00]), 0x0002 + 4);
    }

    #[test]
    fn empty_relocation_table_is_one_padded_block() {
        assert_eq!(base_relocations(&[]), [0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0]);
        // Three entries are padded to four (block size a multiple of 4).
        let t = base_relocations(&[0x10, 0x18, 0x20]);
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 16);
    }

    #[test]
    fn objdump_reads_the_headers() {
        let Ok(out) = std::process::Command::new("objdump")
            .arg("--version")
            .output()
        else {
            harmony_test_support::skip("tool objdump not installed: Debian package binutils");
            return;
        };
        assert!(out.status.success());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.efi");
        std::fs::write(&path, sample().to_bytes().unwrap()).unwrap();
        let out = std::process::Command::new("objdump")
            .arg("-p")
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("pei-x86-64"), "{text}");
        assert!(
            text.contains("Subsystem\t\t0000000a\t(EFI application)"),
            "{text}"
        );
        assert!(text.contains("SizeOfImage\t\t00004000"), "{text}");
    }

    #[test]
    fn bad_layouts_are_refused() {
        let mut image = sample();
        image.sections[1].rva = 0x1800;
        assert!(matches!(image.to_bytes(), Err(PeError::BadSection { .. })));
        let mut image = sample();
        assert_eq!(
            image
                .push_section(".toolongname", Vec::new(), READ_ONLY_DATA)
                .and_then(|_| image.to_bytes().map(|_| ())),
            Err(PeError::LongName(".toolongname".into()))
        );
    }
}
