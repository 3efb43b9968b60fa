//! The operating system's file system.

use super::{DirEntry, DirLock, OpenMode, RandomAccessFile, Vfs, WritableFile};
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// [`Vfs`] over `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsVfs;

#[derive(Debug)]
struct OsFile {
    file: File,
    path: PathBuf,
    len: u64,
}

fn retry<T>(mut f: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

impl RandomAccessFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        retry(|| self.file.read_at(buf, offset)).map_err(|e| Error::io(&self.path, e))
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn map_prefix(&self, len: u64) -> Option<bytes::Bytes> {
        super::map::map_prefix(&self.file, len)
    }
}

#[derive(Debug)]
struct OsWritable {
    file: File,
    path: PathBuf,
    len: u64,
}

impl WritableFile for OsWritable {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let at = self.len;
        self.write_at(data, at)
    }

    fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < data.len() {
            let n = retry(|| self.file.write_at(&data[done..], offset + done as u64))
                .map_err(|e| Error::io(&self.path, e))?;
            if n == 0 {
                return Err(Error::io(
                    &self.path,
                    std::io::Error::from(std::io::ErrorKind::WriteZero),
                ));
            }
            done += n;
        }
        self.len = self.len.max(offset + data.len() as u64);
        Ok(())
    }

    fn sync_data(&mut self) -> Result<()> {
        retry(|| self.file.sync_data()).map_err(|e| Error::io(&self.path, e))
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        retry(|| self.file.set_len(len)).map_err(|e| Error::io(&self.path, e))?;
        self.len = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug)]
struct OsDirLock {
    _file: File,
}

impl DirLock for OsDirLock {}

impl Vfs for OsVfs {
    fn open_read(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(Arc::new(OsFile {
            file,
            path: path.to_path_buf(),
            len,
        }))
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for ent in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let ent = ent.map_err(|e| Error::io(path, e))?;
            let meta = ent.metadata().map_err(|e| Error::io(ent.path(), e))?;
            out.push(DirEntry {
                name: ent.file_name().to_string_lossy().into_owned(),
                len: meta.len(),
                is_dir: meta.is_dir(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn open_write(&self, path: &Path, mode: OpenMode) -> Result<Box<dyn WritableFile>> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).mode(0o600);
        match mode {
            OpenMode::CreateNew => o.create_new(true),
            OpenMode::Truncate => o.create(true).truncate(true),
            OpenMode::Existing => &mut o,
        };
        let file = o.open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        Ok(Box::new(OsWritable {
            file,
            path: path.to_path_buf(),
            len,
        }))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        std::fs::rename(from, to).map_err(|e| Error::io(from, e))
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::io(path, e))
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        let dir = File::open(path).map_err(|e| Error::io(path, e))?;
        retry(|| dir.sync_all()).map_err(|e| Error::io(path, e))
    }

    fn lock_dir(&self, path: &Path, exclusive: bool) -> Result<Option<Box<dyn DirLock>>> {
        // flock(2) on the directory itself, as Badger does: the lock belongs to
        // this open file description, so a second open in the same process
        // conflicts too, and the kernel drops it when the process dies.
        let dir = File::open(path).map_err(|e| Error::io(path, e))?;
        let got = if exclusive {
            dir.try_lock()
        } else {
            dir.try_lock_shared()
        };
        match got {
            Ok(()) => Ok(Some(Box::new(OsDirLock { _file: dir }))),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
        }
    }
}
