//! The log entry shared by `.mem` write-ahead logs and `.vlog` value logs.
//!
//! Badger's `structs.go` header and `memtable.go` `encodeEntry`:
//!
//! ```text
//! entry:  meta u8 | user_meta u8 | uvarint key_len | uvarint value_len | uvarint expires_at
//!         | key (user key ‖ version) | value | u32 BE crc32c(everything before it)
//! ```
//!
//! The header is at most 22 bytes. A log ends at the first entry that is
//! zero (key length 0), cut short, has a key length above 65,536, or fails its
//! CRC; [`decode_entry`] reports which, so replay can stop there and truncate.
//! Encrypted logs (a non-zero key id in the file header) encrypt key ‖ value;
//! this module sees the bytes as stored.

use super::checksum::crc32c;
use super::varint::{MAX_VARINT_LEN, decode_uvarint, put_uvarint};

/// The most bytes a header takes (2 + 5 + 5 + 10).
pub const MAX_HEADER_LEN: usize = 22;

/// Bytes of the trailing CRC.
pub const CRC_LEN: usize = 4;

/// Badger stops a log at a key longer than this.
pub const MAX_LOG_KEY_LEN: u64 = 1 << 16;

/// The decoded header of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EntryHeader {
    /// Badger's meta bits.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Length of the key (user key + 8-byte version).
    pub key_len: u32,
    /// Length of the value (or 12 for a value pointer).
    pub value_len: u32,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
}

impl EntryHeader {
    /// Appends the encoded header to `out`; returns its length.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        out.push(self.meta);
        out.push(self.user_meta);
        put_uvarint(out, u64::from(self.key_len));
        put_uvarint(out, u64::from(self.value_len));
        put_uvarint(out, self.expires_at);
        out.len() - start
    }
}

/// One log entry as stored, borrowing from the buffer it was decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Badger's meta bits.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
    /// The internal key (user key ‖ version).
    pub key: &'a [u8],
    /// The value, or an encoded value pointer.
    pub value: &'a [u8],
}

/// Appends a whole entry (header, key, value, CRC) to `out`; returns its length.
pub fn encode_entry(out: &mut Vec<u8>, e: &EntryRef<'_>) -> usize {
    let start = out.len();
    EntryHeader {
        meta: e.meta,
        user_meta: e.user_meta,
        key_len: e.key.len() as u32,
        value_len: e.value.len() as u32,
        expires_at: e.expires_at,
    }
    .encode_into(out);
    out.extend_from_slice(e.key);
    out.extend_from_slice(e.value);
    let crc = crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out.len() - start
}

/// Why a log stops at some offset. None of these is an error: each marks the
/// valid end of the log, as Badger's replay treats them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEnd {
    /// The buffer ended exactly at an entry boundary.
    Eof,
    /// A zeroed entry: the space past the last write.
    Zero,
    /// An entry cut short by the end of the data.
    Truncated,
    /// A varint in the header is malformed.
    BadHeader,
    /// The key length is above [`MAX_LOG_KEY_LEN`].
    KeyTooLong,
    /// The CRC does not match.
    BadChecksum,
}

/// The outcome of decoding at one position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// An entry and its encoded length.
    Entry(EntryRef<'a>, usize),
    /// The log ends here.
    End(LogEnd),
}

/// Decodes only the header at the start of `buf`: the header and its length.
/// `None` if `buf` ends inside the header or a varint is malformed.
pub fn decode_header(buf: &[u8]) -> Result<(EntryHeader, usize), LogEnd> {
    if buf.len() < 2 {
        return Err(LogEnd::Truncated);
    }
    let mut pos = 2;
    let mut next = |max_len: usize| -> Result<u64, LogEnd> {
        let window = &buf[pos..buf.len().min(pos + max_len)];
        match decode_uvarint(window) {
            Some((v, n)) => {
                pos += n;
                Ok(v)
            }
            None if window.len() < max_len && !window.iter().any(|&b| b < 0x80) => Err(LogEnd::Truncated),
            None => Err(LogEnd::BadHeader),
        }
    };
    let key_len = next(5)?;
    let value_len = next(5)?;
    let expires_at = next(MAX_VARINT_LEN)?;
    let (Ok(key_len), Ok(value_len)) = (u32::try_from(key_len), u32::try_from(value_len)) else {
        return Err(LogEnd::BadHeader);
    };
    Ok((
        EntryHeader {
            meta: buf[0],
            user_meta: buf[1],
            key_len,
            value_len,
            expires_at,
        },
        pos,
    ))
}

/// Decodes the entry at the start of `buf`, or says why the log ends there.
pub fn decode_entry(buf: &[u8]) -> Decoded<'_> {
    if buf.is_empty() {
        return Decoded::End(LogEnd::Eof);
    }
    let (h, hlen) = match decode_header(buf) {
        Ok(x) => x,
        Err(end) => return Decoded::End(end),
    };
    if h.key_len == 0 {
        return Decoded::End(LogEnd::Zero);
    }
    if u64::from(h.key_len) > MAX_LOG_KEY_LEN {
        return Decoded::End(LogEnd::KeyTooLong);
    }
    let total = hlen as u64 + u64::from(h.key_len) + u64::from(h.value_len) + CRC_LEN as u64;
    if total > buf.len() as u64 {
        return Decoded::End(LogEnd::Truncated);
    }
    let total = total as usize;
    let body_end = total - CRC_LEN;
    let stored = u32::from_be_bytes([
        buf[body_end],
        buf[body_end + 1],
        buf[body_end + 2],
        buf[body_end + 3],
    ]);
    let computed = crc32c(&buf[..body_end]);
    if stored != computed {
        return Decoded::End(LogEnd::BadChecksum);
    }
    let key_end = hlen + h.key_len as usize;
    Decoded::Entry(
        EntryRef {
            meta: h.meta,
            user_meta: h.user_meta,
            expires_at: h.expires_at,
            key: &buf[hlen..key_end],
            value: &buf[key_end..body_end],
        },
        total,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_bytes() {
        let e = EntryRef {
            meta: 0x40,
            user_meta: 0x5a,
            expires_at: 0,
            key: b"k\xff\xff\xff\xff\xff\xff\xff\xfe",
            value: b"v",
        };
        let mut out = Vec::new();
        let n = encode_entry(&mut out, &e);
        assert_eq!(n, out.len());
        let mut want = vec![0x40, 0x5a, 0x09, 0x01, 0x00];
        want.extend_from_slice(b"k\xff\xff\xff\xff\xff\xff\xff\xfe");
        want.push(b'v');
        let crc = crc32c(&want);
        want.extend_from_slice(&crc.to_be_bytes());
        assert_eq!(out, want);
        assert_eq!(decode_entry(&out), Decoded::Entry(e, n));
    }

    #[test]
    fn ends_of_log() {
        assert_eq!(decode_entry(&[]), Decoded::End(LogEnd::Eof));
        assert_eq!(decode_entry(&[0u8; 22]), Decoded::End(LogEnd::Zero));
        assert_eq!(decode_entry(&[0, 0]), Decoded::End(LogEnd::Truncated));
        assert_eq!(decode_entry(&[0, 0, 0x80]), Decoded::End(LogEnd::Truncated));
        let mut long = vec![0, 0];
        put_uvarint(&mut long, MAX_LOG_KEY_LEN + 1);
        long.extend_from_slice(&[0, 0]);
        assert_eq!(decode_entry(&long), Decoded::End(LogEnd::KeyTooLong));
        let mut out = Vec::new();
        encode_entry(
            &mut out,
            &EntryRef {
                meta: 0,
                user_meta: 0,
                expires_at: 0,
                key: b"abcdefghij",
                value: b"",
            },
        );
        *out.last_mut().unwrap() ^= 1;
        assert_eq!(decode_entry(&out), Decoded::End(LogEnd::BadChecksum));
        assert_eq!(
            decode_entry(&out[..out.len() - 1]),
            Decoded::End(LogEnd::Truncated)
        );
    }

    proptest! {
        #[test]
        fn round_trip(meta: u8, user_meta: u8, expires_at: u64,
                      key in proptest::collection::vec(any::<u8>(), 1..40),
                      value in proptest::collection::vec(any::<u8>(), 0..100)) {
            let e = EntryRef { meta, user_meta, expires_at, key: &key, value: &value };
            let mut out = Vec::new();
            let n = encode_entry(&mut out, &e);
            prop_assert!(n - key.len() - value.len() - CRC_LEN <= MAX_HEADER_LEN);
            prop_assert_eq!(decode_entry(&out), Decoded::Entry(e, n));
            // Every strict prefix is a clean end, never an entry.
            for cut in 0..n {
                prop_assert!(matches!(decode_entry(&out[..cut]), Decoded::End(_)));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Decoded::Entry(_, n) = decode_entry(&buf) {
                prop_assert!(n <= buf.len());
            }
        }
    }
}
