//! Brock: an embedded key-value store that reads and writes BadgerDB v4
//! directories byte for byte.
//!
//! Brock implements Badger's design (an LSM tree with MVCC transactions and
//! serializable conflict detection) in Rust, keeping Badger's on-disk formats
//! so a directory written by Go Badger opens here and the other way round.
//!
//! ```
//! # fn main() -> brock::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! use brock::{Db, Entry, IterOptions, Options};
//! use std::time::Duration;
//!
//! let db = Db::open(Options::new(dir.path()))?;
//! db.update(|txn| txn.set(&b"answer"[..], &b"42"[..]))?;
//! db.update(|txn| {
//!     txn.set_entry(Entry::new(&b"session/1"[..], &b"alice"[..]).with_ttl(Duration::from_secs(60)).with_user_meta(7))
//! })?;
//!
//! let value = db.view(|txn| txn.get(b"answer")?.map(|item| item.value()).transpose())?;
//! assert_eq!(value.as_deref(), Some(&b"42"[..]));
//!
//! let mut txn = db.begin_read();
//! for item in txn.iter(IterOptions::default().prefix(b"session/"))? {
//!     let item = item?;
//!     assert_eq!(item.user_meta(), 7);
//! }
//! drop(txn);
//! db.close()?;
//! # Ok(())
//! # }
//! ```
//!
//! Layers (see `ARCHITECTURE.md`): [`format`] owns every byte; [`vfs`] every
//! file access; [`table`], [`wal`], [`memtable`], [`levels`] and [`vlog`] the
//! structures; [`txn`] and [`db`] the engine; [`inspect`] an offline,
//! read-only view used by `brock dump` and `brock info`.

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

pub use db::{Db, DbIterator, Item, IterOptions, Stats};
pub use error::{CorruptionKind, DecodeError, Error, Result};
pub use format::CompressionType;
pub use options::Options;
pub use txn::{Entry, PendingCommit, Txn, WriteBatch};
