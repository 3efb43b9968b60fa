//! Log files shared by `.mem` WALs and `.vlog` value logs: reading and replay.
//!
//! Badger's `logFile` in `memtable.go`/`value.go`. A log is the 20-byte
//! [`LogFileHeader`](crate::format::LogFileHeader) followed by entries
//! ([`crate::format::entry`]). [`LogReader`] walks entries and stops at the
//! first that is zero, torn or fails its CRC; [`TxnReplay`] groups them into
//! complete transactions by Badger's framing and reports where the valid log
//! ends, so a torn tail can be cut back to the last complete transaction.
//!
//! Contract: reading never allocates by an unchecked length: an entry's
//! length is checked against the bytes left in the file first. Encrypted logs
//! are refused with `EncryptionNotSupported` until encryption lands.

mod reader;
mod replay;
mod writer;

pub use reader::{LogEntry, LogReader};
pub use replay::{TxnReplay, replay_file};
pub use writer::{LogWriter, TxnEntry, encode_txn};
