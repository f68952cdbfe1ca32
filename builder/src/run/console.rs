//! A guest's serial console as lines: read on a thread, kept for waiters and error tails.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Lines nobody has waited for yet are kept up to this many; older ones are dropped.
const PENDING_LIMIT: usize = 100_000;

#[derive(Default)]
struct State {
    /// Lines not yet seen by a waiter, oldest first.
    pending: VecDeque<String>,
    /// The last `tail_len` lines, for error messages.
    tail: VecDeque<String>,
    closed: bool,
}

/// Why [`Console::wait_for_line`] gave up.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    Timeout,
    /// The stream ended (the VM exited) without a matching line.
    Closed,
}

/// Where a console's output goes besides the waiters and the tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Off,
    /// Each line to the progress renderer (`harmony run` without `--quiet`).
    Lines,
    /// Every byte to our stdout as it comes, prompts without a newline included
    /// (`harmony run --interactive`: the terminal is the guest's console).
    Raw,
}

pub struct Console {
    shared: Arc<(Mutex<State>, Condvar)>,
    reader: Option<JoinHandle<()>>,
}

impl Console {
    /// Start reading `stream`, echoing it as `echo` says.
    pub fn new(stream: impl Read + Send + 'static, tail_len: usize, echo: Echo) -> Self {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let thread_shared = shared.clone();
        let reader = std::thread::spawn(move || {
            let (lock, cond) = &*thread_shared;
            let push = |raw: &[u8]| {
                // Serial output is not guaranteed UTF-8: split on bytes, convert lossily.
                let line = String::from_utf8_lossy(raw)
                    .trim_end_matches(['\n', '\r'])
                    .replace('\r', "");
                if echo == Echo::Lines {
                    crate::progress::console_line(&line);
                }
                let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
                if state.tail.len() == tail_len {
                    state.tail.pop_front();
                }
                state.tail.push_back(line.clone());
                if state.pending.len() == PENDING_LIMIT {
                    state.pending.pop_front();
                }
                state.pending.push_back(line);
                cond.notify_all();
            };
            read_lines(stream, echo == Echo::Raw, push);
            lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
            cond.notify_all();
        });
        Console {
            shared,
            reader: Some(reader),
        }
    }

    /// The first line not seen by an earlier wait that matches `pred`; lines before it are
    /// consumed. Lines that arrived before the call count.
    pub fn wait_for_line(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, WaitError> {
        let deadline = Instant::now() + timeout;
        let (lock, cond) = &*self.shared;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            while let Some(line) = state.pending.pop_front() {
                if pred(&line) {
                    return Ok(line);
                }
            }
            if state.closed {
                return Err(WaitError::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(WaitError::Timeout);
            }
            state = cond
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The last lines read, oldest first.
    pub fn tail(&self) -> Vec<String> {
        let state = self.shared.0.lock().unwrap_or_else(|e| e.into_inner());
        state.tail.iter().cloned().collect()
    }

    /// Wait for the stream to end (after the process exited) so the tail is complete.
    pub fn join(&mut self) {
        if let Some(reader) = self.reader.take() {
            // A panicked reader only loses lines; the tail so far is still there.
            let _ = reader.join();
        }
    }
}

/// Read `stream` to its end, calling `line` with each line (its newline included; a last
/// line without one too); with `raw`, every byte also goes to our stdout as it is read.
fn read_lines(mut stream: impl Read, raw: bool, mut line: impl FnMut(&[u8])) {
    let mut buf = vec![0u8; 8192];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if raw {
            let mut out = std::io::stdout().lock();
            // A closed stdout only loses the echo; the waiters still get every line.
            let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
        }
        partial.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(at) = partial[start..].iter().position(|&b| b == b'\n') {
            line(&partial[start..start + at + 1]);
            start += at + 1;
        }
        partial.drain(..start);
    }
    if !partial.is_empty() {
        line(&partial);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_carriage_returns_stripped() {
        let mut c = Console::new(&b"one\r\ntwo\rx\nthree"[..], 10, Echo::Off);
        c.join();
        assert_eq!(c.tail(), ["one", "twox", "three"]);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let input: String = (0..10).map(|i| format!("line {i}\n")).collect();
        let mut c = Console::new(std::io::Cursor::new(input.into_bytes()), 3, Echo::Off);
        c.join();
        assert_eq!(c.tail(), ["line 7", "line 8", "line 9"]);
    }

    #[test]
    fn waits_consume_lines_in_order() {
        let c = Console::new(&b"a\nmark 1\nb\nmark 2\n"[..], 10, Echo::Off);
        let second = Duration::from_secs(5);
        assert_eq!(
            c.wait_for_line(|l| l.starts_with("mark"), second).unwrap(),
            "mark 1"
        );
        assert_eq!(
            c.wait_for_line(|l| l.starts_with("mark"), second).unwrap(),
            "mark 2"
        );
        assert_eq!(
            c.wait_for_line(|l| l.starts_with("mark"), second),
            Err(WaitError::Closed)
        );
    }

    #[test]
    fn a_line_written_later_wakes_the_waiter_and_silence_times_out() {
        let (reader, mut writer) = std::os::unix::net::UnixStream::pair().unwrap();
        let c = Console::new(reader, 10, Echo::Off);
        assert_eq!(
            c.wait_for_line(|l| l == "late", Duration::from_millis(50)),
            Err(WaitError::Timeout)
        );
        let feeder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.write_all(b"late\n").unwrap();
            writer
        });
        // Generous: only a broken wake-up would use it up.
        assert_eq!(
            c.wait_for_line(|l| l == "late", Duration::from_secs(60))
                .unwrap(),
            "late"
        );
        drop(feeder.join().unwrap());
    }

    /// Hands out its bytes one at a time: lines arrive in pieces, as from a serial port.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let Some(&b) = self.0.get(self.1) else {
                return Ok(0);
            };
            buf[0] = b;
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn lines_read_in_pieces_are_whole_and_a_last_partial_line_counts() {
        let mut lines = Vec::new();
        read_lines(Trickle(b"ab\ncd\r\nlogin: ".to_vec(), 0), false, |l| {
            lines.push(String::from_utf8_lossy(l).into_owned())
        });
        assert_eq!(lines, ["ab\n", "cd\r\n", "login: "]);
    }
}
