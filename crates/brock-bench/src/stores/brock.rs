//! Brock through its public API.

use crate::workload::{KEY_LEN, Result, Store, Visitor};
use brock::{Db, IterOptions, Options};
use std::path::Path;

/// A Brock database with Badger v4's default options.
#[derive(Debug)]
pub struct BrockStore {
    db: Db,
}

impl BrockStore {
    /// Opens (or creates) the database in `dir`; `sync` makes each commit
    /// wait for an fsync of the WAL.
    pub fn open(dir: &Path, sync: bool) -> Result<Self> {
        Self::open_with(Options::new(dir).with_sync_writes(sync))
    }

    /// Opens with the given options.
    pub fn open_with(opts: Options) -> Result<Self> {
        Ok(BrockStore { db: Db::open(opts)? })
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }
}

impl Store for BrockStore {
    fn name(&self) -> &'static str {
        "brock"
    }

    fn write_batch(&mut self, batch: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let mut txn = self.db.begin_write();
        for (k, v) in batch.drain(..) {
            txn.set(k, v)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        let mut txn = self.db.begin_read();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(item) = txn.get(k)? {
                found(pos, item.value_ref());
            }
        }
        Ok(())
    }

    fn scan(&mut self, item: Visitor<'_>) -> Result<()> {
        let mut txn = self.db.begin_read();
        for it in txn.iter(IterOptions::default())? {
            let it = it?;
            item(it.key(), it.value_ref())?;
        }
        Ok(())
    }

    fn is_empty(&mut self) -> Result<bool> {
        let mut txn = self.db.begin_read();
        let mut it = txn.iter(IterOptions::default())?;
        Ok(it.next().transpose()?.is_none())
    }

    fn settle(&mut self) -> Result<()> {
        self.db.wait_for_flushes()?;
        Ok(())
    }

    fn stall_secs(&self) -> Option<f64> {
        Some(self.db.stats().stall_nanos as f64 / 1e9)
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.close()?;
        Ok(())
    }
}
