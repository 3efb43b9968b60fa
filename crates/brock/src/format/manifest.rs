//! MANIFEST bytes: an 8-byte header, then checksummed change-set records.
//!
//! Badger's `manifest.go`:
//!
//! ```text
//! header:  "Bdgr" | u16 BE external magic | u16 BE version (8)
//! record:  u32 BE payload length | u32 BE crc32c(payload) | payload (ManifestChangeSet)
//! ```
//!
//! [`decode_record`] distinguishes a complete record, a clean end, and a torn
//! tail (a record cut short: the writer died mid-append, so the tail is
//! truncatable); a length beyond the data or a CRC mismatch over a complete
//! record is corruption, as in Badger.

use super::checksum::crc32c;
use super::cursor::u32_be_at;
use super::proto::{self, ManifestChangeSet};
use crate::error::{CorruptionKind, DecodeError};

/// The four magic bytes.
pub const MANIFEST_MAGIC: &[u8; 4] = b"Bdgr";
/// The MANIFEST format version Badger v4 writes.
pub const MANIFEST_VERSION: u16 = 8;
/// Header length.
pub const MANIFEST_HEADER_LEN: usize = 8;

/// The header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestHeader {
    /// The application's external magic (`WithExternalMagic`), 0 by default.
    pub external_magic: u16,
    /// The format version.
    pub version: u16,
}

impl ManifestHeader {
    /// The header Badger writes.
    pub fn new(external_magic: u16) -> Self {
        ManifestHeader {
            external_magic,
            version: MANIFEST_VERSION,
        }
    }

    /// The 8 bytes.
    pub fn encode(&self) -> [u8; MANIFEST_HEADER_LEN] {
        let mut out = [0u8; MANIFEST_HEADER_LEN];
        out[..4].copy_from_slice(MANIFEST_MAGIC);
        out[4..6].copy_from_slice(&self.external_magic.to_be_bytes());
        out[6..8].copy_from_slice(&self.version.to_be_bytes());
        out
    }

    /// Splits the header fields; `Err(found)` carries the first four bytes when
    /// the magic is wrong, `Ok(None)` means the buffer is too short.
    pub fn decode(buf: &[u8]) -> Result<Option<Self>, Vec<u8>> {
        let Some(h) = buf.get(..MANIFEST_HEADER_LEN) else {
            return Ok(None);
        };
        if &h[..4] != MANIFEST_MAGIC {
            return Err(h[..4].to_vec());
        }
        Ok(Some(ManifestHeader {
            external_magic: u16::from_be_bytes([h[4], h[5]]),
            version: u16::from_be_bytes([h[6], h[7]]),
        }))
    }
}

/// Appends one record holding `set` to `out`.
pub fn encode_record(out: &mut Vec<u8>, set: &ManifestChangeSet) {
    let payload = proto::encode(set);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
}

/// What [`decode_record`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A change set and the bytes its record took.
    Complete(ManifestChangeSet, usize),
    /// No bytes left: a clean end.
    End,
    /// A record cut short (a torn append): replay ends, the tail may be cut.
    TornTail,
}

/// Decodes the record at the start of `buf`. A length field above `file_len`
/// (the whole file's size) cannot come from a torn append: it is corruption.
pub fn decode_record(buf: &[u8], file_len: u64) -> Result<Record, DecodeError> {
    if buf.is_empty() {
        return Ok(Record::End);
    }
    let (Some(len), Some(stored)) = (u32_be_at(buf, 0), u32_be_at(buf, 4)) else {
        return Ok(Record::TornTail);
    };
    if u64::from(len) > file_len {
        return Err(DecodeError::new(
            0,
            CorruptionKind::OutOfRange {
                field: "manifest record length",
                value: u64::from(len),
                limit: file_len,
            },
        ));
    }
    let len = len as usize;
    let Some(payload) = buf.get(8..8usize.saturating_add(len)) else {
        return Ok(Record::TornTail);
    };
    let computed = crc32c(payload);
    if computed != stored {
        return Err(DecodeError::new(
            0,
            CorruptionKind::ChecksumMismatch {
                stored: u64::from(stored),
                computed: u64::from(computed),
            },
        ));
    }
    let set = proto::decode::<ManifestChangeSet>(payload, "ManifestChangeSet").map_err(|e| e.at(8))?;
    Ok(Record::Complete(set, 8 + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::proto::ManifestChange;

    #[test]
    fn header_golden_bytes() {
        assert_eq!(ManifestHeader::new(0).encode(), *b"Bdgr\x00\x00\x00\x08");
        assert_eq!(
            ManifestHeader::decode(b"Bdgr\x01\x02\x00\x08").unwrap(),
            Some(ManifestHeader {
                external_magic: 0x0102,
                version: 8
            })
        );
        assert_eq!(ManifestHeader::decode(b"Bdgx\0\0\0\x08"), Err(b"Bdgx".to_vec()));
        assert_eq!(ManifestHeader::decode(b"Bdg"), Ok(None));
    }

    #[test]
    fn record_golden_bytes_and_torn_tails() {
        let set = ManifestChangeSet {
            changes: vec![ManifestChange {
                id: 1,
                compression: 1,
                ..Default::default()
            }],
        };
        let mut out = Vec::new();
        encode_record(&mut out, &set);
        let payload = [0x0a, 0x04, 0x08, 0x01, 0x30, 0x01];
        let mut want = vec![0, 0, 0, 6];
        want.extend_from_slice(&crc32c(&payload).to_be_bytes());
        want.extend_from_slice(&payload);
        assert_eq!(out, want);
        assert_eq!(
            decode_record(&out, 1000).unwrap(),
            Record::Complete(set, out.len())
        );
        for cut in 1..out.len() {
            assert_eq!(
                decode_record(&out[..cut], 1000).unwrap(),
                Record::TornTail,
                "cut at {cut}"
            );
        }
        assert_eq!(decode_record(&[], 1000).unwrap(), Record::End);
        let mut bad = out.clone();
        bad[10] ^= 1;
        assert!(matches!(
            decode_record(&bad, 1000).unwrap_err().kind,
            CorruptionKind::ChecksumMismatch { .. }
        ));
        let huge = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            decode_record(&huge, 8).unwrap_err().kind,
            CorruptionKind::OutOfRange { .. }
        ));
    }
}
