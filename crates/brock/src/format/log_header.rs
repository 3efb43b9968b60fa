//! The 20-byte header at the start of every `.mem` and `.vlog` file.
//!
//! `u64 BE key_id | 12-byte base IV`. A key id of 0 means the file is
//! plaintext; otherwise entries' key ‖ value are AES-CTR encrypted with the
//! data key of that id and IV = base IV ‖ u32 BE entry offset. Badger fills the
//! IV with random bytes even for plaintext files.

use super::cursor::Cursor;
use crate::error::DecodeError;

/// Bytes of the header; the first entry starts here.
pub const LOG_HEADER_LEN: usize = 20;

/// A decoded log-file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogFileHeader {
    /// The data-key id; 0 = not encrypted.
    pub key_id: u64,
    /// The base IV for entry encryption.
    pub base_iv: [u8; 12],
}

impl LogFileHeader {
    /// The 20 bytes.
    pub fn encode(&self) -> [u8; LOG_HEADER_LEN] {
        let mut out = [0u8; LOG_HEADER_LEN];
        out[..8].copy_from_slice(&self.key_id.to_be_bytes());
        out[8..].copy_from_slice(&self.base_iv);
        out
    }

    /// Decodes the first 20 bytes of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut c = Cursor::new(buf);
        let key_id = c.u64_be()?;
        let base_iv = c.array::<12>()?;
        Ok(LogFileHeader { key_id, base_iv })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        let h = LogFileHeader {
            key_id: 3,
            base_iv: [0xab; 12],
        };
        let mut want = vec![0, 0, 0, 0, 0, 0, 0, 3];
        want.extend_from_slice(&[0xab; 12]);
        assert_eq!(h.encode().to_vec(), want);
        assert_eq!(LogFileHeader::decode(&want).unwrap(), h);
        assert!(LogFileHeader::decode(&want[..19]).is_err());
    }
}
