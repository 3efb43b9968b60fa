//! The stores under test, each behind [`Store`].
//!
//! Every store is opened on its own fresh directory with its crate's default
//! configuration, except for durability, which is set so that a commit that
//! returned survives a crash of the process (and, with `sync`, of the
//! machine):
//! - **brock**: Badger v4 defaults; `sync` sets `sync_writes`; a
//!   `value_threshold` in the [`Config`] sets Brock's;
//! - **fjall** (feature `fjall`): `Database::builder(dir).open()`, one
//!   keyspace with `KeyspaceCreateOptions::default` (with a
//!   `value_threshold`: plus key-value separation,
//!   `KvSeparationOptions::default()` with that `separation_threshold`),
//!   one `WriteBatch` per batch with the default durability
//!   (`PersistMode::Buffer`: the journal is written to the OS, not synced)
//!   or, with `sync`, `PersistMode::SyncData`;
//! - **redb** (feature `redb`): one `begin_write` per batch with redb's
//!   default `Durability::Immediate` (an fsync per commit) **whether or not
//!   `sync` is set**: redb's only weaker level, `Durability::None`, keeps the
//!   commit in the process's memory until a later durable commit, so it does
//!   not survive a process crash, which Brock's and fjall's unsynced
//!   commits do. redb has no key-value separation: a `value_threshold`
//!   changes nothing, and its "GC" is `Database::compact`.

pub mod brock;
#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "redb")]
pub mod redb;

use crate::workload::{Config, Result, Store};
use std::path::Path;

/// The stores this build can run, in the harness's default order.
pub const AVAILABLE: &[&str] = &[
    "brock",
    #[cfg(feature = "fjall")]
    "fjall",
    #[cfg(feature = "redb")]
    "redb",
];

/// Opens store `name` on `dir`.
pub fn open(name: &str, dir: &Path, cfg: &Config) -> Result<Box<dyn Store>> {
    match name {
        "brock" => Ok(Box::new(brock::BrockStore::open_with(brock::options(dir, cfg))?)),
        #[cfg(feature = "fjall")]
        "fjall" => Ok(Box::new(fjall::FjallStore::open_with(
            dir,
            cfg.sync,
            cfg.value_threshold,
        )?)),
        #[cfg(feature = "redb")]
        "redb" => Ok(Box::new(redb::RedbStore::open(dir)?)),
        other => Err(format!("unknown store {other:?}; this build has {}", AVAILABLE.join(", ")).into()),
    }
}
