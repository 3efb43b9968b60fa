//! The file layer: every byte Brock reads or writes goes through [`Vfs`].
//!
//! Contract: implementations are `Send + Sync` and may be called from any
//! thread. Errors carry the path. Readers use positional reads (`read_at`),
//! so one open file serves concurrent readers without a lock.
//!
//! Writers append with ordinary writes (never through a writable mapping),
//! so a full disk is an `Io` error, not a SIGBUS. Durability follows POSIX:
//! file contents are durable after [`WritableFile::sync_data`], and a created,
//! renamed or removed name is durable after [`Vfs::sync_dir`] on its parent.
//! [`MemVfs`] models exactly that, so tests can "pull the plug" and see what a
//! real crash would leave (see `docs/durability.md`).

mod lock;
mod map;
mod mem;
mod names;
mod os;

pub use lock::{DirectoryLock, LOCK_FILE};
pub use mem::{CrashMode, MemVfs};
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

    /// The first `len` bytes as one buffer shared without copying (a
    /// read-only mapping), where the implementation can; `None` otherwise,
    /// and callers fall back to [`RandomAccessFile::read_at`].
    fn map_prefix(&self, len: u64) -> Option<bytes::Bytes> {
        let _ = len;
        None
    }

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

/// A file opened for writing.
pub trait WritableFile: Send + Sync + std::fmt::Debug {
    /// Appends `data` at the end of the file.
    fn append(&mut self, data: &[u8]) -> Result<()>;

    /// Overwrites bytes at `offset` (which must be within or at the end of the file).
    fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()>;

    /// Makes the contents durable (fdatasync).
    fn sync_data(&mut self) -> Result<()>;

    /// Cuts or extends (with zeros) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> Result<()>;

    /// The file's length in bytes.
    fn len(&self) -> u64;

    /// True for an empty file.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The path it was opened with.
    fn path(&self) -> &Path;
}

/// A held directory lock; dropping it releases the lock.
pub trait DirLock: Send + Sync + std::fmt::Debug {}

/// How a file is opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new file; fail if it exists.
    CreateNew,
    /// Create the file, or empty an existing one.
    Truncate,
    /// Open an existing file, positioned at its end.
    Existing,
}

/// The file system as Brock sees it.
pub trait Vfs: Send + Sync + std::fmt::Debug {
    /// Opens a file for writing (created files get mode 0600).
    fn open_write(&self, path: &Path, mode: OpenMode) -> Result<Box<dyn WritableFile>>;

    /// Removes a file.
    fn remove(&self, path: &Path) -> Result<()>;

    /// Renames a file, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;

    /// Creates a directory and its parents (mode 0700).
    fn create_dir_all(&self, path: &Path) -> Result<()>;

    /// Makes the directory's entries durable (fsync of the directory).
    fn sync_dir(&self, path: &Path) -> Result<()>;

    /// Takes a lock on a directory: exclusive, or shared for readers.
    /// `Ok(None)` means another holder has a conflicting lock.
    fn lock_dir(&self, path: &Path, exclusive: bool) -> Result<Option<Box<dyn DirLock>>>;

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
