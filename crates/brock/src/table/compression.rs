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

/// Decompresses a stored block, refusing output longer than `limit`.
pub fn decompress(kind: CompressionType, data: Vec<u8>, limit: usize) -> Result<Vec<u8>, DecodeError> {
    match kind {
        CompressionType::None => Ok(data),
        CompressionType::Snappy => {
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
            let dec = zstd::stream::read::Decoder::with_buffer(&data[..]).map_err(|e| bad("zstd", e))?;
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
