//! Block compression: Snappy (raw block format) and Zstandard frames.
//!
//! Badger compresses each finished block (trailer included) with
//! `s2.EncodeSnappy` or a zstd frame, and records the choice per table in the
//! MANIFEST, not in the table. Decompression is bounded: the output may not
//! exceed `limit` bytes (the table's uncompressed size from its checksummed
//! index), so a corrupt length prefix never sizes an allocation.
//!
//! Differs from Badger: our zstd is the reference C library at the same level;
//! its frames are standard and Badger reads them, but the compressed bytes are
//! not identical to klauspost's encoder (`docs/decisions/0002-compression-bytes.md`).

use crate::error::{CorruptionKind, DecodeError};
use crate::format::CompressionType;
use std::io::Read;

/// Badger's default `ZSTDCompressionLevel`.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Compresses a block as the table's compression type demands.
pub fn compress(kind: CompressionType, data: &[u8], zstd_level: i32) -> Vec<u8> {
    match kind {
        CompressionType::None => data.to_vec(),
        CompressionType::Snappy => super::snappy::encode(data),
        CompressionType::Zstd => {
            // Compressing an in-memory slice cannot fail except on allocation.
            zstd::bulk::compress(data, zstd_level).unwrap_or_else(|_| data.to_vec())
        }
    }
}

fn bad(codec: &'static str, detail: impl ToString) -> DecodeError {
    DecodeError::new(
        0,
        CorruptionKind::BadCompression {
            codec,
            detail: detail.to_string(),
        },
    )
}

/// Snappy cannot expand its input more than this (a 3-byte copy yields at
/// most 64 bytes), so a claimed length above it is a lie.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// Decompresses a stored block, refusing output longer than `limit` (an
/// uncompressed block is returned as it is).
pub fn decompress(kind: CompressionType, data: Vec<u8>, limit: usize) -> Result<Vec<u8>, DecodeError> {
    match kind {
        CompressionType::None => Ok(data),
        CompressionType::Snappy => {
            let limit = limit.min(data.len().saturating_mul(SNAPPY_MAX_EXPANSION).saturating_add(64));
            let len = snap::raw::decompress_len(&data).map_err(|e| bad("snappy", e))?;
            if len > limit {
                return Err(DecodeError::new(
                    0,
                    CorruptionKind::OutOfRange {
                        field: "snappy decompressed length",
                        value: len as u64,
                        limit: limit as u64,
                    },
                ));
            }
            snap::raw::Decoder::new()
                .decompress_vec(&data)
                .map_err(|e| bad("snappy", e))
        }
        CompressionType::Zstd => {
            let mut out = Vec::new();
            let mut dec = zstd::stream::read::Decoder::with_buffer(&data[..]).map_err(|e| bad("zstd", e))?;
            // Bound the decoder's window (its allocation) by the output limit
            // instead of zstd's default of 128 MiB.
            let window_log = (usize::BITS - limit.max(1).leading_zeros()).clamp(10, 27);
            dec.window_log_max(window_log).map_err(|e| bad("zstd", e))?;
            let mut dec = dec.single_frame();
            let mut limited = (&mut dec).take(limit as u64 + 1);
            limited.read_to_end(&mut out).map_err(|e| bad("zstd", e))?;
            if out.len() > limit {
                return Err(DecodeError::new(
                    0,
                    CorruptionKind::OutOfRange {
                        field: "zstd decompressed length",
                        value: out.len() as u64,
                        limit: limit as u64,
                    },
                ));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..5000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        for kind in [
            CompressionType::None,
            CompressionType::Snappy,
            CompressionType::Zstd,
        ] {
            let c = compress(kind, &data, DEFAULT_ZSTD_LEVEL);
            assert_eq!(decompress(kind, c, data.len()).unwrap(), data, "{kind:?}");
        }
    }

    /// Regression (found by fuzzing): a Snappy block claiming ~4 GB made the
    /// decoder reserve it because the limit was the index's (any) size; and a
    /// 10-byte zstd frame asking for a 128 MiB window reserved 64 MiB.
    #[test]
    fn regression_claimed_sizes_are_bounded_by_the_input() {
        let mut claim = Vec::new();
        crate::format::varint::put_uvarint(&mut claim, 3_800_000_000);
        claim.extend_from_slice(&[0x00, 0x41]);
        let err = decompress(CompressionType::Snappy, claim, u32::MAX as usize).unwrap_err();
        assert!(matches!(err.kind, CorruptionKind::OutOfRange { .. }), "{err:?}");
        let frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0x09, 0x00, 0x00, 0x41];
        assert!(decompress(CompressionType::Zstd, frame, 100).is_err());
    }

    #[test]
    fn limits_and_garbage() {
        let data = vec![0u8; 10_000];
        for kind in [CompressionType::Snappy, CompressionType::Zstd] {
            let c = compress(kind, &data, DEFAULT_ZSTD_LEVEL);
            assert!(decompress(kind, c.clone(), 9_999).is_err(), "{kind:?} over limit");
            for i in 0..c.len().min(64) {
                let mut m = c.clone();
                m[i] ^= 0x55;
                let _ = decompress(kind, m, 10_000);
            }
            assert!(decompress(kind, vec![0xff; 7], 100).is_err());
        }
    }
}
