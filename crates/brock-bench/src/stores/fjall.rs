//! fjall 3, with its default configuration.

use crate::workload::{EngineStats, KEY_LEN, Result, Settle, Settled, Store, Visitor, wait_until_quiet};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use std::path::Path;
use std::time::Instant;

/// A fjall database with one keyspace.
pub struct FjallStore {
    db: Database,
    ks: Keyspace,
    sync: bool,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").field("sync", &self.sync).finish()
    }
}

impl FjallStore {
    /// Opens (or creates) the database in `dir`; `sync` makes each batch
    /// commit with `PersistMode::SyncData`.
    pub fn open(dir: &Path, sync: bool) -> Result<Self> {
        let db = Database::builder(dir).open()?;
        let ks = db.keyspace("bench", KeyspaceCreateOptions::default)?;
        Ok(FjallStore { db, ks, sync })
    }
}

impl Store for FjallStore {
    fn name(&self) -> &'static str {
        "fjall"
    }

    fn write_batch(&mut self, batch: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let mut b = self.db.batch();
        if self.sync {
            b = b.durability(Some(PersistMode::SyncData));
        }
        for (k, v) in batch.drain(..) {
            b.insert(&self.ks, k, v);
        }
        b.commit()?;
        Ok(())
    }

    fn delete_batch(&mut self, keys: &[[u8; KEY_LEN]]) -> Result<()> {
        let mut b = self.db.batch();
        if self.sync {
            b = b.durability(Some(PersistMode::SyncData));
        }
        for k in keys {
            b.remove(&self.ks, k.to_vec());
        }
        b.commit()?;
        Ok(())
    }

    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        let snap = self.db.snapshot();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(v) = snap.get(&self.ks, k)? {
                found(pos, &v);
            }
        }
        Ok(())
    }

    fn scan(&mut self, item: Visitor<'_>) -> Result<()> {
        for guard in self.ks.iter() {
            let (k, v) = guard.into_inner()?;
            item(&k, &v)?;
        }
        Ok(())
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.ks.iter().next().is_none())
    }

    fn settle(&mut self, settle: &Settle) -> Result<Settled> {
        // Flushes and the compactions they trigger: idle once none is
        // running and no counter or size has moved for `settle.quiet`.
        let started = Instant::now();
        wait_until_quiet(settle, started, &mut || {
            let busy = self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0;
            let state = vec![
                self.db.compactions_completed() as u64,
                self.db.disk_space()?,
                self.ks.table_count() as u64,
                self.db.journal_count() as u64,
            ];
            Ok((busy, state))
        })
    }

    fn engine_stats(&self) -> EngineStats {
        EngineStats {
            compactions: Some(self.db.compactions_completed() as u64),
            ..EngineStats::default()
        }
    }

    fn compact_fully(&mut self) -> Result<Option<&'static str>> {
        self.ks.major_compact()?;
        Ok(Some("fjall Keyspace::major_compact (doc-hidden)"))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
