//! KEYREGISTRY bytes: the store of encryption data keys.
//!
//! Badger's `key_registry.go`:
//!
//! ```text
//! IV (16 B) | sanity text "Hello Badger" (12 B; AES-CTR under the master key when one is set)
//! record*:  u32 BE payload length | u32 BE crc32c(payload) | payload (DataKey protobuf)
//! ```
//!
//! The file exists even without encryption; then the sanity text is plain and
//! there are no records.

use super::checksum::crc32c;
use super::cursor::u32_be_at;
use super::proto::{self, DataKey};
use crate::error::{CorruptionKind, DecodeError};

/// The sanity text Badger stores after the IV.
pub const SANITY_TEXT: &[u8; 12] = b"Hello Badger";
/// Bytes before the first record.
pub const KEY_REGISTRY_HEADER_LEN: usize = 16 + SANITY_TEXT.len();

/// The parts of a key registry file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRegistryFile {
    /// The IV used for the sanity text.
    pub iv: [u8; 16],
    /// The 12 sanity bytes as stored (plain when no master key is set).
    pub sanity: [u8; 12],
    /// The data keys as stored (their `data` encrypted under the master key).
    pub data_keys: Vec<DataKey>,
}

impl KeyRegistryFile {
    /// A registry without encryption, with the given IV.
    pub fn plaintext(iv: [u8; 16]) -> Self {
        KeyRegistryFile {
            iv,
            sanity: *SANITY_TEXT,
            data_keys: Vec::new(),
        }
    }

    /// True when the sanity text is stored in plain form (no master key).
    pub fn is_plaintext(&self) -> bool {
        &self.sanity == SANITY_TEXT
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEY_REGISTRY_HEADER_LEN);
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&self.sanity);
        for dk in &self.data_keys {
            let payload = proto::encode(dk);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.extend_from_slice(&crc32c(&payload).to_be_bytes());
            out.extend_from_slice(&payload);
        }
        out
    }

    /// Decodes a whole file. Unlike Badger, a record cut short is reported as
    /// corruption rather than read past: data keys are written synchronously,
    /// so a torn record means the file was damaged.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        if buf.len() < KEY_REGISTRY_HEADER_LEN {
            return Err(DecodeError::truncated(0, KEY_REGISTRY_HEADER_LEN, buf.len()));
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&buf[..16]);
        let mut sanity = [0u8; 12];
        sanity.copy_from_slice(&buf[16..KEY_REGISTRY_HEADER_LEN]);
        let mut data_keys = Vec::new();
        let mut pos = KEY_REGISTRY_HEADER_LEN;
        while pos < buf.len() {
            let (Some(len), Some(stored)) = (u32_be_at(buf, pos), u32_be_at(buf, pos + 4)) else {
                return Err(DecodeError::truncated(pos, 8, buf.len() - pos));
            };
            let start = pos + 8;
            let Some(payload) = buf.get(start..start.saturating_add(len as usize)) else {
                return Err(DecodeError::truncated(pos, 8 + len as usize, buf.len() - pos));
            };
            let computed = crc32c(payload);
            if computed != stored {
                return Err(DecodeError::new(
                    pos,
                    CorruptionKind::ChecksumMismatch {
                        stored: u64::from(stored),
                        computed: u64::from(computed),
                    },
                ));
            }
            data_keys.push(proto::decode(payload, "DataKey").map_err(|e| e.at(start as u64))?);
            pos = start + len as usize;
        }
        Ok(KeyRegistryFile {
            iv,
            sanity,
            data_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_golden_bytes() {
        let f = KeyRegistryFile::plaintext([7; 16]);
        let mut want = vec![7u8; 16];
        want.extend_from_slice(b"Hello Badger");
        assert_eq!(f.encode(), want);
        let back = KeyRegistryFile::decode(&want).unwrap();
        assert!(back.is_plaintext());
        assert_eq!(back, f);
    }

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let mut f = KeyRegistryFile::plaintext([1; 16]);
        f.data_keys.push(DataKey {
            key_id: 1,
            data: vec![9; 16],
            iv: vec![2; 16],
            created_at: 5,
        });
        let enc = f.encode();
        assert_eq!(KeyRegistryFile::decode(&enc).unwrap(), f);
        for cut in KEY_REGISTRY_HEADER_LEN + 1..enc.len() {
            assert!(KeyRegistryFile::decode(&enc[..cut]).is_err());
        }
        let mut bad = enc.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(KeyRegistryFile::decode(&bad).is_err());
    }
}
