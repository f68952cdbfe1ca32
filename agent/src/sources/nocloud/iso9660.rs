//! A small ISO 9660 reader, enough for a NoCloud seed: the volume label and the files of
//! the root directory, by their Rock Ridge (`NM`) or Joliet names — the plain ISO names
//! are 8.3 upper case (`USER_DAT.;1`), which is not what cloud-init looks for.

use std::io::{self, Read, Seek, SeekFrom};

const SECTOR: u64 = 2048;

/// True when the image has an ISO 9660 primary volume descriptor.
pub fn probe<R: Read + Seek>(dev: &mut R) -> io::Result<Option<String>> {
    let mut vd = [0u8; 2048];
    dev.seek(SeekFrom::Start(16 * SECTOR))?;
    if read_full(dev, &mut vd)? < vd.len() || &vd[1..6] != b"CD001" || vd[0] != 1 {
        return Ok(None);
    }
    Ok(Some(ascii_field(&vd[40..72])))
}

/// The root directory's regular files as (name, contents).
pub fn root_files<R: Read + Seek>(dev: &mut R) -> io::Result<Vec<(String, Vec<u8>)>> {
    let (mut primary, mut joliet) = (None, None);
    for n in 16..64 {
        let mut vd = [0u8; 2048];
        dev.seek(SeekFrom::Start(n * SECTOR))?;
        if read_full(dev, &mut vd)? < vd.len() || &vd[1..6] != b"CD001" {
            break;
        }
        match vd[0] {
            1 => primary = Some(root_record(&vd)),
            // Joliet: a supplementary descriptor with a UCS-2 escape sequence.
            2 if matches!(&vd[88..91], b"%/@" | b"%/C" | b"%/E") => joliet = Some(root_record(&vd)),
            255 => break,
            _ => {}
        }
    }
    let (lba, len) = primary.ok_or_else(|| invalid("no primary volume descriptor"))?;
    let records = directory(dev, lba, len)?;
    if records.iter().any(|r| r.rock_ridge_name.is_some()) || joliet.is_none() {
        let mut out = Vec::new();
        for r in records.into_iter().filter(|r| !r.is_dir) {
            let name = r
                .rock_ridge_name
                .clone()
                .unwrap_or_else(|| String::from_utf8_lossy(&r.raw_name).into_owned());
            out.push((name, extent(dev, r.lba, r.size)?));
        }
        return Ok(out);
    }
    let (lba, len) = joliet.unwrap_or((lba, len));
    let mut out = Vec::new();
    for r in directory(dev, lba, len)?.into_iter().filter(|r| !r.is_dir) {
        let units: Vec<u16> = r
            .raw_name
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let name = String::from_utf16_lossy(&units);
        let name = name.strip_suffix(";1").unwrap_or(&name).to_string();
        out.push((name, extent(dev, r.lba, r.size)?));
    }
    Ok(out)
}

struct Record {
    lba: u32,
    size: u32,
    is_dir: bool,
    raw_name: Vec<u8>,
    rock_ridge_name: Option<String>,
}

fn root_record(vd: &[u8]) -> (u32, u32) {
    let r = &vd[156..190];
    (le32(&r[2..6]), le32(&r[10..14]))
}

fn directory<R: Read + Seek>(dev: &mut R, lba: u32, len: u32) -> io::Result<Vec<Record>> {
    if len > 16 << 20 {
        return Err(invalid("root directory larger than 16 MiB"));
    }
    let data = extent(dev, lba, len)?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rlen = data[pos] as usize;
        if rlen == 0 {
            // Records never cross a sector: the rest of this one is padding.
            pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
            continue;
        }
        let rec = data
            .get(pos..pos + rlen)
            .filter(|r| r.len() >= 34)
            .ok_or_else(|| invalid("directory record runs past its directory"))?;
        let name_len = rec[32] as usize;
        let name = rec
            .get(33..33 + name_len)
            .ok_or_else(|| invalid("directory record name runs past its record"))?;
        // `.` and `..` are the one-byte names 0 and 1.
        if !(name_len == 1 && name[0] <= 1) {
            let su_start = 33 + name_len + usize::from(name_len % 2 == 0);
            out.push(Record {
                lba: le32(&rec[2..6]),
                size: le32(&rec[10..14]),
                is_dir: rec[25] & 2 != 0,
                raw_name: name.to_vec(),
                rock_ridge_name: rec.get(su_start..).and_then(rock_ridge_name),
            });
        }
        pos += rlen;
    }
    Ok(out)
}

/// The Rock Ridge alternate name: the `NM` entries of a System Use area, joined.
fn rock_ridge_name(mut su: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    let mut found = false;
    while su.len() >= 4 {
        let len = su[2] as usize;
        if len < 4 || len > su.len() {
            break;
        }
        if &su[..2] == b"NM" && len >= 5 {
            found = true;
            name.extend_from_slice(&su[5..len]);
        }
        su = &su[len..];
    }
    found.then(|| String::from_utf8_lossy(&name).into_owned())
}

fn extent<R: Read + Seek>(dev: &mut R, lba: u32, size: u32) -> io::Result<Vec<u8>> {
    // A record may claim up to 4 GiB: nothing past a config document's cap is allocated.
    if u64::from(size) > ignition::limits::MAX_DOCUMENT_BYTES {
        return Err(invalid(&format!(
            "an extent of {size} bytes, more than the {} a seed file may hold",
            ignition::limits::MAX_DOCUMENT_BYTES
        )));
    }
    dev.seek(SeekFrom::Start(u64::from(lba) * SECTOR))?;
    let mut buf = vec![0u8; size as usize];
    if read_full(dev, &mut buf)? < buf.len() {
        return Err(invalid("file extent runs past the end of the image"));
    }
    Ok(buf)
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn ascii_field(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("ISO 9660: {what}"))
}
