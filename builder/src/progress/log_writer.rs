//! harmony's tracing lines go through the renderer: above the bars on a terminal (never
//! through them), as `log` events with `--progress=json`.

use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A `tracing_subscriber` writer: each formatted event is handed over whole when the
/// subscriber drops its writer.
#[derive(Clone, Copy, Default)]
pub struct LogWriter;

pub struct LogLine(Vec<u8>);

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.0);
        match super::SINK.get() {
            Some(sink) => sink.log(&text),
            None => super::write_stderr(&text),
        }
    }
}
