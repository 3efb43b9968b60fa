//! Write batches: many writes, committed as a pipeline of transactions.
//!
//! Badger's `WriteBatch` (`batch.go`). Writes go into a transaction until
//! it is full (Badger's transaction limits, or `max_entries`), which is
//! then committed without waiting ([`Txn::commit_async`]) while the next
//! one fills: building a transaction and applying the previous one overlap.
//! At most `max_pending` commits are in flight; [`WriteBatch::flush`]
//! commits the last one and waits for all. The batch as a whole is not
//! atomic: each transaction is, and they apply in order. Writes are blind
//! (nothing is read), so they never conflict. The first failed commit's
//! error is returned by the call that finds it and by `flush`, and the
//! batch refuses further writes.

use super::{Entry, PendingCommit, PendingWrite, Txn};
use crate::db::DbInner;
use crate::error::{Error, Result};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;

/// Commits in flight by default (Badger's write batch throttle).
const DEFAULT_MAX_PENDING: usize = 16;

/// A pipeline of transactions for bulk writes; see the module docs.
///
/// ```
/// # fn main() -> brock::Result<()> {
/// let db = brock::Db::open(brock::Options::in_memory())?;
/// let mut wb = db.new_write_batch();
/// for i in 0..10_000u32 {
///     wb.set(format!("key{i:05}"), i.to_le_bytes().to_vec())?;
/// }
/// wb.flush()?;
/// assert!(db.view(|t| t.get(b"key09999"))?.is_some());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WriteBatch {
    db: Arc<DbInner>,
    txn: Option<Txn>,
    max_entries: usize,
    pending: VecDeque<PendingCommit>,
    max_pending: usize,
    failed: Option<String>,
}

impl WriteBatch {
    pub(crate) fn new(db: Arc<DbInner>) -> Self {
        WriteBatch {
            db,
            txn: None,
            max_entries: 0,
            pending: VecDeque::new(),
            max_pending: DEFAULT_MAX_PENDING,
            failed: None,
        }
    }

    /// Commits a transaction once it holds `n` writes (0, the default:
    /// only when the next write would make it too big).
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// At most `n` commits in flight (at least 1; default 16).
    #[must_use]
    pub fn max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.max(1);
        self
    }

    /// Buffers a set of `key` to `value`.
    pub fn set(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<()> {
        self.set_entry(Entry::new(key, value))
    }

    /// Buffers a set with TTL, user meta or discard flag.
    pub fn set_entry(&mut self, e: Entry) -> Result<()> {
        self.write(PendingWrite::set(e))
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: impl Into<Bytes>) -> Result<()> {
        self.write(PendingWrite::delete(key.into()))
    }

    fn write(&mut self, w: PendingWrite) -> Result<()> {
        self.check()?;
        let txn = self.txn.get_or_insert_with(|| Txn::new(self.db.clone(), true));
        if let Err(refused) = txn.push(w) {
            let (e, w) = *refused;
            if !matches!(e, Error::TxnTooBig { .. }) || self.held() == 0 {
                return Err(e);
            }
            // Full: commit what it holds and put the write in a new one
            // (where it fails again only if it is too big on its own).
            self.commit_current()?;
            let txn = self.txn.get_or_insert_with(|| Txn::new(self.db.clone(), true));
            txn.push(w).map_err(|b| b.0)?;
        }
        if self.max_entries > 0 && self.held() >= self.max_entries {
            self.commit_current()?;
        }
        Ok(())
    }

    /// Writes in the current transaction (its count includes the commit
    /// marker).
    fn held(&self) -> usize {
        self.txn
            .as_ref()
            .map_or(0, |t| t.count.saturating_sub(1) as usize)
    }

    /// Queues the current transaction's commit, first waiting for the
    /// oldest in flight when `max_pending` are.
    fn commit_current(&mut self) -> Result<()> {
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        while self.pending.len() >= self.max_pending {
            if let Some(p) = self.pending.pop_front() {
                self.settle(p.wait())?;
            }
        }
        let queued = txn.commit_async();
        let p = self.settle(queued)?;
        self.pending.push_back(p);
        Ok(())
    }

    /// Records the first failure, so later calls refuse to go on.
    fn settle<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r
            && self.failed.is_none()
        {
            self.failed = Some(e.to_string());
        }
        r
    }

    fn check(&self) -> Result<()> {
        match &self.failed {
            Some(cause) => Err(Error::BatchFailed { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Commits what is buffered and waits for every commit in flight:
    /// `Ok` means every write of the batch is applied.
    pub fn flush(mut self) -> Result<()> {
        self.check()?;
        self.commit_current()?;
        while let Some(p) = self.pending.pop_front() {
            self.settle(p.wait())?;
        }
        Ok(())
    }

    /// Drops what is buffered and not yet committed; commits already queued
    /// still apply (dropping the batch does the same).
    pub fn cancel(mut self) {
        self.txn = None;
    }
}
