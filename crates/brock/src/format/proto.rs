//! Badger's protobuf messages (`pb/badgerpb4.proto`), written by hand with
//! `prost` derives so the build needs no `protoc`.
//!
//! Field numbers and types follow the `.proto` exactly; proto3 omits default
//! values and writes fields in number order, as Go's marshaller does, so the
//! encodings are byte-identical (pinned by golden tests below and by the
//! MANIFEST fixtures).

#![allow(missing_docs, reason = "field meanings are documented in docs/format.md")]

use crate::error::{CorruptionKind, DecodeError};

/// One table added to or removed from the tree.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ManifestChange {
    /// Table id (`NNNNNN.sst`).
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// [`ManifestOp`] as an integer.
    #[prost(int32, tag = "2")]
    pub op: i32,
    /// Level of a created table.
    #[prost(uint32, tag = "3")]
    pub level: u32,
    /// Data-key id the table is encrypted with; 0 = plaintext.
    #[prost(uint64, tag = "4")]
    pub key_id: u64,
    /// Encryption algorithm; 0 = AES (the only one).
    #[prost(int32, tag = "5")]
    pub encryption_algo: i32,
    /// Compression of the table's blocks (see `CompressionType`).
    #[prost(uint32, tag = "6")]
    pub compression: u32,
}

/// `ManifestChange.Operation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestOp {
    Create = 0,
    Delete = 1,
}

impl ManifestChange {
    /// The operation, if it is one Badger defines.
    pub fn operation(&self) -> Option<ManifestOp> {
        match self.op {
            0 => Some(ManifestOp::Create),
            1 => Some(ManifestOp::Delete),
            _ => None,
        }
    }
}

/// Changes applied to the MANIFEST atomically.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct ManifestChangeSet {
    #[prost(message, repeated, tag = "1")]
    pub changes: Vec<ManifestChange>,
}

/// A checksum with its algorithm.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Checksum {
    /// 0 = CRC32C, 1 = XXHash64.
    #[prost(int32, tag = "1")]
    pub algo: i32,
    #[prost(uint64, tag = "2")]
    pub sum: u64,
}

/// An encryption data key as stored in KEYREGISTRY.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DataKey {
    #[prost(uint64, tag = "1")]
    pub key_id: u64,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub iv: Vec<u8>,
    #[prost(int64, tag = "4")]
    pub created_at: i64,
}

/// One key-value version in a backup or stream.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Kv {
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub user_meta: Vec<u8>,
    #[prost(uint64, tag = "4")]
    pub version: u64,
    #[prost(uint64, tag = "5")]
    pub expires_at: u64,
    #[prost(bytes = "vec", tag = "6")]
    pub meta: Vec<u8>,
    #[prost(uint32, tag = "10")]
    pub stream_id: u32,
    #[prost(bool, tag = "11")]
    pub stream_done: bool,
}

/// A batch of [`Kv`]s.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct KvList {
    #[prost(message, repeated, tag = "1")]
    pub kv: Vec<Kv>,
    #[prost(uint64, tag = "10")]
    pub alloc_ref: u64,
}

/// Encodes any message to a vector.
pub fn encode<M: prost::Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

/// Decodes a message, naming it in the error.
pub fn decode<M: prost::Message + Default>(buf: &[u8], name: &'static str) -> Result<M, DecodeError> {
    M::decode(buf).map_err(|e| {
        DecodeError::new(
            0,
            CorruptionKind::BadProtobuf {
                message: name,
                detail: e.to_string(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_change_golden_bytes() {
        // CREATE table 1 at level 0, Snappy: default fields are omitted.
        let cs = ManifestChangeSet {
            changes: vec![ManifestChange {
                id: 1,
                op: 0,
                level: 0,
                key_id: 0,
                encryption_algo: 0,
                compression: 1,
            }],
        };
        let bytes = encode(&cs);
        assert_eq!(bytes, [0x0a, 0x04, 0x08, 0x01, 0x30, 0x01]);
        assert_eq!(
            decode::<ManifestChangeSet>(&bytes, "ManifestChangeSet").unwrap(),
            cs
        );
        // DELETE of table 300 at level 6.
        let del = ManifestChange {
            id: 300,
            op: 1,
            level: 6,
            ..Default::default()
        };
        assert_eq!(encode(&del), [0x08, 0xac, 0x02, 0x10, 0x01, 0x18, 0x06]);
    }

    #[test]
    fn checksum_golden_bytes() {
        let c = Checksum { algo: 0, sum: 0x1234 };
        assert_eq!(encode(&c), [0x10, 0xb4, 0x24]);
        let x = Checksum { algo: 1, sum: 1 };
        assert_eq!(encode(&x), [0x08, 0x01, 0x10, 0x01]);
    }

    #[test]
    fn kv_round_trip() {
        let kv = KvList {
            kv: vec![Kv {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                user_meta: vec![7],
                version: 9,
                expires_at: 0,
                meta: vec![1],
                stream_id: 3,
                stream_done: true,
            }],
            alloc_ref: 0,
        };
        let b = encode(&kv);
        assert_eq!(decode::<KvList>(&b, "KVList").unwrap(), kv);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode::<ManifestChangeSet>(&[0x0a, 0xff], "ManifestChangeSet").is_err());
        assert!(decode::<Checksum>(&[0xff; 12], "Checksum").is_err());
    }
}
