//! The operating system's file system.

use super::{DirEntry, RandomAccessFile, Vfs};
use crate::error::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
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

impl RandomAccessFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

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
}
