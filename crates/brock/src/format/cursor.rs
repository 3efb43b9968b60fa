//! A bounds-checked reader over a byte slice, for decoders.
//!
//! Contract: every read either returns the bytes asked for or a
//! [`DecodeError`] carrying the offset where the read started; nothing here
//! panics on any input. Lengths taken from the data are checked against what
//! remains before anything is allocated or sliced.

use crate::error::{CorruptionKind, DecodeError};

/// A cursor over `buf`, reading forward from `pos`.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unconsumed tail.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::truncated(self.pos, n, self.remaining()));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian u16.
    pub fn u16_be(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A little-endian u16.
    pub fn u16_le(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub fn u32_be(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32_le(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64_be(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A Go `binary.Uvarint` (LEB128, at most 10 bytes, no overflow).
    pub fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        match super::varint::decode_uvarint(self.rest()) {
            Some((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            None => Err(DecodeError::new(start, CorruptionKind::BadVarint)),
        }
    }
}

/// Reads a big-endian u32 at `at` in `buf`, if it is there.
pub fn u32_be_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u32 at `at` in `buf`, if it is there.
pub fn u32_le_at(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Reads a little-endian u16 at `at` in `buf`, if it is there.
pub fn u16_le_at(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}

/// Reads a little-endian u64 at `at` in `buf`, if it is there.
pub fn u64_le_at(buf: &[u8], at: usize) -> Option<u64> {
    let b = buf.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_byte_orders() {
        let mut c = Cursor::new(&[0x01, 0x02, 0x01, 0x02, 0, 0, 0, 7, 9]);
        assert_eq!(c.u16_be().unwrap(), 0x0102);
        assert_eq!(c.u16_le().unwrap(), 0x0201);
        assert_eq!(c.u32_be().unwrap(), 7);
        assert_eq!(c.u8().unwrap(), 9);
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn short_read_reports_offset_and_sizes() {
        let mut c = Cursor::new(&[1, 2, 3]);
        c.u8().unwrap();
        let err = c.u32_be().unwrap_err();
        assert_eq!(err.offset, 1);
        assert_eq!(
            err.kind,
            CorruptionKind::Truncated {
                needed: 4,
                available: 2
            }
        );
    }

    #[test]
    fn at_helpers_refuse_out_of_range() {
        assert_eq!(u32_be_at(&[0, 0, 1], 0), None);
        assert_eq!(u32_be_at(&[0, 0, 0, 1], 0), Some(1));
        assert_eq!(u32_le_at(&[1, 0, 0, 0], usize::MAX), None);
        assert_eq!(u16_le_at(&[1, 0], 0), Some(1));
    }
}
