//! A reader that counts what passes through it into a phase (a download's bytes).

use std::io::{self, Read};

use super::Phase;

pub struct CountingReader<R> {
    inner: R,
    phase: Phase,
}

impl<R> CountingReader<R> {
    pub fn new(inner: R, phase: Phase) -> Self {
        CountingReader { inner, phase }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.phase.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{phase, Unit};
    use super::*;

    #[test]
    fn every_byte_read_is_counted() {
        let pulling = phase("pull", None, Some(10), Unit::Bytes);
        let mut r = CountingReader::new(&b"0123456789"[..], pulling.clone());
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(pulling.done(), 10);
        pulling.finish();
    }
}
