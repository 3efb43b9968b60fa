//! Brock: an embedded key-value store that reads and writes BadgerDB v4
//! directories byte for byte.

pub mod crypto;
pub mod discard;
pub mod error;
pub mod format;
pub mod inspect;
pub mod iterator;
pub mod levels;
pub mod memtable;
pub mod options;
pub mod table;
pub mod vfs;
pub mod vlog;
pub mod wal;

pub use error::{CorruptionKind, DecodeError, Error, Result};
