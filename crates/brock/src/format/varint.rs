//! Unsigned LEB128 varints exactly as Go's `encoding/binary` writes and reads them.
//!
//! Badger uses `binary.PutUvarint` for the log entry header and the table's
//! value struct. Go's reader rejects a value longer than 10 bytes and a 10th
//! byte above 1 (overflow); we do the same so that every byte string has one
//! meaning.

/// The most bytes a u64 takes.
pub const MAX_VARINT_LEN: usize = 10;

/// Appends `v` to `out` and returns the number of bytes written.
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) -> usize {
    let start = out.len();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out.len() - start
}

/// The encoded length of `v`.
pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Decodes a varint at the start of `buf`: the value and the bytes it took,
/// or `None` when `buf` ends first or the value overflows a u64.
pub fn decode_uvarint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut x: u64 = 0;
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate() {
        if i == MAX_VARINT_LEN {
            return None;
        }
        if b < 0x80 {
            if i == MAX_VARINT_LEN - 1 && b > 1 {
                return None;
            }
            return Some((x | (u64::from(b) << shift), i + 1));
        }
        x |= u64::from(b & 0x7f) << shift;
        shift += 7;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_bytes() {
        let mut out = Vec::new();
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, 127);
        put_uvarint(&mut out, 128);
        put_uvarint(&mut out, 4_102_444_800);
        assert_eq!(out, [0x00, 0x7f, 0x80, 0x01, 0x80, 0xae, 0x99, 0xa4, 0x0f]);
        let mut max = Vec::new();
        put_uvarint(&mut max, u64::MAX);
        assert_eq!(max, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    }

    #[test]
    fn rejects_overflow_and_truncation() {
        assert_eq!(decode_uvarint(&[0x80]), None);
        assert_eq!(decode_uvarint(&[]), None);
        assert_eq!(
            decode_uvarint(&[0xff; 9].iter().copied().chain([2]).collect::<Vec<_>>()),
            None
        );
        assert_eq!(decode_uvarint(&[0xff; 11]), None);
    }

    proptest! {
        #[test]
        fn round_trip(v: u64) {
            let mut out = Vec::new();
            let n = put_uvarint(&mut out, v);
            prop_assert_eq!(n, uvarint_len(v));
            prop_assert_eq!(decode_uvarint(&out), Some((v, n)));
        }

        #[test]
        fn never_panics(buf in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Some((_, n)) = decode_uvarint(&buf) {
                prop_assert!(n <= buf.len());
            }
        }
    }
}
