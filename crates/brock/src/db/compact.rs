//! Compaction: the worker threads, picking the tables, and committing.
//!
//! Badger's `levels.go` (`runCompactor`, `doCompact`, `fillTables*`,
//! `runCompactDef`, `addSplits`, `checkOverlap`). Every 50 ms (or when woken)
//! each of `num_compactors` workers asks the policy (`levels::policy`) for
//! the levels most in need; worker 0 tries L0 first whatever its adjusted
//! score. A compaction claims its key ranges in the shared
//! [`CompactStatus`], builds output tables from the merged inputs (split into
//! key ranges run on parallel threads), syncs them, commits one MANIFEST
//! change set (creates and deletes), publishes the new tree in one step, and
//! only then removes the input files (readers that still hold them keep
//! reading through their open handles).
//!
//! Better than Badger:
//! - a table whose stale share (tombstones, expired and shadowed versions
//!   kept for snapshots) is high is compacted even when its level's score is
//!   low, and at the last level it is rewritten in place, so deleted space
//!   comes back (Badger #2329);
//! - the policy never routes L0 below a level holding data (Badger #2143).

use super::{DbInner, View, WriterMsg};
use crate::error::{Error, Result};
use crate::format::meta::now_secs;
use crate::iterator::{KvIterator, MergeIterator};
use crate::levels::compact_status::{Claim, CompactStatus};
use crate::levels::compaction::{GcParams, compact_range};
use crate::levels::key_range::KeyRange;
use crate::levels::policy::{
    LevelState, PolicyOptions, Priority, Targets, TopCandidate, l0_target, level_targets,
    pick_compact_levels, top_table_order,
};
use crate::levels::{Tree, create_change, delete_change};
use crate::table::{BuilderOptions, ConcatIterator, Table, TableIterator, TableOptions};
use crate::vfs::{OpenMode, sst_file_name};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long an L0 table must exist before an L0→L0 compaction takes it.
const L0_TO_L0_MIN_AGE: Duration = Duration::from_secs(10);
/// Stale share above which a table is compacted regardless of its level's score.
const STALE_RATIO: f64 = 0.3;
/// And the stale bytes it must hold for that.
const STALE_MIN_BYTES: u64 = 64 << 10;

/// One planned compaction.
#[derive(Debug, Clone)]
pub(crate) struct CompactDef {
    pub this_level: usize,
    pub next_level: usize,
    /// Inputs from `this_level`, newest first.
    pub top: Vec<Arc<Table>>,
    /// Inputs from `next_level`, in key order.
    pub bot: Vec<Arc<Table>>,
    pub claim: Claim,
    pub file_size: u64,
    pub drop_prefixes: Vec<Vec<u8>>,
}

pub(crate) fn level_states(db: &DbInner, tree: &Tree) -> Vec<LevelState> {
    level_states_in(tree, &db.compact_status.lock(), db.opts.max_levels as usize)
}

/// The policy's view of `levels` levels of `tree`, given the running
/// compactions in `status`.
fn level_states_in(tree: &Tree, status: &CompactStatus, levels: usize) -> Vec<LevelState> {
    (0..levels)
        .map(|i| {
            let tables = tree.levels().get(i).map_or(&[][..], |v| &v[..]);
            LevelState {
                tables: tables.len(),
                size: tables.iter().map(|t| t.size()).sum(),
                compacting_size: status.compacting_size(i),
            }
        })
        .collect()
}

pub(crate) fn targets(db: &DbInner, tree: &Tree) -> (Vec<LevelState>, Targets) {
    let states = level_states(db, tree);
    let t = level_targets(&states, &PolicyOptions::from_options(&db.opts));
    (states, t)
}

/// The worker loop.
pub(crate) fn run(db: Arc<DbInner>, id: usize) {
    loop {
        {
            let mut g = db.sync.lock();
            if g.shutdown_compactors {
                return;
            }
            db.cond.wait_for(&mut g, Duration::from_millis(50));
            if g.shutdown_compactors {
                return;
            }
        }
        if db.compaction_paused.load(Ordering::Acquire) > 0 || db.poisoned.lock().is_some() {
            continue;
        }
        match run_once(&db, id) {
            Ok(true) => {
                let _g = db.sync.lock();
                db.cond.notify_all();
            }
            Ok(false) => {}
            Err(e) => {
                // A failed compaction leaves the inputs in place; the data is
                // intact. An I/O error on the manifest poisons writes.
                if !matches!(e, Error::Corruption { .. }) {
                    db.poison(&e);
                }
            }
        }
    }
}

/// One round for worker `id`: true if a compaction ran.
pub(crate) fn run_once(db: &DbInner, id: usize) -> Result<bool> {
    let view = db.view();
    let (states, t) = targets(db, &view.tree);
    let mut prios = pick_compact_levels(&states, &t, &PolicyOptions::from_options(&db.opts));
    if id == 0
        && let Some(i) = prios.iter().position(|p| p.level == 0)
    {
        let p = prios.remove(i);
        prios.insert(0, p);
    }
    for p in prios {
        if !(id == 0 && p.level == 0) && p.adjusted < 1.0 {
            break;
        }
        if do_compact(db, id, p, &t, &[])? {
            return Ok(true);
        }
    }
    if id == 0 || db.opts.num_compactors <= 1 {
        if compact_deleted_l0(db, id, &t)? {
            return Ok(true);
        }
        flush_idle_deletes(db);
        return compact_stale(db, &t);
    }
    Ok(false)
}

/// Deletes a table or memtable must hold before deletion-triggered
/// compaction cares (a few deletes free too little to be worth a rewrite).
pub(crate) const DELETES_TRIGGER_MIN: u64 = 1000;

/// How long without a commit before the store counts as idle.
const IDLE: Duration = Duration::from_secs(1);

/// Better than Badger (deletion-triggered compaction): an L0 table that is
/// mostly deletes is pushed down even while L0's score is low, so the
/// deletes meet the values they hide and both go. Badger leaves them in L0
/// until enough other tables arrive, which after a mass delete may be never.
fn compact_deleted_l0(db: &DbInner, id: usize, t: &Targets) -> Result<bool> {
    let l0: Vec<u64> = {
        let view = db.view();
        view.tree
            .levels()
            .first()
            .map(|l| l.iter().map(|t| t.id()).collect())
            .unwrap_or_default()
    };
    let due = {
        let mut shares = db.l0_deletes.lock();
        shares.retain(|id, _| l0.contains(id));
        shares.values().any(|&s| s >= STALE_RATIO)
    };
    if !due {
        return Ok(false);
    }
    let p = Priority {
        level: 0,
        score: 1.0,
        adjusted: 1.0,
    };
    do_compact(db, id, p, t, &[])
}

/// Better than Badger: once no commit has come for [`IDLE`], a mutable
/// memtable that is mostly deletes is sent to flush, so that the space the
/// deletes free comes back without waiting for the memtable to fill (it may
/// never fill). The rotation is queued to the write thread without waiting.
fn flush_idle_deletes(db: &DbInner) {
    let commits = db.counters.commits.load(Ordering::Relaxed);
    {
        let mut probe = db.idle_probe.lock();
        if probe.0 != commits {
            *probe = (commits, std::time::Instant::now(), false);
            return;
        }
        // Once per idle period.
        if probe.2 || probe.1.elapsed() < IDLE {
            return;
        }
        probe.2 = true;
    }
    let view = db.view();
    let due = view.immutables.is_empty()
        && view
            .mutable
            .as_ref()
            .is_some_and(|m| m.deletes() >= DELETES_TRIGGER_MIN && m.delete_share() >= STALE_RATIO)
        && view.tree.levels().first().map_or(0, |l| l.len()) < db.opts.num_level_zero_tables_stall as usize;
    if !due {
        return;
    }
    if let Some(sender) = db.sender.lock().clone() {
        let _ = sender.send(WriterMsg::Exec(Box::new(|w| {
            let _ = w.rotate_now();
        })));
    }
}

/// Plans and runs one compaction from `p.level`; false if nothing could be claimed.
pub(crate) fn do_compact(
    db: &DbInner,
    id: usize,
    p: Priority,
    t: &Targets,
    drop_prefixes: &[Vec<u8>],
) -> Result<bool> {
    // Read the tree and claim under the status lock: a compaction that
    // finished in between cannot have removed the tables we pick.
    let (view, def) = {
        let mut status = db.compact_status.lock();
        let view = db.view();
        let tree = &view.tree;
        let def = if p.level == 0 {
            fill_l0(&mut status, tree, t, p, drop_prefixes).or_else(|| {
                if id == 0 {
                    fill_l0_to_l0(db, &mut status, tree)
                } else {
                    None
                }
            })
        } else {
            fill_level(db, &mut status, tree, t, p.level)
        };
        (view, def)
    };
    let Some(mut def) = def else { return Ok(false) };
    def.drop_prefixes = drop_prefixes.to_vec();
    let result = run_compaction(db, &view, &def);
    db.compact_status.lock().release(&def.claim);
    result.map(|_| true)
}

fn table_ids(ts: &[Arc<Table>]) -> Vec<u64> {
    ts.iter().map(|t| t.id()).collect()
}

fn size_of(ts: &[Arc<Table>]) -> u64 {
    ts.iter().map(|t| t.size()).sum()
}

/// L0 → base level: the oldest run of overlapping L0 tables plus the base
/// level's tables under them.
fn fill_l0(
    status: &mut CompactStatus,
    tree: &Tree,
    t: &Targets,
    p: Priority,
    drop_prefixes: &[Vec<u8>],
) -> Option<CompactDef> {
    if p.adjusted > 0.0 && p.adjusted < 1.0 {
        return None;
    }
    let l0 = tree.levels().first()?;
    if l0.is_empty() {
        return None;
    }
    let mut top: Vec<Arc<Table>> = Vec::new();
    if drop_prefixes.is_empty() {
        let mut kr = KeyRange::default();
        for table in l0.iter().rev() {
            let r = KeyRange::of_tables(std::slice::from_ref(table));
            if kr.overlaps(&r) {
                kr.extend(&r);
                top.push(table.clone());
            } else {
                break;
            }
        }
    } else {
        top = l0.iter().rev().cloned().collect();
    }
    top.reverse(); // newest first
    let state = level_states_in(tree, status, tree.levels().len());
    let base = l0_target(&state, t, size_of(&top));
    let this_range = KeyRange::of_tables(&top);
    let next = tree.levels().get(base).map_or(&[][..], |v| &v[..]);
    let (lo, hi) = this_range.overlapping(next);
    let bot: Vec<Arc<Table>> = next[lo..hi].to_vec();
    let next_range = if bot.is_empty() {
        this_range.clone()
    } else {
        KeyRange::of_tables(&bot)
    };
    let mut tables = table_ids(&top);
    tables.extend(table_ids(&bot));
    let claim = Claim {
        this_level: 0,
        next_level: base,
        this_range,
        next_range,
        this_size: size_of(&top),
        tables,
    };
    if !status.try_claim(&claim) {
        return None;
    }
    Some(CompactDef {
        this_level: 0,
        next_level: base,
        top,
        bot,
        claim,
        file_size: t.file_size[base],
        drop_prefixes: vec![],
    })
}

/// L0 → L0 (worker 0 only, when L0 → base is blocked): the oldest run of
/// at least four idle, settled, not oversized L0 tables merged into one.
/// Only a run starting at the oldest table qualifies, so the output is still
/// older than every L0 table left out (L0 is ordered by version, and a
/// tombstone must never be compacted down past an older value still in L0).
fn fill_l0_to_l0(db: &DbInner, status: &mut CompactStatus, tree: &Tree) -> Option<CompactDef> {
    let l0 = tree.levels().first()?;
    let mut top: Vec<Arc<Table>> = l0
        .iter()
        .rev()
        .take_while(|t| {
            t.size() < 2 * db.opts.mem_table_size
                && t.opened_at().elapsed() >= L0_TO_L0_MIN_AGE
                && !status.is_compacting(t.id())
        })
        .cloned()
        .collect();
    top.reverse();
    if top.len() < 4 {
        return None;
    }
    let claim = Claim {
        this_level: 0,
        next_level: 0,
        this_range: KeyRange::infinite(),
        next_range: KeyRange::default(),
        this_size: size_of(&top),
        tables: table_ids(&top),
    };
    if !status.try_claim(&claim) {
        return None;
    }
    Some(CompactDef {
        this_level: 0,
        next_level: 0,
        top,
        bot: vec![],
        claim,
        file_size: u64::from(u32::MAX),
        drop_prefixes: vec![],
    })
}

/// Li → Li+1: one table that can be claimed, in [`top_table_order`], plus
/// the next level's tables under it (decision 0007).
fn fill_level(
    db: &DbInner,
    status: &mut CompactStatus,
    tree: &Tree,
    t: &Targets,
    level: usize,
) -> Option<CompactDef> {
    let last = db.opts.max_levels as usize - 1;
    if level >= last {
        return None;
    }
    let tables = tree.levels().get(level)?;
    let next = tree.levels().get(level + 1).map_or(&[][..], |v| &v[..]);
    let cands: Vec<TopCandidate> = tables
        .iter()
        .map(|t| {
            let (lo, hi) = KeyRange::of_tables(std::slice::from_ref(t)).overlapping(next);
            TopCandidate {
                size: t.size(),
                under: next[lo..hi].iter().map(|b| b.size()).sum(),
                max_version: t.index().max_version,
            }
        })
        .collect();
    for table in top_table_order(&cands).into_iter().map(|i| &tables[i]) {
        if let Some(def) = claim_one(status, level, level + 1, table, next, t.file_size[level + 1]) {
            return Some(def);
        }
    }
    None
}

fn claim_one(
    status: &mut CompactStatus,
    level: usize,
    next_level: usize,
    table: &Arc<Table>,
    next: &[Arc<Table>],
    file_size: u64,
) -> Option<CompactDef> {
    let this_range = KeyRange::of_tables(std::slice::from_ref(table));
    let bot: Vec<Arc<Table>> = if next_level == level {
        Vec::new()
    } else {
        let (lo, hi) = this_range.overlapping(next);
        next[lo..hi].to_vec()
    };
    let next_range = if bot.is_empty() {
        this_range.clone()
    } else {
        KeyRange::of_tables(&bot)
    };
    let mut ids = vec![table.id()];
    ids.extend(table_ids(&bot));
    let claim = Claim {
        this_level: level,
        next_level,
        this_range,
        next_range,
        this_size: table.size(),
        tables: ids,
    };
    if !status.try_claim(&claim) {
        return None;
    }
    Some(CompactDef {
        this_level: level,
        next_level,
        top: vec![table.clone()],
        bot,
        claim,
        file_size,
        drop_prefixes: vec![],
    })
}

/// Better than Badger: compact the stalest table (tombstones, expired and
/// shadowed versions a snapshot no longer needs) even when no level is over
/// target — down a level, or in place at the last level.
fn compact_stale(db: &DbInner, t: &Targets) -> Result<bool> {
    let discard_ts = db.oracle.discard_ts();
    let last = db.opts.max_levels as usize - 1;
    let (view, def, next_level) = {
        let mut status = db.compact_status.lock();
        let view = db.view();
        let tree = &view.tree;
        let mut best: Option<(f64, usize, Arc<Table>)> = None;
        {
            let settled = db.stale_rewritten.lock();
            for (level, tables) in tree.levels().iter().enumerate().skip(1) {
                for table in tables {
                    let stale = u64::from(table.index().stale_data_size);
                    let ratio = stale as f64 / table.size().max(1) as f64;
                    if ratio < STALE_RATIO
                        || stale < STALE_MIN_BYTES.min(table.size() / 2)
                        || table.index().max_version > discard_ts
                        || status.is_compacting(table.id())
                        || (level == last && settled.contains(&table.id()))
                    {
                        continue;
                    }
                    if best.as_ref().is_none_or(|b| ratio > b.0) {
                        best = Some((ratio, level, table.clone()));
                    }
                }
            }
        }
        let Some((_, level, table)) = best else {
            return Ok(false);
        };
        let next_level = (level + 1).min(last);
        let next = tree.levels().get(next_level).map_or(&[][..], |v| &v[..]);
        let def = claim_one(
            &mut status,
            level,
            next_level,
            &table,
            next,
            t.file_size[next_level],
        );
        (view, def, next_level)
    };
    let Some(def) = def else { return Ok(false) };
    let result = run_compaction(db, &view, &def);
    db.compact_status.lock().release(&def.claim);
    let outputs = result?;
    if next_level == last {
        // What an in-place rewrite at the last level keeps is as clean as it
        // gets; do not pick those tables again for staleness.
        db.stale_rewritten.lock().extend(outputs);
    }
    Ok(true)
}

/// Badger's `addSplits`: key ranges of about a fifth of the bottom tables
/// (at least three), run in parallel.
fn splits(def: &CompactDef) -> Vec<KeyRange> {
    if def.this_level == def.next_level || def.bot.is_empty() {
        return vec![KeyRange::default()];
    }
    let width = def.bot.len().div_ceil(5).max(3);
    let mut out = Vec::new();
    let mut left = Vec::new();
    for (i, t) in def.bot.iter().enumerate() {
        if i == def.bot.len() - 1 {
            out.push(KeyRange {
                left: left.clone(),
                right: Vec::new(),
                inf: false,
            });
            break;
        }
        if i % width == width - 1 {
            let right = crate::format::key_with_version(crate::format::user_key(t.biggest()), 0);
            out.push(KeyRange {
                left: left.clone(),
                right: right.clone(),
                inf: false,
            });
            left = right;
        }
    }
    out
}

/// Whether any level from `from` down holds a table overlapping `tables`.
fn lower_levels_overlap(tree: &Tree, tables: &[Arc<Table>], from: usize) -> bool {
    let kr = KeyRange::of_tables(tables);
    tree.levels().iter().skip(from).any(|l| {
        let (lo, hi) = kr.overlapping(l);
        hi > lo
    })
}

/// Builds, commits and publishes one compaction; returns the new table ids.
fn run_compaction(db: &DbInner, view: &View, def: &CompactDef) -> Result<Vec<u64>> {
    let tree = &view.tree;
    let mut all = def.top.clone();
    all.extend(def.bot.iter().cloned());
    let gc = GcParams {
        discard_ts: db.oracle.discard_ts(),
        num_versions_to_keep: db.opts.num_versions_to_keep,
        has_overlap: lower_levels_overlap(tree, &all, def.next_level + 1),
        drop_prefixes: def.drop_prefixes.clone(),
        now: now_secs(),
    };
    let o = &db.opts;
    let bopts = BuilderOptions {
        block_size: o.block_size as usize,
        bloom_false_positive: o.bloom_false_positive,
        compression: o.compression,
        zstd_level: o.zstd_compression_level,
        table_size: def.file_size,
    };
    let n2n = def.next_level + 1;
    let two_down: Vec<Arc<Table>> = if n2n > 1 && n2n < tree.levels().len() {
        tree.levels()[n2n].clone()
    } else {
        Vec::new()
    };
    let too_much_overlap = |kr: &KeyRange| {
        let (lo, hi) = kr.overlapping(&two_down);
        !two_down.is_empty() && hi - lo >= 10
    };
    let ranges = splits(def);
    let max_version = all.iter().map(|t| t.index().max_version).max().unwrap_or(0);
    let outputs = parking_lot::Mutex::new(Vec::<Arc<Table>>::new());
    let discard = parking_lot::Mutex::new(std::collections::BTreeMap::<u32, u64>::new());
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|range| {
                let (gc, outputs, discard, too_much_overlap) = (&gc, &outputs, &discard, &too_much_overlap);
                s.spawn(move || -> Result<()> {
                    let mut sources: Vec<Box<dyn KvIterator + Send>> = Vec::new();
                    for t in &def.top {
                        sources.push(Box::new(TableIterator::new(t.clone()).without_cache()));
                    }
                    if !def.bot.is_empty() {
                        sources.push(Box::new(ConcatIterator::new(def.bot.clone()).without_cache()));
                    }
                    let mut it = MergeIterator::new(sources);
                    let stats = compact_range(&mut it, range, gc, bopts, too_much_overlap, &mut |mut b| {
                        // Entries dropped here may have held the newest
                        // version; the outputs still claim it, so the next
                        // commit timestamp after a reopen never goes back.
                        b.raise_max_version(max_version);
                        let t = write_table(db, b)?;
                        outputs.lock().push(t);
                        Ok(())
                    })?;
                    let mut d = discard.lock();
                    for (fid, n) in stats.discard {
                        *d.entry(fid).or_insert(0) += n;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Error::Closed)))
            .collect()
    });
    let mut outputs = outputs.into_inner();
    let cleanup = |outs: &[Arc<Table>]| {
        for t in outs {
            let _ = db.vfs.remove(t.path());
        }
    };
    if let Some(e) = results.into_iter().find_map(Result::err) {
        cleanup(&outputs);
        return Err(e);
    }
    if !db.opts.in_memory
        && let Err(e) = db.vfs.sync_dir(&db.dir)
    {
        cleanup(&outputs);
        return Err(e);
    }
    outputs.sort_by(|a, b| crate::format::compare_keys(a.biggest(), b.biggest()));
    let removed = table_ids(&all);
    let new_ids = table_ids(&outputs);
    let out_bytes: u64 = outputs.iter().map(|t| t.size()).sum();
    // Check the edit against the current tree before the MANIFEST records it.
    if let Err(e) = db
        .view()
        .tree
        .with_edit(def.this_level, def.next_level, &removed, outputs.clone())
    {
        cleanup(&outputs);
        return Err(e);
    }
    let mut changes: Vec<_> = outputs
        .iter()
        .map(|t| create_change(t.id(), def.next_level as u32, 0, t.options().compression))
        .collect();
    changes.extend(all.iter().map(|t| delete_change(t.id())));
    {
        let mut m = db.manifest.lock();
        let mf = m.as_mut().ok_or(Error::ReadOnly)?;
        if let Err(e) = mf.add_changes(changes) {
            // The record may be on disk even though the append failed: keep
            // the outputs (an open deletes them if unreferenced) and stop.
            db.poison(&e);
            return Err(e);
        }
    }
    {
        let mut v = db.view.write();
        let mut next: View = (**v).clone();
        match next
            .tree
            .with_edit(def.this_level, def.next_level, &removed, outputs)
        {
            Ok(tree) => next.tree = Arc::new(tree),
            Err(e) => {
                // The MANIFEST has the edit but the live tree cannot take it.
                db.poison(&e);
                return Err(e);
            }
        }
        *v = Arc::new(next);
    }
    // Readers holding the old tree keep reading through their open handles.
    for t in &all {
        let _ = db.vfs.remove(t.path());
        t.forget_cached_blocks();
    }
    if let Some(stats) = db.discard.lock().as_mut() {
        for (fid, n) in discard.into_inner() {
            stats.add(fid, n)?;
        }
    }
    db.counters.compactions.fetch_add(1, Ordering::Relaxed);
    if def.next_level > def.this_level
        && let Some(c) = db.counters.compactions_down.get(def.this_level)
    {
        c.fetch_add(1, Ordering::Relaxed);
    }
    db.counters
        .compaction_bytes_written
        .fetch_add(out_bytes, Ordering::Relaxed);
    Ok(new_ids)
}

/// Writes a finished table image as the next table id, synced, and opens it.
pub(crate) fn write_table(db: &DbInner, b: crate::table::TableBuilder) -> Result<Arc<Table>> {
    let id = db.next_file_id.fetch_add(1, Ordering::AcqRel);
    let path = db.dir.join(sst_file_name(id));
    {
        // Streamed in pieces: a flushed memtable is tens of MiB, and one
        // buffer of it cost a copy and fresh zeroed pages per flush.
        let mut f = db.vfs.open_write(&path, OpenMode::CreateNew)?;
        let written = b.finish_to(|piece| f.append(piece))?;
        f.sync_data()?;
        db.counters.bytes_written.fetch_add(written, Ordering::Relaxed);
    }
    let table = Table::open_cached(
        db.vfs.open_read(&path)?,
        TableOptions {
            id,
            compression: db.opts.compression,
            key_id: 0,
            verify_blocks: db.opts.verify_block_checksums,
        },
        db.cache.clone(),
    )?;
    Ok(Arc::new(table))
}
