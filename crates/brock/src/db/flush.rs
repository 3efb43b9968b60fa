//! The flush thread: immutable memtables become L0 tables.
//!
//! Badger's `flushMemtable`/`handleMemTableFlush`/`buildL0Table`. For the
//! oldest waiting memtable: build one table of all its entries (Badger's
//! bytes, the configured compression), write it to `NNNNNN.sst`, sync the
//! file and the directory, record a CREATE at level 0 in the MANIFEST (which
//! syncs), publish the table and drop the memtable from the view in one
//! step, and only then delete the memtable's WAL. A crash anywhere in
//! between leaves either the WAL (replayed at open) or the table (named by
//! the MANIFEST), never neither; a table file not in the MANIFEST is deleted
//! at open.
//!
//! While L0 holds `num_level_zero_tables_stall` tables the flush waits
//! (Badger's L0 stall), so memtables pile up and the write thread stalls in
//! turn; compaction is what drains L0. When closing, the flush proceeds
//! regardless so that close cannot wait forever.

use super::{DbInner, View};
use crate::error::{Error, Result};
use crate::format::ValuePointer;
use crate::format::meta::BIT_VALUE_POINTER;
use crate::iterator::KvIterator;
use crate::levels::create_change;
use crate::memtable::{Memtable, MemtableIterator};
use crate::table::{BuilderOptions, Table, TableBuilder};
use crate::vfs::mem_file_name;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Runs until told to shut down with nothing left to flush.
pub(crate) fn run(db: Arc<DbInner>) {
    loop {
        let next = {
            let mut g = db.sync.lock();
            loop {
                if db.poisoned.lock().is_some() && g.shutdown_flush {
                    return;
                }
                if let Some(mt) = db.view().immutables.last().cloned() {
                    let stalled = db.view().tree.l0_count() >= db.opts.num_level_zero_tables_stall as usize;
                    if (!stalled || g.shutdown_flush) && !g.flush_paused {
                        g.flushing = true;
                        break mt;
                    }
                } else if g.shutdown_flush {
                    return;
                }
                db.cond.wait_for(&mut g, Duration::from_millis(100));
            }
        };
        let result = flush_memtable(&db, &next);
        let mut g = db.sync.lock();
        g.flushing = false;
        if let Err(e) = result {
            db.poison(&e);
            db.cond.notify_all();
            return;
        }
        db.cond.notify_all();
    }
}

/// Writes one memtable as an L0 table and retires it.
pub(crate) fn flush_memtable(db: &DbInner, mt: &Arc<Memtable>) -> Result<()> {
    let table = if mt.is_empty() {
        None
    } else {
        Some(write_l0_table(db, mt)?)
    };
    {
        let mut v = db.view.write();
        let mut next: View = (**v).clone();
        next.immutables.retain(|m| !Arc::ptr_eq(m, mt));
        if let Some(t) = table {
            if mt.deletes() >= super::compact::DELETES_TRIGGER_MIN {
                db.l0_deletes.lock().insert(t.id(), mt.delete_share());
            }
            next.tree = Arc::new(next.tree.with_l0_table(t));
        }
        *v = Arc::new(next);
    }
    db.counters.flushes.fetch_add(1, Ordering::Relaxed);
    if mt.wal_fid() != 0 {
        let path = db.dir.join(mem_file_name(mt.wal_fid()));
        if db.vfs.exists(&path) {
            db.vfs.remove(&path)?;
        }
    }
    Ok(())
}

fn write_l0_table(db: &DbInner, mt: &Arc<Memtable>) -> Result<Arc<Table>> {
    let o = &db.opts;
    let mut b = TableBuilder::new(BuilderOptions {
        block_size: o.block_size as usize,
        bloom_false_positive: o.bloom_false_positive,
        compression: o.compression,
        zstd_level: o.zstd_compression_level,
        table_size: o.mem_table_size,
    });
    if o.prepopulate_block_cache && db.cache.is_some() {
        b.keep_raw_blocks((o.block_cache_size / 2).try_into().unwrap_or(usize::MAX));
    }
    let mut it = MemtableIterator::new(mt.clone());
    it.seek_to_first()?;
    while it.valid() {
        let v = it.value();
        let vlog_len = if v.meta & BIT_VALUE_POINTER != 0 {
            ValuePointer::decode(v.value).map(|p| p.len).unwrap_or(0)
        } else {
            0
        };
        b.add(it.key(), &v, vlog_len);
        it.next()?;
    }
    let raw_blocks = b.take_raw_blocks();
    let table = super::compact::write_table(db, b)?;
    table.prepopulate(raw_blocks)?;
    db.vfs.sync_dir(&db.dir)?;
    // The table may point into the value log: those values must be durable
    // before the WAL that also holds them can go.
    let vlogs: Vec<_> = db.vlogs.read().values().cloned().collect();
    for f in vlogs {
        f.sync()?;
    }
    let mut m = db.manifest.lock();
    let mf = m.as_mut().ok_or(Error::ReadOnly)?;
    mf.add_changes(vec![create_change(table.id(), 0, 0, o.compression)])?;
    Ok(table)
}

/// Waits until no immutable memtable is left (or flushing failed).
pub(crate) fn wait_idle(db: &DbInner) -> Result<()> {
    let started = Instant::now();
    let mut g = db.sync.lock();
    loop {
        if let Some(cause) = db.poisoned.lock().clone() {
            return Err(Error::WritesPoisoned { cause });
        }
        if db.view().immutables.is_empty() && !g.flushing {
            return Ok(());
        }
        db.cond.notify_all();
        db.cond.wait_for(&mut g, Duration::from_millis(50));
        let _ = started;
    }
}
