//! The stub's own PE image in memory: the payload sections the builder appended
//! (`.linux`, `.initrd`, `.cmdline`), found through the section table.

/// A section's bytes as loaded: `VirtualSize` bytes at `ImageBase + VirtualAddress`.
#[derive(Clone, Copy)]
pub struct Section {
    pub ptr: *const u8,
    pub len: usize,
}

impl Section {
    /// # Safety
    /// The section was found in the loaded image, which stays mapped while boot services run.
    pub unsafe fn bytes(&self) -> &[u8] {
        // SAFETY: see above; the range was checked against the image size.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

pub struct Payload {
    pub linux: Option<Section>,
    pub initrd: Option<Section>,
    pub cmdline: Option<Section>,
}

unsafe fn read_u16(p: *const u8) -> u16 {
    // SAFETY: the caller checked p..p+2 lies in the image.
    u16::from_le(unsafe { core::ptr::read_unaligned(p as *const u16) })
}

unsafe fn read_u32(p: *const u8) -> u32 {
    // SAFETY: the caller checked p..p+4 lies in the image.
    u32::from_le(unsafe { core::ptr::read_unaligned(p as *const u32) })
}

/// Walk the section table of the image loaded at `base` (`size` bytes).
/// Err: the headers are not a PE image that fits in `size`.
///
/// # Safety
/// `base..base+size` is the loaded image (LoadedImage's ImageBase and ImageSize).
pub unsafe fn find_payload(base: *const u8, size: usize) -> Result<Payload, &'static str> {
    let mut payload = Payload {
        linux: None,
        initrd: None,
        cmdline: None,
    };
    if size < 0x40 {
        return Err("own image: smaller than a DOS header");
    }
    // SAFETY: every read below is at an offset checked against `size` first, inside the
    // loaded image the caller vouches for.
    unsafe {
        if read_u16(base) != 0x5a4d {
            return Err("own image: no MZ signature");
        }
        let pe = read_u32(base.add(0x3c)) as usize;
        if pe.checked_add(24).is_none_or(|end| end > size) || read_u32(base.add(pe)) != 0x0000_4550
        {
            return Err("own image: no PE signature");
        }
        let count = read_u16(base.add(pe + 6)) as usize;
        let optional_size = read_u16(base.add(pe + 20)) as usize;
        let table = pe + 24 + optional_size;
        if table + count * 40 > size {
            return Err("own image: section table past the image end");
        }
        for i in 0..count {
            let header = base.add(table + i * 40);
            let name = core::slice::from_raw_parts(header, 8);
            let len = read_u32(header.add(8)) as usize;
            let rva = read_u32(header.add(12)) as usize;
            if rva.checked_add(len).is_none_or(|end| end > size) {
                return Err("own image: a section lies past the image end");
            }
            let section = Some(Section {
                ptr: base.add(rva),
                len,
            });
            match name {
                b".linux\0\0" => payload.linux = section,
                b".initrd\0" => payload.initrd = section,
                b".cmdline" => payload.cmdline = section,
                _ => {}
            }
        }
    }
    Ok(payload)
}
