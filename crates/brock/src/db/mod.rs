//! The database: open, write, flush, read, close. The [`Db`] facade.
//!
//! Badger's `db.go`. Threads and locks:
//! - callers commit through [`crate::Txn`]: conflict check and timestamp under
//!   `Oracle::write_order`, then the request is queued and the caller waits;
//! - one **write thread** (`write.rs`) appends queued commits to the `.mem`
//!   WAL, syncs when asked (one sync per batch: group commit), inserts into
//!   the mutable memtable and acknowledges, in timestamp order; it rotates a
//!   full memtable and stalls while `num_memtables` wait to be flushed;
//! - one **flush thread** (`flush.rs`) writes the oldest immutable memtable as
//!   an L0 table, records it in the MANIFEST, publishes it and deletes the WAL;
//! - readers take an `Arc<View>` snapshot (memtables and level tree) under a
//!   brief read lock and never block writers; a transaction keeps the view
//!   of its last point read and reuses it while the view's generation (an
//!   atomic bumped, before the write lock is released, by every publish)
//!   is unchanged, so a run of point reads takes no lock.
//!
//! Lock order: `Oracle::write_order` → `view` → `sync` → `manifest`; none is
//! held across I/O except `manifest` (its own appends) and `write_order`
//! (queueing only).

mod close;
mod compact;
mod flush;
mod gc;
mod open;
mod ops;
mod read;
mod write;

pub use gc::GcReport;
pub use ops::{FlattenProgress, LevelInfo};
pub(crate) use read::get_in;
pub use read::{DbIterator, Item, IterOptions};

use crate::error::{Error, Result};
use crate::levels::{ManifestFile, Tree};
use crate::memtable::Memtable;
use crate::options::{Limits, Options};
use crate::table::BlockCache;
use crate::txn::{Oracle, Txn};
use crate::vfs::{DirectoryLock, Vfs};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

/// What readers see: memtables and tables at one moment.
#[derive(Debug, Clone)]
pub(crate) struct View {
    /// The memtable taking writes (none when read-only).
    pub mutable: Option<Arc<Memtable>>,
    /// Memtables waiting to be flushed, newest first.
    pub immutables: Vec<Arc<Memtable>>,
    /// The tables.
    pub tree: Arc<Tree>,
}

/// The published [`View`] and its generation.
///
/// Every change goes through [`ViewCell::write`], whose guard bumps the
/// generation while it still holds the write lock; anything written into
/// the new view's memtable afterwards (and the oracle's "applied" mark that
/// makes it readable) happens after the bump. So a reader that loads the
/// generation after taking its read timestamp and finds the one it cached
/// holds the current view, and can skip the lock and reference count.
#[derive(Debug)]
pub(crate) struct ViewCell {
    current: RwLock<Arc<View>>,
    generation: AtomicU64,
}

/// Write access to the published view; bumps the generation when dropped.
pub(crate) struct ViewWriteGuard<'a> {
    guard: parking_lot::RwLockWriteGuard<'a, Arc<View>>,
    generation: &'a AtomicU64,
}

impl std::ops::Deref for ViewWriteGuard<'_> {
    type Target = Arc<View>;
    fn deref(&self) -> &Arc<View> {
        &self.guard
    }
}

impl std::ops::DerefMut for ViewWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Arc<View> {
        &mut self.guard
    }
}

impl Drop for ViewWriteGuard<'_> {
    fn drop(&mut self) {
        // Runs before the fields drop, so before the write lock is released.
        self.generation.fetch_add(1, Ordering::Release);
    }
}

impl ViewCell {
    pub fn new(view: View) -> Self {
        ViewCell {
            current: RwLock::new(Arc::new(view)),
            generation: AtomicU64::new(0),
        }
    }

    /// The current view.
    pub fn read(&self) -> Arc<View> {
        self.current.read().clone()
    }

    /// The current view with the generation it belongs to.
    pub fn read_with_generation(&self) -> (u64, Arc<View>) {
        let g = self.current.read();
        (self.generation.load(Ordering::Acquire), g.clone())
    }

    /// The generation now: equal to a cached one means that view is current.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Exclusive access to change the view.
    pub fn write(&self) -> ViewWriteGuard<'_> {
        ViewWriteGuard {
            guard: self.current.write(),
            generation: &self.generation,
        }
    }
}

/// A message to the write thread.
pub(crate) enum WriterMsg {
    /// Commit these writes.
    Write(WriteRequest),
    /// Run this on the write thread, after everything queued before it.
    Exec(Box<dyn FnOnce(&mut write::Writer) + Send>),
}

/// A committed transaction on its way to the write thread.
/// The origin of one value-log GC rewrite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RewriteOf {
    /// The entry's version, kept.
    pub version: u64,
    /// Where the value is now.
    pub from: crate::format::ValuePointer,
}

#[derive(Debug)]
pub(crate) struct WriteRequest {
    pub ts: u64,
    pub entries: Vec<crate::txn::PendingWrite>,
    /// For a value-log GC rewrite: where each entry comes from. Such a
    /// request is written without transaction framing at the entries' own
    /// versions, does not move the read watermark, and skips any entry that
    /// is no longer its key's newest copy when the write thread gets to it.
    pub rewrite: Option<Vec<RewriteOf>>,
    pub done: crossbeam_channel::Sender<Result<()>>,
}

/// State shared by the write and flush threads and `close`.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    /// The flush thread should finish the queue and exit.
    pub shutdown_flush: bool,
    /// The compactors should exit.
    pub shutdown_compactors: bool,
    /// Flushes are paused (drop-all, drop-prefix).
    pub flush_paused: bool,
    /// The flush thread is writing a table.
    pub flushing: bool,
}

/// Counters for people and benchmarks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub stall_nanos: AtomicU64,
    pub max_stall_nanos: AtomicU64,
    pub flushes: AtomicU64,
    pub commits: AtomicU64,
    pub compactions: AtomicU64,
    /// Compactions from each level into a lower one.
    pub compactions_down: [AtomicU64; 16],
    /// Bytes of tables written by compactions.
    pub compaction_bytes_written: AtomicU64,
    /// Bytes value-log GC returned.
    pub vlog_gc_bytes: AtomicU64,
    /// Bytes written to disk: WAL appends and tables (flush and compaction).
    pub bytes_written: AtomicU64,
    /// Bytes of keys and values committed by users.
    pub user_bytes: AtomicU64,
}

/// Engine statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Time writes spent stalled waiting for flushes, in nanoseconds.
    pub stall_nanos: u64,
    /// The longest single stall, in nanoseconds.
    pub max_stall_nanos: u64,
    /// Memtables flushed to L0.
    pub flushes: u64,
    /// Transactions committed.
    pub commits: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Of those, the ones from each level into a lower level (L0 → base
    /// counts at 0); in-place rewrites and L0 → L0 are not counted here.
    pub compactions_down: [u64; 16],
    /// Bytes written to disk: WAL appends and table files.
    pub bytes_written: u64,
    /// Bytes of keys and values committed.
    pub user_bytes: u64,
    /// Tables per level.
    pub tables_per_level: [usize; 16],
    /// Bytes per level.
    pub bytes_per_level: [u64; 16],
    /// Memtables waiting to flush.
    pub immutable_memtables: usize,
    /// Bytes of decoded blocks in the block cache (0 without one).
    pub block_cache_bytes: u64,
}

pub(crate) struct DbInner {
    pub opts: Options,
    pub limits: Limits,
    pub vfs: Arc<dyn Vfs>,
    pub dir: PathBuf,
    pub value_dir: PathBuf,
    pub view: ViewCell,
    pub oracle: Oracle,
    pub sender: Mutex<Option<crossbeam_channel::Sender<WriterMsg>>>,
    pub closed: AtomicBool,
    pub poisoned: Mutex<Option<String>>,
    pub sync: Mutex<SyncState>,
    pub cond: Condvar,
    pub manifest: Mutex<Option<ManifestFile>>,
    pub cache: Option<BlockCache>,
    pub vlogs: RwLock<BTreeMap<u32, Arc<crate::vlog::VlogFile>>>,
    pub next_file_id: AtomicU64,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
    pub compactors: Mutex<Vec<JoinHandle<()>>>,
    pub compact_status: Mutex<crate::levels::compact_status::CompactStatus>,
    /// Above zero, compactors idle (flatten, drop-all, drop-prefix).
    pub compaction_paused: std::sync::atomic::AtomicUsize,
    /// Last-level tables produced by stale rewrites: not stale-picked again.
    pub stale_rewritten: Mutex<std::collections::HashSet<u64>>,
    pub discard: Mutex<Option<crate::discard::DiscardStats>>,
    /// Held while a value-log GC runs.
    pub gc_lock: Mutex<()>,
    /// Value-log files GC removed, kept open for readers that began before:
    /// (applied timestamp, reader sequence at retirement, file).
    pub retired_vlogs: Mutex<Vec<(u64, u64, Arc<crate::vlog::VlogFile>)>>,
    /// Value-log GC's samples: per file, the user bytes written when it
    /// was last sampled and found not worth collecting.
    pub gc_sampled: Mutex<std::collections::HashMap<u32, u64>>,
    /// The value threshold in force: `Options::value_threshold`, or the
    /// dynamic one (`vlog_percentile`), which the write thread updates.
    pub value_threshold: std::sync::atomic::AtomicU64,
    /// Share of deletes in L0 tables flushed by this process (by table id),
    /// for deletion-triggered compaction.
    pub l0_deletes: Mutex<std::collections::HashMap<u64, f64>>,
    /// The commit count last seen by the idle check, and since when.
    /// (commits, since when, whether the idle flush ran for this period).
    pub idle_probe: Mutex<(u64, std::time::Instant, bool)>,
    /// The histogram behind the dynamic threshold, when enabled.
    pub threshold_hist: Mutex<Option<crate::vlog::threshold::DynamicThreshold>>,
    pub writer_exit: Mutex<Option<JoinHandle<write::WriterExit>>>,
    pub locks: Mutex<Vec<DirectoryLock>>,
    pub counters: Counters,
}

impl std::fmt::Debug for DbInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.dir)
            .field("read_only", &self.opts.read_only)
            .finish()
    }
}

impl DbInner {
    pub fn view(&self) -> Arc<View> {
        self.view.read()
    }

    pub fn check_writable(&self) -> Result<()> {
        if self.opts.read_only {
            return Err(Error::ReadOnly);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if let Some(cause) = self.poisoned.lock().clone() {
            return Err(Error::WritesPoisoned { cause });
        }
        Ok(())
    }

    pub fn poison(&self, cause: &Error) {
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(cause.to_string());
        }
    }
}

/// An open database. Cheap to clone; every clone is the same database.
/// Dropping the last clone closes it (best effort; call [`Db::close`] to see errors).
#[derive(Clone, Debug)]
pub struct Db {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    inner: Arc<DbInner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = close::close(&self.inner);
    }
}

impl Db {
    /// Opens (or creates) a database.
    pub fn open(opts: Options) -> Result<Db> {
        let inner = open::open(opts, None)?;
        Ok(Db {
            handle: Arc::new(Handle { inner }),
        })
    }

    /// Opens a database through a given file system (tests use
    /// [`crate::vfs::MemVfs`] to simulate crashes).
    pub fn open_with_vfs(opts: Options, vfs: Arc<dyn Vfs>) -> Result<Db> {
        let inner = open::open(opts, Some(vfs))?;
        Ok(Db {
            handle: Arc::new(Handle { inner }),
        })
    }

    fn inner(&self) -> &Arc<DbInner> {
        &self.handle.inner
    }

    /// Starts a read-write transaction.
    pub fn begin_write(&self) -> Txn {
        Txn::new(self.inner().clone(), true)
    }

    /// Starts a read-only transaction.
    pub fn begin_read(&self) -> Txn {
        Txn::new(self.inner().clone(), false)
    }

    /// Starts a write batch: bulk writes committed as a pipeline of
    /// transactions (Badger's `NewWriteBatch`).
    pub fn new_write_batch(&self) -> crate::txn::WriteBatch {
        crate::txn::WriteBatch::new(self.inner().clone())
    }

    /// Runs `f` in a read-write transaction and commits it if `f` succeeds.
    /// Nothing is retried: a [`Error::Conflict`] is returned to the caller.
    pub fn update<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        let mut txn = self.begin_write();
        let out = f(&mut txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read-only transaction.
    pub fn view<T>(&self, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
        let mut txn = self.begin_read();
        f(&mut txn)
    }

    /// Closes the database: refuses new writes, flushes the memtable, waits
    /// for background work, syncs and releases the locks. Later calls (and
    /// calls on clones) return `Ok`; transactions then get [`Error::Closed`].
    pub fn close(&self) -> Result<()> {
        close::close(self.inner())
    }

    /// Whether the database has been closed.
    pub fn is_closed(&self) -> bool {
        self.inner().closed.load(Ordering::Acquire)
    }

    /// The highest committed version.
    pub fn max_version(&self) -> u64 {
        self.inner().oracle.applied()
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.inner().opts
    }

    /// Statistics.
    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let view = inner.view();
        let mut tables_per_level = [0usize; 16];
        let mut bytes_per_level = [0u64; 16];
        for (i, l) in view.tree.levels().iter().enumerate().take(16) {
            tables_per_level[i] = l.len();
            bytes_per_level[i] = l.iter().map(|t| t.size()).sum();
        }
        let c = &inner.counters;
        Stats {
            stall_nanos: c.stall_nanos.load(Ordering::Relaxed),
            max_stall_nanos: c.max_stall_nanos.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            compactions_down: std::array::from_fn(|i| c.compactions_down[i].load(Ordering::Relaxed)),
            bytes_written: c.bytes_written.load(Ordering::Relaxed),
            user_bytes: c.user_bytes.load(Ordering::Relaxed),
            tables_per_level,
            bytes_per_level,
            immutable_memtables: view.immutables.len(),
            block_cache_bytes: inner.cache.as_ref().map_or(0, |c| c.weight()),
        }
    }

    /// Compacts until all tables sit in one level, with `workers` parallel
    /// compactions (Badger's `Flatten`).
    pub fn flatten(&self, workers: usize) -> Result<()> {
        ops::flatten(self.inner(), workers, &mut |_| {})
    }

    /// [`Db::flatten`], reporting progress after every round.
    pub fn flatten_with(&self, workers: usize, progress: &mut dyn FnMut(&FlattenProgress)) -> Result<()> {
        ops::flatten(self.inner(), workers, progress)
    }

    /// Deletes every key: all tables (through the MANIFEST), memtables and
    /// their WALs, and value logs; table and value-log ids restart at 1. The
    /// database stays open and usable. Commits wait while it runs; iterators
    /// opened before it keep their snapshot.
    pub fn drop_all(&self) -> Result<()> {
        ops::drop_all(self.inner())
    }

    /// Deletes every key that starts with one of `prefixes`.
    pub fn drop_prefix(&self, prefixes: &[&[u8]]) -> Result<()> {
        let owned: Vec<Vec<u8>> = prefixes.iter().map(|p| p.to_vec()).collect();
        ops::drop_prefix(self.inner(), &owned)
    }

    /// Badger's `RunValueLogGC`: rewrites the value-log file with the most
    /// garbage if at least `discard_ratio` of it is garbage, and removes it.
    /// [`Error::NoRewrite`] when no file qualifies; [`Error::Rejected`] when
    /// another GC is running. Call it in a loop until `NoRewrite`.
    pub fn run_value_log_gc(&self, discard_ratio: f64) -> Result<GcReport> {
        gc::run(self.inner(), discard_ratio)
    }

    /// Per-level statistics (Badger's `Levels`).
    pub fn levels(&self) -> Vec<LevelInfo> {
        ops::levels(self.inner())
    }

    /// Per-table statistics (Badger's `Tables`), by level then key order.
    pub fn tables(&self) -> Vec<crate::inspect::TableInfo> {
        let view = self.inner().view();
        let mut out = Vec::new();
        for (level, tables) in view.tree.levels().iter().enumerate() {
            for t in tables {
                out.push(crate::inspect::TableInfo::of(t, level));
            }
        }
        out
    }

    /// Total bytes of tables and of value logs (Badger's `Size`).
    pub fn size(&self) -> (u64, u64) {
        let inner = self.inner();
        let lsm = inner
            .view()
            .tree
            .levels()
            .iter()
            .flatten()
            .map(|t| t.size())
            .sum();
        let vlog = inner.vlogs.read().values().map(|f| f.valid_len()).sum();
        (lsm, vlog)
    }

    /// Writes the memtable and every memtable waiting to be flushed as L0
    /// tables, and waits until they are durable in the tree.
    pub fn flush(&self) -> Result<()> {
        ops::flush(self.inner())
    }

    /// Blocks until every memtable waiting to be flushed has been written
    /// as an L0 table (the mutable memtable is left as it is).
    pub fn wait_for_flushes(&self) -> Result<()> {
        flush::wait_idle(self.inner())
    }
}
