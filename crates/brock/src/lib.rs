//! Brock: an embedded key-value store that reads and writes BadgerDB v4
//! directories byte for byte.

pub mod crypto;
pub mod db;
pub mod discard;
pub mod error;
pub mod format;
pub mod inspect;
pub mod iterator;
pub mod levels;
pub mod memtable;
pub mod options;
pub mod table;
pub mod txn;
pub mod vfs;
pub mod vlog;
pub mod wal;

pub use db::{Db, DbIterator, IterOptions, Item, Stats};
pub use error::{CorruptionKind, DecodeError, Error, Result};
pub use format::CompressionType;
pub use options::Options;
pub use txn::{Entry, Txn};
