//! Brock through its public API.

use crate::workload::{
    Config, EngineStats, GcOutcome, KEY_LEN, Result, Settle, Settled, Store, Visitor, wait_until_quiet,
};
use brock::{Db, IterOptions, Options};
use std::path::Path;
use std::time::Instant;

/// The discard ratio the gc workload passes to `Db::run_value_log_gc`: a
/// file is collected once at least half of it is garbage.
pub const GC_DISCARD_RATIO: f64 = 0.5;

/// More files than this collected in one gc workload means the GC keeps
/// finding work it made itself; the workload stops with an error.
const MAX_GC_FILES: u64 = 100_000;

/// The options the harness opens Brock with for `cfg`: Badger v4's
/// defaults, `sync_writes` = `cfg.sync`, and `cfg.value_threshold` if set.
pub fn options(dir: &Path, cfg: &Config) -> Options {
    let opts = Options::new(dir).with_sync_writes(cfg.sync);
    match cfg.value_threshold {
        Some(t) => opts.with_value_threshold(t),
        None => opts,
    }
}

/// The largest batch of `value_size`-byte values that fits in one Brock
/// transaction opened with `opts` **whatever the value threshold**: Badger's
/// `checkSize` counts each entry as key + value + 2 meta bytes + 10 (a
/// value that goes to the value log counts as its 12-byte pointer instead,
/// so a separated batch of this size fits too), starts every transaction at
/// the commit marker's 1 entry and 21 bytes, and refuses a transaction
/// whose count reaches `max_batch_count` or whose size reaches
/// `max_batch_size` (15% of `mem_table_size`). At least 1.
///
/// # Errors
/// The options' own validation error.
pub fn fitting_batch(opts: &Options, value_size: usize) -> Result<usize> {
    let limits = opts.validate()?;
    let per_entry = (KEY_LEN + value_size) as u64 + 2 + 10;
    let by_bytes = limits.max_batch_size.saturating_sub(1 + TXN_MARKER_BYTES) / per_entry;
    let by_count = limits.max_batch_count.saturating_sub(1 + TXN_MARKER_ENTRIES);
    Ok(usize::try_from(by_bytes.min(by_count).max(1))?)
}

/// What a transaction counts before its first entry (Badger's commit
/// marker): entries and bytes.
const TXN_MARKER_ENTRIES: u64 = 1;
const TXN_MARKER_BYTES: u64 = 21;

/// Commits a fill keeps in flight: each batch is one transaction, queued
/// with `Txn::commit_async` (as `WriteBatch` does) so that the next batch
/// is built while the write thread applies this one.
const MAX_PENDING: usize = 16;

/// A Brock database with Badger v4's default options.
#[derive(Debug)]
pub struct BrockStore {
    db: Db,
    pending: std::collections::VecDeque<brock::PendingCommit>,
}

impl BrockStore {
    /// Opens (or creates) the database in `dir`; `sync` makes each commit
    /// wait for an fsync of the WAL.
    pub fn open(dir: &Path, sync: bool) -> Result<Self> {
        Self::open_with(Options::new(dir).with_sync_writes(sync))
    }

    /// Opens with the given options.
    pub fn open_with(opts: Options) -> Result<Self> {
        Ok(BrockStore {
            db: Db::open(opts)?,
            pending: std::collections::VecDeque::new(),
        })
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
        if self.pending.len() >= MAX_PENDING
            && let Some(p) = self.pending.pop_front()
        {
            p.wait()?;
        }
        self.pending.push_back(txn.commit_async()?);
        Ok(())
    }

    fn finish_writes(&mut self) -> Result<()> {
        while let Some(p) = self.pending.pop_front() {
            p.wait()?;
        }
        Ok(())
    }

    fn delete_batch(&mut self, keys: &[[u8; KEY_LEN]]) -> Result<()> {
        self.finish_writes()?;
        let mut txn = self.db.begin_write();
        for k in keys {
            txn.delete(k.to_vec())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        self.finish_writes()?;
        let mut txn = self.db.begin_read();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(item) = txn.get(k)? {
                found(pos, item.value_ref());
            }
        }
        Ok(())
    }

    fn scan(&mut self, item: Visitor<'_>) -> Result<()> {
        self.finish_writes()?;
        let mut txn = self.db.begin_read();
        for it in txn.iter(IterOptions::default())? {
            let it = it?;
            item(it.key(), it.value_ref())?;
        }
        Ok(())
    }

    fn is_empty(&mut self) -> Result<bool> {
        self.finish_writes()?;
        let mut txn = self.db.begin_read();
        let mut it = txn.iter(IterOptions::default())?;
        Ok(it.next().transpose()?.is_none())
    }

    fn settle(&mut self, settle: &Settle) -> Result<Settled> {
        self.finish_writes()?;
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
        self.finish_writes()?;
        self.db.flatten(2)?;
        Ok(Some("brock Db::flatten(2)"))
    }

    fn collect_garbage(&mut self) -> Result<Option<GcOutcome>> {
        self.finish_writes()?;
        let (mut files, mut file_bytes, mut rewritten) = (0u64, 0u64, 0u64);
        loop {
            match self.db.run_value_log_gc(GC_DISCARD_RATIO) {
                Ok(r) => {
                    files += 1;
                    file_bytes += r.file_bytes;
                    rewritten += r.rewritten_bytes;
                    if files > MAX_GC_FILES {
                        return Err(format!(
                            "value-log GC collected {files} files ({file_bytes} bytes, last {r:?}) and still \
                             finds more"
                        )
                        .into());
                    }
                }
                Err(brock::Error::NoRewrite) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(GcOutcome {
            call: "brock Db::run_value_log_gc(0.5) until NoRewrite",
            rounds: files,
            files: Some(files),
            file_bytes: Some(file_bytes),
            rewritten_bytes: Some(rewritten),
        }))
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        self.finish_writes()?;
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
