//! The value as a table stores it: `meta | user_meta | uvarint expires_at | value`.
//!
//! Badger's `y.ValueStruct`. The value runs to the end of the entry, so its
//! length is implied by the container (the next entry offset in a block). When
//! `meta` has `BIT_VALUE_POINTER`, `value` is a 12-byte [`ValuePointer`](super::ValuePointer).

use super::cursor::Cursor;
use super::varint::{put_uvarint, uvarint_len};
use crate::error::DecodeError;

/// A decoded value struct borrowing its value bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValueStruct<'a> {
    /// Badger's meta bits.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Unix seconds after which the entry is expired; 0 = never.
    pub expires_at: u64,
    /// The value, or an encoded value pointer.
    pub value: &'a [u8],
}

impl<'a> ValueStruct<'a> {
    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        2 + uvarint_len(self.expires_at) + self.value.len()
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(self.meta);
        out.push(self.user_meta);
        put_uvarint(out, self.expires_at);
        out.extend_from_slice(self.value);
    }

    /// Decodes a whole value struct: `buf` ends where the entry ends.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(buf);
        let meta = c.u8()?;
        let user_meta = c.u8()?;
        let expires_at = c.uvarint()?;
        Ok(ValueStruct {
            meta,
            user_meta,
            expires_at,
            value: c.rest(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let vs = ValueStruct {
            meta: 0x40,
            user_meta: 0x5a,
            expires_at: 300,
            value: b"hi",
        };
        let mut out = Vec::new();
        vs.encode_into(&mut out);
        assert_eq!(out, [0x40, 0x5a, 0xac, 0x02, b'h', b'i']);
        assert_eq!(out.len(), vs.encoded_len());
        assert_eq!(ValueStruct::decode(&out).unwrap(), vs);
    }

    #[test]
    fn short_input_is_an_error() {
        assert!(ValueStruct::decode(&[]).is_err());
        assert!(ValueStruct::decode(&[0, 0]).is_err());
        assert!(ValueStruct::decode(&[0, 0, 0x80]).is_err());
        assert!(ValueStruct::decode(&[0, 0, 0]).unwrap().value.is_empty());
    }
}
