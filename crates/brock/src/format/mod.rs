//! Pure encoding and decoding of every byte Badger v4 puts on disk.
//!
//! Contract: no I/O, no locks, no threads; uses only `crate::error`. Decoders
//! take a byte slice and return a value or a [`DecodeError`](crate::error::DecodeError)
//! with the offset inside that slice; they never panic and never allocate by a
//! length read from the data before checking it against the slice. Encoders
//! produce exactly the bytes Go Badger v4 writes. The byte diagrams are in
//! `docs/format.md`; each submodule names the Badger file it mirrors.
//!
//! Only this module and the block and record codecs next to the readers call
//! `to_le_bytes`/`from_be_bytes`.

pub mod bloom;
pub mod checksum;
pub mod cursor;
pub mod discard;
pub mod entry;
pub mod key;
pub mod key_registry;
pub mod log_header;
pub mod manifest;
pub mod meta;
pub mod proto;
pub mod table_index;
pub mod value_pointer;
pub mod value_struct;
pub mod varint;

pub use entry::{Decoded, EntryHeader, EntryRef, LogEnd};
pub use key::{compare_keys, key_with_version, user_key, version};
pub use log_header::{LOG_HEADER_LEN, LogFileHeader};
pub use table_index::{BlockHandle, TableIndex};
pub use value_pointer::{VALUE_POINTER_LEN, ValuePointer};
pub use value_struct::ValueStruct;

/// How a table's blocks are compressed. Stored per table in the MANIFEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CompressionType {
    /// Blocks stored as built.
    None,
    /// Snappy raw (block) format; Badger's default.
    #[default]
    Snappy,
    /// A Zstandard frame per block.
    Zstd,
}

impl CompressionType {
    /// The number stored in `ManifestChange.compression`.
    pub fn to_u32(self) -> u32 {
        match self {
            CompressionType::None => 0,
            CompressionType::Snappy => 1,
            CompressionType::Zstd => 2,
        }
    }

    /// The type for a stored number, if it is one Badger defines.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(CompressionType::None),
            1 => Some(CompressionType::Snappy),
            2 => Some(CompressionType::Zstd),
            _ => None,
        }
    }

    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::None => "none",
            CompressionType::Snappy => "snappy",
            CompressionType::Zstd => "zstd",
        }
    }
}
