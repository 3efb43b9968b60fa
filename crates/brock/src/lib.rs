//! Brock: an embedded key-value store that reads and writes BadgerDB v4
//! directories byte for byte.

pub mod error;
pub mod format;

pub use error::{CorruptionKind, DecodeError, Error, Result};
