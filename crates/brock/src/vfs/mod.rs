//! The file layer: every byte Brock reads or writes goes through [`Vfs`].
//!
//! Contract: implementations are `Send + Sync` and may be called from any
//! thread. Errors carry the path. Readers use positional reads (`read_at`),
//! so one open file serves concurrent readers without a lock.
//!
//! This first cut holds the read side used by the offline view and the
//! format readers; the write side (append, sync, rename, directory sync,
//! locks) and the crash-simulating in-memory implementation arrive with the
//! engine.

mod names;
mod os;

pub use names::{FileKind, classify, mem_file_name, sst_file_name, vlog_file_name};
pub use os::OsVfs;

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file opened for reading.
pub trait RandomAccessFile: Send + Sync + std::fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (fewer only at the end of the file).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize>;

    /// The file's length in bytes.
    fn len(&self) -> u64;

    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path it was opened with, for error messages.
    fn path(&self) -> &Path;

    /// Reads exactly `buf.len()` bytes at `offset`, or a `Truncated` corruption.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let n = self.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                return Err(Error::corruption(
                    self.path(),
                    offset,
                    crate::error::CorruptionKind::Truncated {
                        needed: buf.len() as u64,
                        available: done as u64,
                    },
                ));
            }
            done += n;
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` into a new vector, after checking that
    /// the file holds them (so a bad length never sizes an allocation).
    fn read_vec_at(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let end = offset.checked_add(len);
        if end.is_none_or(|e| e > self.len()) {
            return Err(Error::corruption(
                self.path(),
                offset,
                crate::error::CorruptionKind::Truncated {
                    needed: len,
                    available: self.len().saturating_sub(offset),
                },
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }
}

/// A directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The file name.
    pub name: String,
    /// Its length in bytes (apparent, not allocated).
    pub len: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
}

/// The file system as Brock sees it.
pub trait Vfs: Send + Sync + std::fmt::Debug {
    /// Opens an existing file for reading.
    fn open_read(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>>;

    /// Reads a whole (small) file.
    fn read_all(&self, path: &Path) -> Result<Vec<u8>> {
        let f = self.open_read(path)?;
        f.read_vec_at(0, f.len())
    }

    /// Lists a directory, sorted by name.
    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>>;

    /// Whether a path exists.
    fn exists(&self, path: &Path) -> bool;
}

/// Joins a directory and a file name.
pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}
