//! The value log (`NNNNNN.vlog`): values too large to keep in the tree.
//!
//! Badger's `value.go`. This first cut resolves value pointers for readers;
//! writing, rotation and garbage collection arrive with the value-log issue.
//!
//! Contract: [`read_value`] checks the pointer against the file's size before
//! reading, then checks the entry's own CRC and that it decodes to exactly
//! `len` bytes; any mismatch is `Corruption` with the file and the pointer's
//! offset (Badger sliced out of bounds here: its issues #2065 and lotus#3487).

use crate::error::{CorruptionKind, Error, Result};
use crate::format::entry::{Decoded, decode_entry};
use crate::format::{LOG_HEADER_LEN, ValuePointer};
use crate::vfs::RandomAccessFile;

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

/// Reads the entry `vp` points to in `file` (which must be `vp.fid`'s file).
pub fn read_value(file: &dyn RandomAccessFile, vp: &ValuePointer) -> Result<VlogValue> {
    let corrupt = |kind| Error::corruption(file.path(), u64::from(vp.offset), kind);
    let end = u64::from(vp.offset) + u64::from(vp.len);
    if u64::from(vp.offset) < LOG_HEADER_LEN as u64 || end > file.len() {
        return Err(corrupt(CorruptionKind::OutOfRange {
            field: "value pointer end",
            value: end,
            limit: file.len(),
        }));
    }
    let buf = file.read_vec_at(u64::from(vp.offset), u64::from(vp.len))?;
    match decode_entry(&buf) {
        Decoded::Entry(e, n) if n == buf.len() => Ok(VlogValue {
            key: e.key.to_vec(),
            value: e.value.to_vec(),
            meta: e.meta,
        }),
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
