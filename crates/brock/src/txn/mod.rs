//! Transactions: snapshot reads, buffered writes, commit.
//!
//! Badger's `txn.go` and `batch.go` (write batches: [`WriteBatch`]).
//! A transaction reads at the timestamp the oracle gives it when it starts
//! and buffers its writes; `commit` checks conflicts, takes a commit
//! timestamp and hands the writes to the write thread, returning once they
//! are applied (and durable, with `sync_writes`). A transaction dropped
//! without `commit` is discarded. Badger's limits apply: an empty key, a key
//! under `!badger!` or longer than 65,000 bytes is refused; a transaction
//! over `max_batch_count` entries or `max_batch_size` bytes gets
//! [`Error::TxnTooBig`].

mod batch;
mod oracle;

pub use batch::WriteBatch;
pub use oracle::{Oracle, fingerprint};

use crate::db::{DbInner, DbIterator, Item, IterOptions, View, WriteRequest, WriterMsg};
use crate::error::{Error, Result};
use crate::format::key::{INTERNAL_PREFIX, MAX_KEY_SIZE};
use crate::format::meta::{BIT_DELETE, BIT_DISCARD_EARLIER_VERSIONS};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A write as the user describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    key: Bytes,
    value: Bytes,
    user_meta: u8,
    expires_at: u64,
    meta: u8,
}

impl Entry {
    /// A set of `key` to `value`.
    pub fn new(key: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Entry {
            key: key.into(),
            value: value.into(),
            user_meta: 0,
            expires_at: 0,
            meta: 0,
        }
    }

    /// Expires `ttl` from now (Unix seconds, as Badger stores it).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.expires_at = crate::format::meta::now_secs().saturating_add(ttl.as_secs());
        self
    }

    /// Expires at an absolute Unix time in seconds (0 = never).
    #[must_use]
    pub fn with_expires_at(mut self, unix_secs: u64) -> Self {
        self.expires_at = unix_secs;
        self
    }

    /// Attaches the user's meta byte.
    #[must_use]
    pub fn with_user_meta(mut self, meta: u8) -> Self {
        self.user_meta = meta;
        self
    }

    /// Lets compaction drop older versions of this key (Badger's `WithDiscard`).
    #[must_use]
    pub fn with_discard_earlier_versions(mut self) -> Self {
        self.meta |= BIT_DISCARD_EARLIER_VERSIONS;
        self
    }

    /// The key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &[u8] {
        &self.value
    }
}

/// A buffered write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWrite {
    /// User key.
    pub key: Bytes,
    /// Value (empty for a delete).
    pub value: Bytes,
    /// Meta bits (delete, discard-earlier-versions).
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds.
    pub expires_at: u64,
}

impl PendingWrite {
    /// The write of entry `e`.
    pub(crate) fn set(e: Entry) -> Self {
        PendingWrite {
            key: e.key,
            value: e.value,
            meta: e.meta,
            user_meta: e.user_meta,
            expires_at: e.expires_at,
        }
    }

    /// A delete of `key`.
    pub(crate) fn delete(key: Bytes) -> Self {
        PendingWrite {
            key,
            value: Bytes::new(),
            meta: BIT_DELETE,
            user_meta: 0,
            expires_at: 0,
        }
    }
}

/// A transaction. Read-write transactions come from
/// [`Db::begin_write`](crate::Db::begin_write), read-only ones from
/// [`Db::begin_read`](crate::Db::begin_read).
pub struct Txn {
    db: Arc<DbInner>,
    read_ts: u64,
    update: bool,
    pending: BTreeMap<Bytes, PendingWrite>,
    reads: Arc<parking_lot::Mutex<Vec<u64>>>,
    size: u64,
    count: u64,
    /// Bytes of this transaction's values bound for the value log.
    vlog_bytes: u64,
    /// Registered as a reader, so that a value-log file GC removes stays
    /// readable (open, unlinked) until every transaction that began before
    /// the removal has finished.
    reader_seq: u64,
    done: bool,
    /// The view of the last point read and its generation, reused while
    /// current (see `db::ViewCell`).
    view: Option<(u64, Arc<View>)>,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn")
            .field("read_ts", &self.read_ts)
            .field("update", &self.update)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Txn {
    pub(crate) fn new(db: Arc<DbInner>, update: bool) -> Self {
        let read_ts = db.oracle.begin();
        let reader_seq = db.oracle.begin_reader();
        Txn {
            db,
            reader_seq,
            read_ts,
            update,
            pending: BTreeMap::new(),
            reads: Arc::default(),
            // Badger counts the transaction marker from the start.
            size: 21,
            count: 1,
            vlog_bytes: 0,
            done: false,
            view: None,
        }
    }

    /// The snapshot timestamp this transaction reads at.
    pub fn read_ts(&self) -> u64 {
        self.read_ts
    }

    fn check_open(&self) -> Result<()> {
        if self.done {
            return Err(Error::TxnDone);
        }
        if self.db.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Buffers a set of `key` to `value`.
    pub fn set(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<()> {
        self.set_entry(Entry::new(key, value))
    }

    /// Buffers a set with TTL, user meta or discard flag.
    pub fn set_entry(&mut self, e: Entry) -> Result<()> {
        self.modify(PendingWrite::set(e))
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: impl Into<Bytes>) -> Result<()> {
        self.modify(PendingWrite::delete(key.into()))
    }

    fn modify(&mut self, w: PendingWrite) -> Result<()> {
        self.push(w).map_err(|b| b.0)
    }

    /// Buffers `w`, or hands it back with the reason it was refused.
    pub(crate) fn push(&mut self, w: PendingWrite) -> std::result::Result<(), Box<(Error, PendingWrite)>> {
        match self.admit(&w) {
            Ok((count, size)) => {
                self.count = count;
                self.size = size;
                self.pending.insert(w.key.clone(), w);
                Ok(())
            }
            Err(e) => Err(Box::new((e, w))),
        }
    }

    /// Checks `w` against the transaction's state and limits: the entry
    /// count and size with it added.
    fn admit(&mut self, w: &PendingWrite) -> Result<(u64, u64)> {
        self.check_open()?;
        if !self.update {
            return Err(Error::ReadOnly);
        }
        if self.db.opts.read_only {
            return Err(Error::ReadOnly);
        }
        validate_key(&w.key)?;
        let limit = self.db.limits.max_value_size;
        if w.value.len() as u64 > limit {
            return Err(Error::ValueTooLarge {
                len: w.value.len() as u64,
                limit,
            });
        }
        // Badger's checkSize: key + value (or a 12-byte pointer when the
        // value goes to the value log) + 2 meta bytes, plus 10 per entry.
        let threshold = self.db.value_threshold.load(std::sync::atomic::Ordering::Relaxed);
        let in_log = !self.db.opts.in_memory && w.value.len() as u64 >= threshold;
        let stored = if in_log {
            crate::format::VALUE_POINTER_LEN as u64
        } else {
            w.value.len() as u64
        };
        let est = w.key.len() as u64 + stored + 2 + 10;
        if in_log {
            // Offsets in a value-log file are 32-bit: one transaction's values
            // must fit in one file.
            self.vlog_bytes += w.value.len() as u64 + w.key.len() as u64 + 40;
            if self.vlog_bytes > self.db.opts.value_log_file_size.max(1 << 30) {
                self.vlog_bytes -= w.value.len() as u64 + w.key.len() as u64 + 40;
                return Err(Error::InvalidArgument {
                    name: "value",
                    reason: "a transaction's large values must fit in one value-log file".into(),
                });
            }
        }
        let (count, size) = (self.count + 1, self.size + est);
        let l = self.db.limits;
        if count >= l.max_batch_count || size >= l.max_batch_size {
            return Err(Error::TxnTooBig {
                entries: count,
                bytes: size,
                max_entries: l.max_batch_count,
                max_bytes: l.max_batch_size,
            });
        }
        Ok((count, size))
    }

    /// Reads the newest visible version of `key`: this transaction's own
    /// pending write if any, else the snapshot. `None` when absent, deleted
    /// or expired.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Item>> {
        self.check_open()?;
        if key.is_empty() {
            return Err(Error::InvalidKey { reason: "empty key" });
        }
        if self.update {
            if let Some(w) = self.pending.get(key) {
                return Ok(Item::from_pending(w, self.read_ts));
            }
            if self.db.oracle.detects_conflicts() {
                self.reads.lock().push(fingerprint(key));
            }
        }
        let cell = &self.db.view;
        let view = match &self.view {
            Some((g, v)) if *g == cell.generation() => v,
            _ => &self.view.insert(cell.read_with_generation()).1,
        };
        crate::db::get_in(&self.db, view, key, self.read_ts)
    }

    /// Iterates the snapshot (merged with this transaction's pending writes).
    pub fn iter(&mut self, opts: IterOptions) -> Result<DbIterator> {
        self.check_open()?;
        let pending: Vec<PendingWrite> = if self.update {
            self.pending.values().cloned().collect()
        } else {
            Vec::new()
        };
        // As in Badger, keys an update transaction iterates over count as reads.
        let reads = (self.update && self.db.oracle.detects_conflicts()).then(|| self.reads.clone());
        DbIterator::new(self.db.clone(), self.read_ts, opts, pending, reads)
    }

    /// Commits: checks conflicts, takes a timestamp, and returns once the
    /// writes are applied. A transaction with no writes just ends.
    pub fn commit(self) -> Result<()> {
        self.commit_async()?.wait()
    }

    /// Commits without waiting (Badger's `CommitWith`): conflicts are
    /// checked and the timestamp taken now, and the writes are queued; the
    /// returned [`PendingCommit`] says when they are applied (and durable,
    /// with `sync_writes`) or why not. Commits are applied in the order
    /// they were queued, so a caller can start building the next one
    /// meanwhile. Until `wait` returns `Ok`, the writes may not be visible.
    pub fn commit_async(mut self) -> Result<PendingCommit> {
        self.check_open()?;
        if self.pending.is_empty() {
            self.finish();
            return Ok(PendingCommit { done: None });
        }
        self.db.check_writable()?;
        let mut entries: Vec<PendingWrite> = std::mem::take(&mut self.pending).into_values().collect();
        let threshold = self.db.value_threshold.load(std::sync::atomic::Ordering::Relaxed);
        share_short_values(&mut entries, threshold);
        let writes = if self.db.oracle.detects_conflicts() {
            entries.iter().map(|w| fingerprint(&w.key)).collect()
        } else {
            Vec::new()
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let db = self.db.clone();
        {
            let _order = db.oracle.write_order.lock();
            let sender = db.sender.lock().clone().ok_or(Error::Closed)?;
            let reads = std::mem::take(&mut *self.reads.lock());
            // Still registered as active: the committed write sets newer than
            // our read timestamp cannot have been dropped yet.
            let ts = db.oracle.commit_ts(self.read_ts, &reads, writes);
            self.finish();
            sender
                .send(WriterMsg::Write(WriteRequest {
                    ts: ts?,
                    entries,
                    rewrite: None,
                    done: tx,
                }))
                .map_err(|_| Error::Closed)?;
        }
        Ok(PendingCommit { done: Some(rx) })
    }

    /// Ends the transaction without committing (dropping it does the same).
    pub fn discard(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.db.oracle.end(self.read_ts);
            self.db.oracle.end_reader(self.reader_seq);
        }
    }
}

/// Values up to this many bytes are packed into one buffer per commit.
const SHARED_VALUE_MAX: usize = 4096;

/// Copies the short values of `entries` that stay inline in the tree (under
/// `threshold` bytes) into one buffer and points each entry at its slice.
///
/// The memtable keeps these slices. A point read that hits the memtable
/// then shares the value (one reference count on a buffer a whole commit
/// shares, so usually in cache) instead of allocating a copy, and a flushed
/// memtable frees one buffer per commit instead of one per value. The copy
/// and the freeing of the callers' own buffers happen here, on the
/// committing thread, not on the one write thread every commit goes
/// through. Longer values are left as they are.
fn share_short_values(entries: &mut [PendingWrite], threshold: u64) {
    let packed = |w: &PendingWrite| {
        let len = w.value.len();
        len > crate::table::INLINE_BYTES && len <= SHARED_VALUE_MAX && (len as u64) < threshold
    };
    let total: usize = entries.iter().filter(|w| packed(w)).map(|w| w.value.len()).sum();
    if total == 0 {
        return;
    }
    let mut buf = Vec::with_capacity(total);
    for w in entries.iter().filter(|w| packed(w)) {
        buf.extend_from_slice(&w.value);
    }
    let shared = Bytes::from(buf);
    let mut at = 0;
    for w in entries.iter_mut().filter(|w| packed(w)) {
        let len = w.value.len();
        w.value = shared.slice(at..at + len);
        at += len;
    }
}

/// A commit queued by [`Txn::commit_async`].
#[derive(Debug)]
#[must_use = "a commit's outcome is known only by waiting for it"]
pub struct PendingCommit {
    done: Option<crossbeam_channel::Receiver<Result<()>>>,
}

impl PendingCommit {
    /// Waits until the commit is applied, or returns why it was not.
    pub fn wait(self) -> Result<()> {
        match self.done {
            None => Ok(()),
            Some(rx) => rx.recv().map_err(|_| Error::Closed)?,
        }
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Badger's key rules.
pub fn validate_key(key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidKey { reason: "empty key" });
    }
    if key.starts_with(INTERNAL_PREFIX) {
        return Err(Error::InvalidKey {
            reason: "keys starting with !badger! are reserved",
        });
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::InvalidKey {
            reason: "key longer than 65,000 bytes",
        });
    }
    Ok(())
}
