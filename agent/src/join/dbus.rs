//! A minimal D-Bus client, enough to ask systemd to enable and start a unit: connect to a
//! unix socket, SASL EXTERNAL as our uid, `Hello`, then method calls whose arguments are
//! strings, booleans and string arrays, and wait for the reply (return or error).
//! Messages are little-endian; replies in either byte order are read. zbus would do this,
//! but cannot be built here (its dependencies are not all available offline).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// systemd's own peer-to-peer socket (root only): there from PID 1's start, before the
/// system bus daemon runs — what systemctl uses, and what a sysinit.target service must.
pub const SYSTEMD_PRIVATE: &str = "/run/systemd/private";
/// Per spec a message may be 128 MiB; replies we wait for are tiny.
const MAX_MESSAGE: usize = 1 << 20;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SIGNATURE: u8 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DbusError {
    /// The bus is not there or would not let us in: a fallback may be tried.
    #[error("connecting to the D-Bus socket {path}: {problem}")]
    Connect { path: String, problem: String },
    /// The callee answered with an error.
    #[error("{name}: {message}")]
    Remote { name: String, message: String },
    #[error("D-Bus protocol: {0}")]
    Protocol(String),
    #[error("D-Bus connection: {0}")]
    Io(#[from] std::io::Error),
}

/// One argument of a call.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    StrArray(&'a [&'a str]),
}

impl Arg<'_> {
    fn signature(&self) -> &'static str {
        match self {
            Arg::Str(_) => "s",
            Arg::Bool(_) => "b",
            Arg::StrArray(_) => "as",
        }
    }
}

/// A method return: its signature and body, and the body's byte order.
#[derive(Debug)]
pub struct Reply {
    pub signature: String,
    body: Vec<u8>,
    big_endian: bool,
}

/// A property value (`org.freedesktop.DBus.Properties.Get` returns a variant) of the
/// types systemd's unit properties this agent reads have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `s` or `o`.
    Str(String),
    U32(u32),
    Bool(bool),
    /// `(uo)`: a unit's `Job` (id 0 and path "/" when it has none).
    Job(u32, String),
    /// `as`: a unit's `DropInPaths`.
    StrArray(Vec<String>),
}

impl Reply {
    /// The first value when it is a string or object path (StartUnit's job, Hello's name).
    pub fn first_string(&self) -> Option<String> {
        if !matches!(self.signature.chars().next(), Some('s' | 'o')) {
            return None;
        }
        Reader::new(&self.body, self.big_endian).string().ok()
    }

    /// The first value when it is a variant (a property).
    pub fn first_variant(&self) -> Result<Value, DbusError> {
        if !self.signature.starts_with('v') {
            return Err(DbusError::Protocol(format!(
                "expected a variant, got signature {:?}",
                self.signature
            )));
        }
        let mut r = Reader::new(&self.body, self.big_endian);
        let inner = r.signature()?;
        match inner.as_str() {
            "s" | "o" => Ok(Value::Str(r.string()?)),
            "u" => Ok(Value::U32(r.u32()?)),
            "b" => Ok(Value::Bool(r.u32()? != 0)),
            "(uo)" => {
                r.align(8)?;
                let id = r.u32()?;
                Ok(Value::Job(id, r.string()?))
            }
            "as" => {
                let len = r.u32()? as usize;
                let end = r.pos.checked_add(len).ok_or_else(Reader::short)?;
                let mut items = Vec::new();
                while r.pos < end {
                    items.push(r.string()?);
                }
                Ok(Value::StrArray(items))
            }
            other => Err(DbusError::Protocol(format!(
                "a variant of type {other:?} is not read here"
            ))),
        }
    }
}

#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    serial: u32,
    pub unique_name: String,
}

/// One connection used by several steps in turn (first boot's, to PID 1: opened before
/// READY and used for everything after it; see docs/boot-flow.md).
pub type SharedConnection = Arc<Mutex<Connection>>;

impl Connection {
    /// Connect, authenticate and say Hello.
    pub fn open(path: &Path, timeout: Duration) -> Result<Connection, DbusError> {
        let mut c = Connection::open_peer(path, timeout)?;
        let hello = c.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        c.unique_name = hello
            .first_string()
            .ok_or_else(|| DbusError::Protocol("Hello returned no name".into()))?;
        Ok(c)
    }

    /// Connect and authenticate to a peer that is not a bus (systemd's private socket):
    /// no Hello, no unique name.
    pub fn open_peer(path: &Path, timeout: Duration) -> Result<Connection, DbusError> {
        let connect_err = |problem: String| DbusError::Connect {
            path: path.display().to_string(),
            problem,
        };
        let stream = UnixStream::connect(path).map_err(|e| connect_err(e.to_string()))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut c = Connection {
            stream,
            serial: 0,
            unique_name: String::new(),
        };
        c.authenticate().map_err(|e| connect_err(e.to_string()))?;
        Ok(c)
    }

    /// How long one reply may take (a daemon reload under TCG takes seconds).
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), DbusError> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// `org.freedesktop.DBus.Properties.Get(interface, property)` on `path`.
    pub fn get_property(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        property: &str,
    ) -> Result<Value, DbusError> {
        self.call(
            destination,
            path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &[Arg::Str(interface), Arg::Str(property)],
        )?
        .first_variant()
    }

    /// `AUTH EXTERNAL` and `BEGIN` in one write, as sd-bus clients send them. Sending
    /// `BEGIN` after the `OK`, right before the first call, let PID 1 (systemd 252's
    /// sd-bus server) read both in one go: it ends the handshake with the call left in
    /// its own buffer and waits for more input that never comes (3 of 5 debian-node
    /// boots hung there, PID 1 idle and both socket queues empty). Pipelined, `BEGIN` is
    /// handled as soon as `OK` is written, before the call can arrive.
    fn authenticate(&mut self) -> Result<(), DbusError> {
        let uid = nix::unistd::getuid().as_raw().to_string();
        let lines = format!("\0AUTH EXTERNAL {}\r\nBEGIN\r\n", hex::encode(uid));
        self.stream.write_all(lines.as_bytes())?;
        let answer = self.read_line()?;
        if !answer.starts_with("OK ") {
            return Err(DbusError::Protocol(format!(
                "the bus refused EXTERNAL authentication: {answer:?}"
            )));
        }
        Ok(())
    }

    /// One `\r\n`-terminated line, byte by byte: nothing after it may be consumed.
    fn read_line(&mut self) -> Result<String, DbusError> {
        let mut line = Vec::new();
        let mut byte = [0u8];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(DbusError::Protocol("authentication line too long".into()));
            }
            self.stream.read_exact(&mut byte)?;
            line.push(byte[0]);
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| DbusError::Protocol("non-UTF-8 auth line".into()))
    }

    /// Call a method and wait for its reply; signals and other traffic are skipped.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg<'_>],
    ) -> Result<Reply, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let message = method_call(serial, destination, path, interface, member, args);
        self.stream.write_all(&message)?;
        loop {
            let m = read_message(&mut self.stream)?;
            if m.reply_serial != Some(serial) {
                continue;
            }
            match m.kind {
                METHOD_RETURN => {
                    return Ok(Reply {
                        signature: m.signature,
                        body: m.body,
                        big_endian: m.big_endian,
                    })
                }
                ERROR => {
                    let message = Reply {
                        signature: m.signature,
                        body: m.body,
                        big_endian: m.big_endian,
                    }
                    .first_string()
                    .unwrap_or_default();
                    return Err(DbusError::Remote {
                        name: m.error_name.unwrap_or_else(|| "(unnamed error)".into()),
                        message,
                    });
                }
                _ => continue,
            }
        }
    }
}

/// Any one message off the wire as a [`Reply`] (its signature and body): the parser the
/// fuzz target `dbus_message` feeds (fuzz/), the bus being outside the agent's trust.
#[doc(hidden)]
pub fn read_any_message(bytes: &[u8]) -> Result<Reply, DbusError> {
    let m = read_message(&mut &bytes[..])?;
    Ok(Reply {
        signature: m.signature,
        body: m.body,
        big_endian: m.big_endian,
    })
}

fn read_message(stream: &mut impl Read) -> Result<Incoming, DbusError> {
    let mut fixed = [0u8; 16];
    stream.read_exact(&mut fixed)?;
    let big_endian = match fixed[0] {
        b'l' => false,
        b'B' => true,
        e => return Err(DbusError::Protocol(format!("byte order {e:#04x}"))),
    };
    let word = |at: usize| {
        let b = [fixed[at], fixed[at + 1], fixed[at + 2], fixed[at + 3]];
        (if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }) as usize
    };
    let (body_len, fields_len) = (word(4), word(12));
    let header_end = 16 + fields_len;
    let body_start = header_end.div_ceil(8) * 8;
    let total = body_start + body_len;
    if total > MAX_MESSAGE {
        return Err(DbusError::Protocol(format!("a {total}-byte message")));
    }
    let mut message = fixed.to_vec();
    message.resize(total, 0);
    stream.read_exact(&mut message[16..])?;
    let mut incoming = Incoming {
        kind: fixed[1],
        reply_serial: None,
        error_name: None,
        signature: String::new(),
        body: message[body_start..].to_vec(),
        big_endian,
    };
    let mut r = Reader::new(&message[..header_end], big_endian);
    r.pos = 16;
    while r.pos < header_end {
        r.align(8)?;
        let code = r.byte()?;
        let sig = r.signature()?;
        match sig.as_str() {
            "s" | "o" => {
                let s = r.string()?;
                if code == FIELD_ERROR_NAME {
                    incoming.error_name = Some(s);
                }
            }
            "g" => {
                let s = r.signature()?;
                if code == FIELD_SIGNATURE {
                    incoming.signature = s;
                }
            }
            "u" => {
                let v = r.u32()?;
                if code == FIELD_REPLY_SERIAL {
                    incoming.reply_serial = Some(v);
                }
            }
            other => {
                return Err(DbusError::Protocol(format!(
                    "header field {code} has type {other:?}"
                )))
            }
        }
    }
    Ok(incoming)
}

struct Incoming {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    signature: String,
    body: Vec<u8>,
    big_endian: bool,
}

/// Little-endian marshalling; alignment is from the start of the buffer, which is the
/// start of the message or of its (8-aligned) body.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }
    fn byte(&mut self, b: u8) {
        self.buf.push(b);
    }
    fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    fn arg(&mut self, a: &Arg<'_>) {
        match a {
            Arg::Str(s) => self.string(s),
            Arg::Bool(b) => self.u32(u32::from(*b)),
            Arg::StrArray(items) => {
                self.u32(0);
                let len_at = self.buf.len() - 4;
                // Strings align to 4, as the length did: no padding before the first.
                let start = self.buf.len();
                for s in *items {
                    self.string(s);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
    }
}

fn method_call(
    serial: u32,
    destination: &str,
    path: &str,
    interface: &str,
    member: &str,
    args: &[Arg<'_>],
) -> Vec<u8> {
    let mut body = Writer::default();
    for a in args {
        body.arg(a);
    }
    let signature: String = args.iter().map(Arg::signature).collect();

    let mut m = Writer::default();
    m.byte(b'l');
    m.byte(METHOD_CALL);
    m.byte(0); // flags: a reply is expected, auto-start allowed
    m.byte(1); // protocol version
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.u32(0); // header fields array length, patched below
    let fields_start = 16; // the array's first struct is 8-aligned: offset 16
    let mut fields: Vec<(u8, &str, &str)> = vec![
        (FIELD_PATH, "o", path),
        (FIELD_INTERFACE, "s", interface),
        (FIELD_MEMBER, "s", member),
        (FIELD_DESTINATION, "s", destination),
    ];
    if !signature.is_empty() {
        fields.push((FIELD_SIGNATURE, "g", &signature));
    }
    for (code, sig, value) in fields {
        m.align(8);
        m.byte(code);
        m.signature(sig);
        if sig == "g" {
            m.signature(value);
        } else {
            m.string(value);
        }
    }
    let fields_len = (m.buf.len() - fields_start) as u32;
    m.buf[12..16].copy_from_slice(&fields_len.to_le_bytes());
    m.align(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], big_endian: bool) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            big_endian,
        }
    }
    fn short() -> DbusError {
        DbusError::Protocol("message ends early".into())
    }
    fn align(&mut self, n: usize) -> Result<(), DbusError> {
        self.pos = self.pos.div_ceil(n) * n;
        if self.pos > self.buf.len() {
            return Err(Self::short());
        }
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self.pos.checked_add(n).ok_or_else(Self::short)?;
        let s = self.buf.get(self.pos..end).ok_or_else(Self::short)?;
        self.pos = end;
        Ok(s)
    }
    fn byte(&mut self) -> Result<u8, DbusError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4)?;
        let b: [u8; 4] = self.take(4)?.try_into().map_err(|_| Self::short())?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn text(&mut self, len: usize) -> Result<String, DbusError> {
        let s = self.take(len)?;
        if self.take(1)? != [0] {
            return Err(DbusError::Protocol("string without its NUL".into()));
        }
        String::from_utf8(s.to_vec()).map_err(|_| DbusError::Protocol("non-UTF-8 string".into()))
    }
    fn string(&mut self) -> Result<String, DbusError> {
        let len = self.u32()? as usize;
        self.text(len)
    }
    fn signature(&mut self) -> Result<String, DbusError> {
        let len = usize::from(self.byte()?);
        self.text(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout the D-Bus specification gives for StartUnit("kubelet.service",
    /// "replace"); tests/join_discovery.rs sends it through a real dbus-daemon.
    #[test]
    fn start_unit_call_layout() {
        let m = method_call(
            7,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartUnit",
            &[Arg::Str("kubelet.service"), Arg::Str("replace")],
        );
        assert_eq!(&m[..4], b"l\x01\x00\x01");
        let body_len = u32::from_le_bytes(m[4..8].try_into().unwrap()) as usize;
        // "kubelet.service": 4 + 15 + 1 = 20; "replace": 4 + 7 + 1 = 12.
        assert_eq!(body_len, 32);
        assert_eq!(u32::from_le_bytes(m[8..12].try_into().unwrap()), 7);
        let fields_len = u32::from_le_bytes(m[12..16].try_into().unwrap()) as usize;
        let body_start = (16 + fields_len).div_ceil(8) * 8;
        assert_eq!(m.len(), body_start + body_len);
        assert_eq!(&m[body_start..body_start + 4], &15u32.to_le_bytes());
        assert_eq!(&m[body_start + 4..body_start + 20], b"kubelet.service\0");
        assert_eq!(&m[body_start + 20..body_start + 24], &7u32.to_le_bytes());
        // The first header field: PATH, signature "o", the path.
        assert_eq!(&m[16..20], b"\x01\x01o\x00");
        assert_eq!(&m[20..24], &25u32.to_le_bytes());
        assert_eq!(&m[24..50], b"/org/freedesktop/systemd1\0");
        // Read back by our own reader: every field where it should be.
        let mut r = Reader::new(&m[..16 + fields_len], false);
        r.pos = 16;
        let mut seen = Vec::new();
        while r.pos < 16 + fields_len {
            r.align(8).unwrap();
            let code = r.byte().unwrap();
            let sig = r.signature().unwrap();
            let v = if sig == "g" {
                r.signature().unwrap()
            } else {
                r.string().unwrap()
            };
            seen.push((code, v));
        }
        assert_eq!(
            seen,
            [
                (1, "/org/freedesktop/systemd1".to_string()),
                (2, "org.freedesktop.systemd1.Manager".to_string()),
                (3, "StartUnit".to_string()),
                (6, "org.freedesktop.systemd1".to_string()),
                (8, "ss".to_string()),
            ]
        );
    }

    #[test]
    fn string_arrays_and_booleans() {
        let mut w = Writer::default();
        w.arg(&Arg::StrArray(&["a.service", "b"]));
        w.arg(&Arg::Bool(false));
        w.arg(&Arg::Bool(true));
        let mut want = Vec::new();
        want.extend_from_slice(&(14u32 + 2 + 6).to_le_bytes());
        want.extend_from_slice(&9u32.to_le_bytes());
        want.extend_from_slice(b"a.service\0");
        want.extend_from_slice(&[0, 0]); // pad to 4 for the next string
        want.extend_from_slice(&1u32.to_le_bytes());
        want.extend_from_slice(b"b\0");
        want.extend_from_slice(&[0, 0]);
        want.extend_from_slice(&0u32.to_le_bytes());
        want.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(w.buf, want);
    }

    #[test]
    fn property_variants_are_read() {
        // v "(uo)" (7, "/org/freedesktop/systemd1/job/7"), as systemd marshals a Job.
        let path = "/org/freedesktop/systemd1/job/7";
        let mut body = vec![4, b'(', b'u', b'o', b')', 0, 0, 0];
        body.extend_from_slice(&7u32.to_le_bytes());
        body.extend_from_slice(&(path.len() as u32).to_le_bytes());
        body.extend_from_slice(path.as_bytes());
        body.push(0);
        let reply = Reply {
            signature: "v".into(),
            body,
            big_endian: false,
        };
        assert_eq!(reply.first_variant().unwrap(), Value::Job(7, path.into()));
        let mut body = vec![1, b's', 0, 0];
        body.extend_from_slice(&6u32.to_le_bytes());
        body.extend_from_slice(b"active\0");
        let reply = Reply {
            signature: "v".into(),
            body,
            big_endian: false,
        };
        assert_eq!(reply.first_variant().unwrap(), Value::Str("active".into()));
        // v "as" ["/etc/a.conf", "/run/b.conf"]: the array's length counts its strings'
        // bytes (length, text, NUL: 16 each, so no padding between them).
        let mut body = vec![2, b'a', b's', 0];
        body.extend_from_slice(&32u32.to_le_bytes());
        body.extend_from_slice(&11u32.to_le_bytes());
        body.extend_from_slice(b"/etc/a.conf\0");
        body.extend_from_slice(&11u32.to_le_bytes());
        body.extend_from_slice(b"/run/b.conf\0");
        let reply = Reply {
            signature: "v".into(),
            body,
            big_endian: false,
        };
        assert_eq!(
            reply.first_variant().unwrap(),
            Value::StrArray(vec!["/etc/a.conf".into(), "/run/b.conf".into()])
        );
        let reply = Reply {
            signature: "s".into(),
            body: vec![],
            big_endian: false,
        };
        assert!(reply.first_variant().is_err());
    }

    #[test]
    fn truncated_or_garbled_replies_are_errors() {
        let mut r = Reader::new(&[3, 0, 0, 0, b'a', b'b'], false);
        assert!(r.string().is_err());
        let mut r = Reader::new(&[1, 0, 0, 0, b'a', b'b'], false);
        assert!(matches!(r.string(), Err(DbusError::Protocol(m)) if m.contains("NUL")));
        let mut r = Reader::new(&[0, 0, 0, 2, b'h', b'i', 0], true);
        assert_eq!(r.string().unwrap(), "hi");
    }
}
