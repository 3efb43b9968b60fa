//! The 12-byte value pointer: where a value lives in the value log.
//!
//! Badger copies its `valuePointer` struct with `unsafe`, so the three u32
//! fields are little-endian (one of the format's three LE traps): `fid | len |
//! offset`. `len` is the whole encoded log entry (header, key, value, CRC) and
//! `offset` is where that entry starts in `NNNNNN.vlog`.

use crate::error::{CorruptionKind, DecodeError};

/// Which of two copies of the same key at the same version is the newer.
///
/// The same internal key can sit in two places at once only after value-log
/// GC wrote a live value again (at its original version, into a newer
/// file) while the old pointer still sits in an older table. The copy
/// pointing further along the value log is the newer one: GC always writes
/// into a file with a higher id than the one it collects, and appends
/// within a file go forward. This rank orders such copies (greater =
/// newer): pointers by `(fid, offset)`, and any pointer above an inline
/// value (GC keeps rewritten values in the value log, so an inline copy
/// never supersedes a pointer; between two inline copies the caller's
/// source order decides).
pub fn copy_rank(meta: u8, value: &[u8]) -> (bool, u32, u32) {
    if meta & crate::format::meta::BIT_VALUE_POINTER == 0 {
        return (false, 0, 0);
    }
    match ValuePointer::decode(value) {
        Ok(vp) => (true, vp.fid, vp.offset),
        Err(_) => (false, 0, 0),
    }
}

/// Encoded size.
pub const VALUE_POINTER_LEN: usize = 12;

/// A pointer into a value-log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ValuePointer {
    /// The value-log file id (`NNNNNN.vlog`).
    pub fid: u32,
    /// Length of the whole log entry.
    pub len: u32,
    /// Offset of the entry in the file.
    pub offset: u32,
}

impl ValuePointer {
    /// The 12 bytes Badger writes.
    pub fn encode(&self) -> [u8; VALUE_POINTER_LEN] {
        let mut out = [0u8; VALUE_POINTER_LEN];
        out[0..4].copy_from_slice(&self.fid.to_le_bytes());
        out[4..8].copy_from_slice(&self.len.to_le_bytes());
        out[8..12].copy_from_slice(&self.offset.to_le_bytes());
        out
    }

    /// Decodes exactly 12 bytes.
    pub fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        if b.len() != VALUE_POINTER_LEN {
            return Err(DecodeError::new(
                0,
                CorruptionKind::OutOfRange {
                    field: "value pointer length",
                    value: b.len() as u64,
                    limit: VALUE_POINTER_LEN as u64,
                },
            ));
        }
        let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(ValuePointer {
            fid: word(0),
            len: word(4),
            offset: word(8),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let vp = ValuePointer {
            fid: 1,
            len: 0x0102,
            offset: 0x0a0b0c0d,
        };
        let hex: [u8; 12] = [1, 0, 0, 0, 0x02, 0x01, 0, 0, 0x0d, 0x0c, 0x0b, 0x0a];
        assert_eq!(vp.encode(), hex);
        assert_eq!(ValuePointer::decode(&hex).unwrap(), vp);
    }

    #[test]
    fn wrong_length_is_corruption() {
        assert!(ValuePointer::decode(&[0; 11]).is_err());
        assert!(ValuePointer::decode(&[0; 13]).is_err());
    }
}
