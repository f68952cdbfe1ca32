//! FAT (vfat) seeds through the `fatfs` crate: the volume label (boot sector or root
//! directory entry, as blkid reads it) and root files by their long names.

use std::io::{self, Read, Seek};

/// fatfs wants a writable device; a seed is only ever read, so every write fails.
pub struct ReadOnly<R>(pub R);

impl<R: Read> Read for ReadOnly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<R: Seek> Seek for ReadOnly<R> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

impl<R> io::Write for ReadOnly<R> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "a NoCloud seed is read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `None` when the device holds no FAT file system; an error when it holds one whose
/// root directory leads outside the volume ([`super::fat_clusters`]).
pub fn open<R: Read + Seek>(mut dev: R) -> io::Result<Option<fatfs::FileSystem<ReadOnly<R>>>> {
    if fatfs::FileSystem::new(ReadOnly(&mut dev), fatfs::FsOptions::new()).is_err() {
        return Ok(None);
    }
    super::fat_clusters::check(&mut dev)?;
    dev.seek(io::SeekFrom::Start(0))?;
    Ok(fatfs::FileSystem::new(ReadOnly(dev), fatfs::FsOptions::new()).ok())
}

/// The label, preferring the root directory's volume entry (what mkfs.fat -n and
/// fatlabel keep current) over the boot sector's copy.
pub fn label<R: Read + Seek>(fs: &fatfs::FileSystem<ReadOnly<R>>) -> io::Result<String> {
    if let Some(l) = fs.read_volume_label_from_root_dir()? {
        return Ok(l.trim_end().to_string());
    }
    Ok(fs.volume_label().trim_end().to_string())
}

pub fn root_files<R: Read + Seek>(
    fs: &fatfs::FileSystem<ReadOnly<R>>,
) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for e in fs.root_dir().iter() {
        let e = e?;
        if !e.is_file() {
            continue;
        }
        let mut bytes = Vec::new();
        e.to_file().read_to_end(&mut bytes)?;
        out.push((e.file_name(), bytes));
    }
    Ok(out)
}
