//! The value log (`NNNNNN.vlog`): values too large to keep in the tree.
//!
//! Badger's `value.go`. The write thread appends values of at least
//! `value_threshold` bytes to the active file (Badger's entry format, the
//! transaction bits cleared) before the WAL record that points at them, and
//! rotates the file between commits when it passes `value_log_file_size` or
//! `value_log_max_entries`. Readers resolve pointers through [`VlogFile`]s,
//! which know how far their file is valid.
//!
//! Contract: [`read_value`] checks the pointer against the file's valid
//! length before reading, then checks the entry's own CRC and that it decodes
//! to exactly `len` bytes; any mismatch is `Corruption` with the file and the
//! pointer's offset (Badger sliced out of bounds here: its issues #2065 and
//! lotus#3487).

pub mod gc;
pub mod threshold;

use crate::error::{CorruptionKind, Error, Result};
use crate::format::entry::{Decoded, decode_entry};
use crate::format::{LOG_HEADER_LEN, ValuePointer};
use crate::vfs::RandomAccessFile;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One value-log file as readers see it.
#[derive(Debug)]
pub struct VlogFile {
    /// Its id.
    pub fid: u32,
    /// The file, opened for reading.
    pub file: Arc<dyn RandomAccessFile>,
    /// Bytes known to hold complete entries (grows while the file is active).
    valid_len: AtomicU64,
    /// Bytes known durable.
    synced_len: AtomicU64,
    /// A write handle used only to make the file durable (`fdatasync` on any
    /// descriptor of the file covers it); none when opened read-only.
    sync_handle: parking_lot::Mutex<Option<Box<dyn crate::vfs::WritableFile>>>,
    /// A read-only mapping of the file's first bytes, when the platform
    /// gives one: values are handed out as slices of it.
    map: parking_lot::RwLock<Option<Bytes>>,
}

/// A mapping is renewed (for the file being written) once this much more of
/// the file is valid; reads past it meanwhile use `pread`.
const REMAP_STEP: u64 = 64 << 20;

impl VlogFile {
    /// A file valid up to `valid_len` bytes.
    pub fn new(fid: u32, file: Arc<dyn RandomAccessFile>, valid_len: u64) -> Self {
        VlogFile {
            fid,
            file,
            valid_len: AtomicU64::new(valid_len),
            synced_len: AtomicU64::new(valid_len),
            sync_handle: parking_lot::Mutex::new(None),
            map: parking_lot::RwLock::new(None),
        }
    }

    /// Gives the file a handle to make appended data durable with.
    pub fn with_sync_handle(self, h: Box<dyn crate::vfs::WritableFile>) -> Self {
        *self.sync_handle.lock() = Some(h);
        self
    }

    /// Makes every valid byte durable (a no-op when nothing new was written).
    pub fn sync(&self) -> Result<()> {
        let valid = self.valid_len();
        if self.synced_len.load(Ordering::Acquire) >= valid {
            return Ok(());
        }
        if let Some(h) = self.sync_handle.lock().as_mut() {
            h.sync_data()?;
        }
        self.synced_len.fetch_max(valid, Ordering::AcqRel);
        Ok(())
    }

    /// Records that bytes up to `len` are durable (the writer synced them).
    pub fn set_synced_len(&self, len: u64) {
        self.synced_len.fetch_max(len, Ordering::AcqRel);
    }

    /// Bytes known valid.
    pub fn valid_len(&self) -> u64 {
        self.valid_len.load(Ordering::Acquire)
    }

    /// Records that entries up to `len` are written (the write thread only).
    pub fn set_valid_len(&self, len: u64) {
        self.valid_len.store(len, Ordering::Release);
    }

    /// The value `vp` points to, checked as the module's contract says, and
    /// shared without a copy: a slice of the file's mapping, or of the one
    /// buffer it was read into.
    pub fn read_value(&self, vp: &ValuePointer) -> Result<Bytes> {
        let valid = self.valid_len();
        let (start, end) = check_bounds(self.file.as_ref(), vp, valid)?;
        let entry = match self.mapped(end, valid) {
            Some(map) => map.slice(start as usize..end as usize),
            None => {
                let mut buf = vec![0u8; vp.len as usize];
                self.file.read_exact_at(&mut buf, start)?;
                Bytes::from(buf)
            }
        };
        let parts = check_entry(self.file.as_ref(), vp, &entry)?;
        Ok(entry.slice(parts.value))
    }

    /// The mapping, if it covers `end`; (re)made when it does not and the
    /// file has grown by [`REMAP_STEP`] since (or was never mapped).
    fn mapped(&self, end: u64, valid: u64) -> Option<Bytes> {
        if let Some(m) = self.map.read().as_ref()
            && m.len() as u64 >= end
        {
            return Some(m.clone());
        }
        let mut slot = self.map.write();
        let have = slot.as_ref().map_or(0, |m| m.len() as u64);
        if have >= end {
            return slot.clone();
        }
        if slot.is_some() && valid < have + REMAP_STEP {
            return None;
        }
        let map = self.file.map_prefix(valid)?;
        *slot = Some(map.clone());
        Some(map)
    }
}

/// The pointer's entry must start after the header and end within the
/// valid bytes: its `(start, end)` offsets.
fn check_bounds(file: &dyn RandomAccessFile, vp: &ValuePointer, valid_len: u64) -> Result<(u64, u64)> {
    let (start, end) = (u64::from(vp.offset), u64::from(vp.offset) + u64::from(vp.len));
    if start < LOG_HEADER_LEN as u64 || end > valid_len {
        return Err(Error::corruption(
            file.path(),
            start,
            CorruptionKind::OutOfRange {
                field: "value pointer end",
                value: end,
                limit: valid_len,
            },
        ));
    }
    Ok((start, end))
}

/// Where the parts of a checked entry lie in its buffer.
struct EntryParts {
    key: std::ops::Range<usize>,
    value: std::ops::Range<usize>,
    meta: u8,
}

/// Decodes the entry in `buf` (exactly the `vp.len` bytes `vp` points to),
/// checking its CRC and length.
fn check_entry(file: &dyn RandomAccessFile, vp: &ValuePointer, buf: &[u8]) -> Result<EntryParts> {
    let corrupt = |kind| Error::corruption(file.path(), u64::from(vp.offset), kind);
    match decode_entry(buf) {
        // header | key | value | crc32 (4 bytes)
        Decoded::Entry(e, n) if n == buf.len() && n >= 4 + e.value.len() + e.key.len() => {
            let value = n - 4 - e.value.len()..n - 4;
            Ok(EntryParts {
                key: value.start - e.key.len()..value.start,
                value,
                meta: e.meta,
            })
        }
        Decoded::Entry(_, n) => Err(corrupt(CorruptionKind::OutOfRange {
            field: "value-log entry length",
            value: n as u64,
            limit: u64::from(vp.len),
        })),
        Decoded::End(why) => Err(corrupt(CorruptionKind::Inconsistent {
            detail: format!("value pointer does not point at a valid entry ({why:?})"),
        })),
    }
}

/// A value read from the value log, with the entry's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlogValue {
    /// The internal key stored with the value.
    pub key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// Meta bits as stored in the value log.
    pub meta: u8,
}

/// Reads the entry `vp` points to in `file` (which must be `vp.fid`'s
/// file), checked the same way (against the file's length), with its key and
/// meta (the offline view and the decoder tests use it).
pub fn read_value(file: &dyn RandomAccessFile, vp: &ValuePointer) -> Result<VlogValue> {
    let (start, _) = check_bounds(file, vp, file.len())?;
    let mut buf = vec![0u8; vp.len as usize];
    file.read_exact_at(&mut buf, start)?;
    let parts = check_entry(file, vp, &buf)?;
    Ok(VlogValue {
        key: buf[parts.key].to_vec(),
        value: buf[parts.value].to_vec(),
        meta: parts.meta,
    })
}
