//! Messages on the firmware console (ConOut: screen and, under QEMU/OVMF, the serial port).

use r_efi::efi;
use r_efi::protocols::simple_text_output;

pub struct Console {
    out: *mut simple_text_output::Protocol,
}

/// One line of UCS-2 text, built from ASCII pieces without an allocator.
struct Line {
    buf: [u16; 160],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 160],
            len: 0,
        }
    }

    fn push(&mut self, text: &str) {
        self.push_bytes(text.as_bytes());
    }

    fn push_bytes(&mut self, text: &[u8]) {
        for &b in text {
            // Keep room for "\r\n" and the terminating NUL.
            if self.len + 3 >= self.buf.len() {
                return;
            }
            self.buf[self.len] = if b.is_ascii_graphic() || b == b' ' {
                b as u16
            } else {
                b'?' as u16
            };
            self.len += 1;
        }
    }

    fn push_hex(&mut self, value: usize) {
        let mut digits = [0u8; 18];
        digits[0] = b'0';
        digits[1] = b'x';
        for (i, d) in digits[2..].iter_mut().enumerate() {
            let nibble = (value >> (60 - 4 * i)) & 0xf;
            *d = b"0123456789abcdef"[nibble];
        }
        // SAFETY: only ASCII digits were written.
        self.push(unsafe { core::str::from_utf8_unchecked(&digits) });
    }

    fn push_decimal(&mut self, mut value: usize) {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        // SAFETY: only ASCII digits were written.
        self.push(unsafe { core::str::from_utf8_unchecked(&digits[start..]) });
    }

    fn finish(&mut self) -> *mut u16 {
        self.buf[self.len] = b'\r' as u16;
        self.buf[self.len + 1] = b'\n' as u16;
        self.buf[self.len + 2] = 0;
        self.buf.as_mut_ptr()
    }
}

impl Console {
    /// # Safety
    /// `out` is the system table's ConOut (or null when there is none).
    pub unsafe fn new(out: *mut simple_text_output::Protocol) -> Self {
        Console { out }
    }

    fn print(&self, line: &mut Line) {
        if self.out.is_null() {
            return;
        }
        // SAFETY: ConOut is valid while boot services run; the string is NUL-terminated.
        unsafe {
            ((*self.out).output_string)(self.out, line.finish());
        }
    }

    /// `harmony-efi-stub: WHAT (EFI status 0x…)`
    pub fn failure(&self, what: &str, status: efi::Status) {
        let mut line = Line::new();
        line.push("harmony-efi-stub: ");
        line.push(what);
        line.push(" (EFI status ");
        line.push_hex(status.as_usize());
        line.push(")");
        self.print(&mut line);
    }

    /// `harmony-efi-stub: booting Linux: kernel N bytes, initrd N bytes`
    pub fn booting(&self, kernel: usize, initrd: usize) {
        let mut line = Line::new();
        line.push("harmony-efi-stub: booting Linux: kernel ");
        line.push_decimal(kernel);
        line.push(" bytes, initrd ");
        line.push_decimal(initrd);
        line.push(" bytes");
        self.print(&mut line);
    }

    /// `harmony-efi-stub: ` and the pieces (long lines are cut at 160 characters).
    pub fn note(&self, parts: &[&[u8]]) {
        let mut line = Line::new();
        line.push("harmony-efi-stub: ");
        for part in parts {
            line.push_bytes(part);
        }
        self.print(&mut line);
    }
}
