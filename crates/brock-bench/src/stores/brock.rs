//! Brock through its public API.

use crate::workload::{EngineStats, KEY_LEN, Result, Settle, Settled, Store, Visitor, wait_until_quiet};
use brock::{Db, IterOptions, Options};
use std::path::Path;
use std::time::Instant;

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

    fn delete_batch(&mut self, keys: &[[u8; KEY_LEN]]) -> Result<()> {
        let mut txn = self.db.begin_write();
        for k in keys {
            txn.delete(k.to_vec())?;
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

    fn settle(&mut self, settle: &Settle) -> Result<Settled> {
        // The memtables waiting to flush, then the compactions: idle once
        // no counter or level size has moved for `settle.quiet`.
        let started = Instant::now();
        self.db.wait_for_flushes()?;
        wait_until_quiet(settle, started, &mut || {
            let s = self.db.stats();
            let mut state = vec![s.flushes, s.compactions, s.bytes_written];
            state.extend(s.bytes_per_level);
            state.extend(s.tables_per_level.iter().map(|&t| t as u64));
            Ok((s.immutable_memtables > 0, state))
        })
    }

    fn engine_stats(&self) -> EngineStats {
        let s = self.db.stats();
        EngineStats {
            stall_secs: Some(s.stall_nanos as f64 / 1e9),
            max_stall_secs: Some(s.max_stall_nanos as f64 / 1e9),
            bytes_written: Some(s.bytes_written),
            compactions: Some(s.compactions),
            levels: Some(describe_levels(&self.db)),
        }
    }

    fn compact_fully(&mut self) -> Result<Option<&'static str>> {
        self.db.flatten(2)?;
        Ok(Some("brock Db::flatten(2)"))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.close()?;
        Ok(())
    }
}

/// `Db::levels()` in one line: each level holding tables (and the base
/// level), with its size, target, estimated stale bytes and score; then the
/// value-log bytes of `Db::size()` if any.
pub fn describe_levels(db: &Db) -> String {
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let mut parts: Vec<String> = db
        .levels()
        .iter()
        .filter(|l| l.tables > 0 || l.is_base_level)
        .map(|l| {
            format!(
                "L{}{}: {} tables {:.1} MiB (target {:.1} MiB, stale {:.1} MiB, score {:.2}/{:.2})",
                l.level,
                if l.is_base_level { " base" } else { "" },
                l.tables,
                mib(l.size),
                mib(l.target_size),
                mib(l.stale_data_size),
                l.score,
                l.adjusted
            )
        })
        .collect();
    let (_, vlog) = db.size();
    if vlog > 0 {
        parts.push(format!("vlog {:.1} MiB", mib(vlog)));
    }
    let st = db.stats();
    if st.immutable_memtables > 0 {
        parts.push(format!("{} memtables waiting", st.immutable_memtables));
    }
    parts.join("; ")
}
