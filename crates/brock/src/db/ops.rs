//! Whole-tree operations: flatten, drop-all, drop-prefix, compact-on-close,
//! and the level and table statistics.
//!
//! Badger's `db.go` (`Flatten`, `DropAll`, `DropPrefix`) and `levels.go`
//! (`dropTree`, `dropPrefixes`). Each blocks new commits for its duration
//! (it holds the oracle's write-order lock), runs what it needs on the write
//! thread through [`WriterMsg::Exec`] (so it is ordered after every commit
//! already queued), and pauses the background compactors until the tree is
//! in its new shape.

use super::compact::{self, do_compact};
use super::write::Writer;
use super::{DbInner, View, WriterMsg};
use crate::error::{Error, Result};
use crate::format::{key_with_version, user_key};
use crate::iterator::KvIterator;
use crate::levels::compaction::{GcParams, compact_range};
use crate::levels::key_range::KeyRange;
use crate::levels::policy::{PolicyOptions, Priority, pick_compact_levels};
use crate::levels::{Tree, create_change, delete_change};
use crate::table::{BuilderOptions, Table, TableIterator};
use crate::vfs::{FileKind, classify, mem_file_name};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Statistics of one level (Badger's `LevelInfo`).
#[derive(Debug, Clone, PartialEq)]
pub struct LevelInfo {
    /// Level number.
    pub level: usize,
    /// Tables in it.
    pub tables: usize,
    /// Their total size.
    pub size: u64,
    /// The policy's target size.
    pub target_size: u64,
    /// The policy's target table size.
    pub target_file_size: u64,
    /// Whether L0 compacts into this level.
    pub is_base_level: bool,
    /// Compaction score.
    pub score: f64,
    /// Score adjusted for the level below.
    pub adjusted: f64,
    /// Estimated stale bytes (tombstones, expired and shadowed versions).
    pub stale_data_size: u64,
}

/// Progress of [`crate::Db::flatten_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlattenProgress {
    /// Bytes per level now.
    pub level_sizes: Vec<u64>,
    /// Compactions run so far.
    pub compactions: u64,
}

/// Keeps the background compactors idle while alive.
struct CompactionPause<'a> {
    db: &'a DbInner,
}

impl<'a> CompactionPause<'a> {
    fn new(db: &'a DbInner) -> Self {
        db.compaction_paused.fetch_add(1, Ordering::AcqRel);
        let mut g = db.sync.lock();
        while !db.compact_status.lock().is_idle() {
            db.cond.wait_for(&mut g, Duration::from_millis(10));
        }
        CompactionPause { db }
    }
}

impl Drop for CompactionPause<'_> {
    fn drop(&mut self) {
        self.db.compaction_paused.fetch_sub(1, Ordering::AcqRel);
        let _g = self.db.sync.lock();
        self.db.cond.notify_all();
    }
}

/// Keeps the flush thread from starting a new table while alive.
struct FlushPause<'a> {
    db: &'a DbInner,
}

impl<'a> FlushPause<'a> {
    fn new(db: &'a DbInner) -> Self {
        let mut g = db.sync.lock();
        g.flush_paused = true;
        while g.flushing {
            db.cond.wait_for(&mut g, Duration::from_millis(10));
        }
        FlushPause { db }
    }
}

impl Drop for FlushPause<'_> {
    fn drop(&mut self) {
        let mut g = self.db.sync.lock();
        g.flush_paused = false;
        self.db.cond.notify_all();
    }
}

/// Runs `f` on the write thread after everything queued, and waits for it.
pub(crate) fn on_writer<T: Send + 'static>(
    db: &DbInner,
    f: impl FnOnce(&mut Writer) -> T + Send + 'static,
) -> Result<T> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let sender = db.sender.lock().clone().ok_or(Error::Closed)?;
    sender
        .send(WriterMsg::Exec(Box::new(move |w| {
            let _ = tx.send(f(w));
        })))
        .map_err(|_| Error::Closed)?;
    rx.recv().map_err(|_| Error::Closed)
}

pub(crate) fn levels(db: &DbInner) -> Vec<LevelInfo> {
    let view = db.view();
    let (states, t) = compact::targets(db, &view.tree);
    let prios = pick_all(&states, &t, db);
    states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let tables = view.tree.levels().get(i).map_or(&[][..], |v| &v[..]);
            let p = prios.iter().find(|p| p.level == i);
            LevelInfo {
                level: i,
                tables: s.tables,
                size: s.size,
                target_size: t.target_size[i],
                target_file_size: t.file_size[i],
                is_base_level: i == t.base_level,
                score: p.map_or(0.0, |p| p.score),
                adjusted: p.map_or(0.0, |p| p.adjusted),
                stale_data_size: tables.iter().map(|t| u64::from(t.index().stale_data_size)).sum(),
            }
        })
        .collect()
}

/// Scores of every level (not only candidates), for statistics.
fn pick_all(
    states: &[crate::levels::policy::LevelState],
    t: &crate::levels::policy::Targets,
    db: &DbInner,
) -> Vec<Priority> {
    let o = PolicyOptions::from_options(&db.opts);
    let mut out = Vec::new();
    for (i, s) in states.iter().enumerate() {
        let score = if i == 0 {
            s.tables as f64 / o.num_level_zero_tables.max(1) as f64
        } else {
            s.size.saturating_sub(s.compacting_size) as f64 / t.target_size[i].max(1) as f64
        };
        out.push(Priority {
            level: i,
            score,
            adjusted: score,
        });
    }
    for p in pick_compact_levels(states, t, &o) {
        out[p.level].adjusted = p.adjusted;
    }
    out
}

/// Writes the mutable memtable (if it holds anything) and every waiting one
/// as L0 tables, and waits for that.
pub(crate) fn flush(db: &DbInner) -> Result<()> {
    db.check_writable()?;
    on_writer(db, |w| w.rotate_now())??;
    super::flush::wait_idle(db)
}

/// Compacts until every table is in one level (Badger's `Flatten`).
pub(crate) fn flatten(
    db: &DbInner,
    workers: usize,
    progress: &mut dyn FnMut(&FlattenProgress),
) -> Result<()> {
    db.check_writable()?;
    let _pause = CompactionPause::new(db);
    let mut compactions = 0u64;
    let mut idle_rounds = 0;
    loop {
        let view = db.view();
        let (states, t) = compact::targets(db, &view.tree);
        progress(&FlattenProgress {
            level_sizes: states.iter().map(|s| s.size).collect(),
            compactions,
        });
        let non_empty: Vec<usize> = states
            .iter()
            .enumerate()
            .filter(|(_, s)| s.tables > 0)
            .map(|(i, _)| i)
            .collect();
        let p = if non_empty.len() <= 1 {
            let prios = pick_compact_levels(&states, &t, &PolicyOptions::from_options(&db.opts));
            match prios.first() {
                Some(p) if p.score > 1.0 => *p,
                _ => return Ok(()),
            }
        } else {
            Priority {
                level: non_empty[0],
                score: 1.71,
                adjusted: 1.71,
            }
        };
        let results: Vec<Result<bool>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..workers.max(1))
                .map(|_| s.spawn(|| do_compact(db, 175, p, &t, &[])))
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::Closed)))
                .collect()
        });
        let mut ran = 0;
        for r in results {
            match r {
                Ok(true) => ran += 1,
                Ok(false) => {}
                Err(e) => {
                    db.poison(&e);
                    return Err(e);
                }
            }
        }
        compactions += ran;
        if ran == 0 {
            idle_rounds += 1;
            if idle_rounds > 100 {
                return Err(Error::InvalidArgument {
                    name: "flatten",
                    reason: "no compaction could be started (tables held by other work)".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        } else {
            idle_rounds = 0;
        }
    }
}

/// Forced L0 compactions until L0 is empty (Badger's `CompactL0OnClose`
/// runs one, which leaves L0 tables behind when they do not overlap).
pub(crate) fn compact_l0_once(db: &DbInner) -> Result<()> {
    for _ in 0..1000 {
        let view = db.view();
        if view.tree.l0_count() == 0 {
            return Ok(());
        }
        let (_, t) = compact::targets(db, &view.tree);
        if !do_compact(
            db,
            173,
            Priority {
                level: 0,
                score: 1.73,
                adjusted: 1.73,
            },
            &t,
            &[],
        )? {
            return Ok(());
        }
    }
    Ok(())
}

/// Removes every key (Badger's `DropAll`): tables through the MANIFEST,
/// memtables and their WALs, value logs; ids restart at 1.
pub(crate) fn drop_all(db: &DbInner) -> Result<()> {
    db.check_writable()?;
    poison_on_error(db, drop_all_inner(db))
}

/// A whole-tree operation that failed half way leaves the tree and the
/// files in a state only a reopen sorts out: refuse further writes.
fn poison_on_error<T>(db: &DbInner, r: Result<T>) -> Result<T> {
    if let Err(e) = &r {
        db.poison(e);
    }
    r
}

fn drop_all_inner(db: &DbInner) -> Result<()> {
    let _order = db.oracle.write_order.lock();
    let _compactions = CompactionPause::new(db);
    let _flushes = FlushPause::new(db);
    let old_mutable = on_writer(db, |w| w.reset_memtable())??;
    // As Badger does: the dynamic threshold starts over with the data.
    if let Some(h) = db.threshold_hist.lock().as_mut() {
        h.clear();
    }
    db.value_threshold
        .store(db.opts.value_threshold, Ordering::Relaxed);
    let old: View = {
        let mut v = db.view.write();
        let old = (**v).clone();
        let mut next = old.clone();
        next.immutables.clear();
        next.tree = Arc::new(Tree::empty(db.opts.max_levels as usize));
        *v = Arc::new(next);
        old
    };
    let tables: Vec<Arc<Table>> = old.tree.levels().iter().flatten().cloned().collect();
    if let Some(mf) = db.manifest.lock().as_mut() {
        if !tables.is_empty() {
            mf.add_changes(tables.iter().map(|t| delete_change(t.id())).collect())?;
        }
        mf.rewrite()?;
    }
    for t in &tables {
        db.vfs.remove(t.path())?;
    }
    let mut wal_fids: Vec<u32> = old.immutables.iter().map(|m| m.wal_fid()).collect();
    wal_fids.push(old_mutable);
    for fid in wal_fids.into_iter().filter(|&f| f != 0) {
        let p = db.dir.join(mem_file_name(fid));
        if db.vfs.exists(&p) {
            db.vfs.remove(&p)?;
        }
    }
    if !db.opts.in_memory {
        let mut vlogs = db.vlogs.write();
        for ent in db.vfs.list_dir(&db.value_dir)? {
            if let Some(FileKind::Vlog(_)) = classify(&ent.name) {
                db.vfs.remove(&db.value_dir.join(&ent.name))?;
            }
        }
        vlogs.clear();
        drop(vlogs);
        on_writer(db, |w| w.start_vlog(1))??;
        if let Some(d) = db.discard.lock().as_mut() {
            for (fid, _) in d.all() {
                d.reset(fid as u32)?;
            }
        }
        db.vfs.sync_dir(&db.dir)?;
        db.vfs.sync_dir(&db.value_dir)?;
    }
    db.next_file_id.store(1, Ordering::Release);
    if let Some(c) = &db.cache {
        c.clear();
    }
    db.stale_rewritten.lock().clear();
    Ok(())
}

/// Whether a table may hold a key with `prefix` (Badger's `containsPrefix`).
fn table_has_prefix(t: &Table, prefix: &[u8]) -> Result<bool> {
    let (lo, hi) = (user_key(t.smallest()), user_key(t.biggest()));
    if lo.starts_with(prefix) || hi.starts_with(prefix) {
        return Ok(true);
    }
    if prefix > lo && prefix < hi {
        let mut it = TableIterator::new(t);
        it.seek(&key_with_version(prefix, u64::MAX))?;
        return Ok(it.valid() && user_key(it.key()).starts_with(prefix));
    }
    Ok(false)
}

/// Removes every key starting with one of `prefixes` (Badger's `DropPrefix`):
/// the memtable is flushed, then each table holding such keys is rewritten
/// without them in its own level.
pub(crate) fn drop_prefix(db: &DbInner, prefixes: &[Vec<u8>]) -> Result<()> {
    db.check_writable()?;
    if prefixes.iter().any(Vec::is_empty) {
        return Err(Error::InvalidArgument {
            name: "prefixes",
            reason: "an empty prefix would drop everything; use drop_all".into(),
        });
    }
    poison_on_error(db, drop_prefix_inner(db, prefixes))
}

fn drop_prefix_inner(db: &DbInner, prefixes: &[Vec<u8>]) -> Result<()> {
    let _order = db.oracle.write_order.lock();
    on_writer(db, |w| w.rotate_now())??;
    super::flush::wait_idle(db)?;
    let _compactions = CompactionPause::new(db);
    let view = db.view();
    // From the last level up, as Badger does: while this runs, and if it is
    // interrupted, the newest versions (higher up) are the last to go, so an
    // older version never shows through.
    for (level, tables) in view.tree.levels().iter().enumerate().rev() {
        for t in tables {
            let mut hit = false;
            for p in prefixes {
                hit |= table_has_prefix(t, p)?;
            }
            if hit {
                rewrite_without(db, level, t, prefixes)?;
            }
        }
    }
    Ok(())
}

/// Rewrites one table in its level without the keys under `prefixes`.
fn rewrite_without(db: &DbInner, level: usize, t: &Arc<Table>, prefixes: &[Vec<u8>]) -> Result<()> {
    let gc = GcParams {
        discard_ts: 0,
        num_versions_to_keep: u32::MAX,
        has_overlap: true,
        drop_prefixes: prefixes.to_vec(),
        now: 0,
    };
    let o = &db.opts;
    let bopts = BuilderOptions {
        block_size: o.block_size as usize,
        bloom_false_positive: o.bloom_false_positive,
        compression: o.compression,
        zstd_level: o.zstd_compression_level,
        table_size: u64::from(u32::MAX),
    };
    let mut outputs = Vec::new();
    let mut it = TableIterator::new(t.clone()).without_cache();
    let stats = compact_range(&mut it, &KeyRange::default(), &gc, bopts, &|_| false, &mut |b| {
        outputs.push(compact::write_table(db, b)?);
        Ok(())
    })?;
    if !db.opts.in_memory {
        db.vfs.sync_dir(&db.dir)?;
    }
    db.view()
        .tree
        .with_edit(level, level, &[t.id()], outputs.clone())?;
    let mut changes: Vec<_> = outputs
        .iter()
        .map(|n| create_change(n.id(), level as u32, 0, n.options().compression))
        .collect();
    changes.push(delete_change(t.id()));
    if let Some(mf) = db.manifest.lock().as_mut() {
        mf.add_changes(changes)?;
    }
    {
        let mut v = db.view.write();
        let mut next: View = (**v).clone();
        next.tree = Arc::new(next.tree.with_edit(level, level, &[t.id()], outputs)?);
        *v = Arc::new(next);
    }
    db.vfs.remove(t.path())?;
    t.forget_cached_blocks();
    if let Some(d) = db.discard.lock().as_mut() {
        for (fid, n) in stats.discard {
            d.add(fid, n)?;
        }
    }
    Ok(())
}
