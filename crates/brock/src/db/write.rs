//! The write thread: WAL append, group commit, memtable insert, rotation.
//!
//! Badger's `doWrites`/`writeRequests`/`ensureRoomForWrite`. Requests arrive
//! in commit-timestamp order. The thread drains up to `MAX_BATCH` of them,
//! encodes each as a framed transaction (entries with `BIT_TXN`, then the
//! `!badger!txn` marker), appends the batch to the WAL with one write, syncs
//! once if `sync_writes` (every committer in the batch shares that sync),
//! and only then inserts into the memtable, advances the read watermark and
//! acknowledges. A failed append or sync poisons the database: the batch and
//! everything after it are refused, since their durability is unknown.
//!
//! Before each request, a full memtable (accounted size or WAL length at
//! `mem_table_size`) is rotated: a new WAL and memtable replace it and it
//! joins the flush queue. While `num_memtables` memtables wait, the thread
//! stalls (Badger's write stall), counting the time.

use super::{DbInner, View, WriteRequest};
use crate::error::{Error, Result};
use crate::format::key::append_key_with_version;
use crate::format::meta::BIT_TXN;
use crate::memtable::{MemValue, Memtable};
use crate::vfs::mem_file_name;
use crate::wal::{LogWriter, TxnEntry, encode_txn};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MAX_BATCH: usize = 1000;

/// What the write thread hands back when its queue closes.
#[derive(Debug)]
pub(crate) struct WriterExit {
    pub wal: Option<LogWriter>,
    pub memtable: Arc<Memtable>,
}

pub(crate) struct Writer {
    pub db: Arc<DbInner>,
    pub wal: Option<LogWriter>,
    pub memtable: Arc<Memtable>,
    pub next_mem_fid: u32,
    buf: Vec<u8>,
    key_buf: Vec<u8>,
}

impl Writer {
    pub fn new(db: Arc<DbInner>, wal: Option<LogWriter>, memtable: Arc<Memtable>, next_mem_fid: u32) -> Self {
        Writer { db, wal, memtable, next_mem_fid, buf: Vec::new(), key_buf: Vec::new() }
    }

    /// Runs until the request queue closes.
    pub fn run(mut self, rx: crossbeam_channel::Receiver<WriteRequest>) -> WriterExit {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Ok(first) = rx.recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.process(&mut batch);
        }
        WriterExit { wal: self.wal, memtable: self.memtable }
    }

    fn process(&mut self, batch: &mut Vec<WriteRequest>) {
        let mut start = 0;
        let mut result = Ok(());
        for i in 0..batch.len() {
            if let Some(cause) = self.db.poisoned.lock().clone() {
                result = Err(Error::WritesPoisoned { cause });
                break;
            }
            if self.is_full() && !self.memtable.is_empty() {
                result = self.commit_segment(&batch[start..i]);
                start = i;
                if result.is_ok() {
                    result = self.rotate();
                }
                if result.is_err() {
                    break;
                }
            }
            let req = &batch[i];
            let entries: Vec<TxnEntry<'_>> = req
                .entries
                .iter()
                .map(|w| TxnEntry {
                    key: &w.key,
                    value: &w.value,
                    meta: w.meta,
                    user_meta: w.user_meta,
                    expires_at: w.expires_at,
                })
                .collect();
            if self.wal.is_some() {
                encode_txn(&mut self.buf, &mut self.key_buf, req.ts, &entries);
            }
        }
        if result.is_ok() {
            result = self.commit_segment(&batch[start..]);
            start = batch.len();
        }
        if let Err(e) = result {
            self.db.poison(&e);
            let cause = e.to_string();
            for req in batch.drain(start..) {
                let _ = req.done.send(Err(Error::WritesPoisoned { cause: cause.clone() }));
            }
            self.buf.clear();
        }
        batch.clear();
    }

    fn is_full(&self) -> bool {
        let limit = self.db.opts.mem_table_size;
        self.memtable.size() >= limit || self.wal.as_ref().is_some_and(|w| w.offset() >= limit)
    }

    /// Makes the encoded requests durable as asked, applies them, acknowledges.
    fn commit_segment(&mut self, reqs: &[WriteRequest]) -> Result<()> {
        if reqs.is_empty() {
            return Ok(());
        }
        if let Some(wal) = &mut self.wal {
            wal.append(&self.buf)?;
            self.buf.clear();
            if self.db.opts.sync_writes {
                wal.sync()?;
            }
        }
        for req in reqs {
            for w in &req.entries {
                let mut key = Vec::with_capacity(w.key.len() + 8);
                append_key_with_version(&mut key, &w.key, req.ts);
                self.memtable.put(
                    Bytes::from(key),
                    MemValue { meta: w.meta | BIT_TXN, user_meta: w.user_meta, expires_at: w.expires_at, value: w.value.clone() },
                );
            }
        }
        if let Some(last) = reqs.last() {
            self.db.oracle.set_applied(last.ts);
        }
        self.db.counters.commits.fetch_add(reqs.len() as u64, Ordering::Relaxed);
        for req in reqs {
            let _ = req.done.send(Ok(()));
        }
        Ok(())
    }

    /// Replaces the full memtable with a new one (and WAL) and queues it for flushing.
    fn rotate(&mut self) -> Result<()> {
        self.stall_for_memtables()?;
        let (wal, fid) = if self.db.opts.in_memory {
            (None, 0)
        } else {
            let fid = self.next_mem_fid;
            let path = self.db.dir.join(mem_file_name(fid));
            let mut w = LogWriter::create(self.db.vfs.as_ref(), &path, fid)?;
            if self.db.opts.sync_writes {
                w.sync()?;
                self.db.vfs.sync_dir(&self.db.dir)?;
            }
            self.next_mem_fid += 1;
            (Some(w), fid)
        };
        let new_mt = Arc::new(Memtable::new(fid));
        {
            let mut v = self.db.view.write();
            let mut next: View = (**v).clone();
            next.immutables.insert(0, self.memtable.clone());
            next.mutable = Some(new_mt.clone());
            *v = Arc::new(next);
        }
        self.memtable = new_mt;
        self.wal = wal;
        let _g = self.db.sync.lock();
        self.db.cond.notify_all();
        Ok(())
    }

    fn stall_for_memtables(&self) -> Result<()> {
        let started = Instant::now();
        let mut g = self.db.sync.lock();
        while self.db.view().immutables.len() >= self.db.opts.num_memtables as usize {
            if let Some(cause) = self.db.poisoned.lock().clone() {
                return Err(Error::WritesPoisoned { cause });
            }
            self.db.cond.wait_for(&mut g, Duration::from_millis(50));
        }
        let waited = started.elapsed();
        if waited > Duration::from_micros(100) {
            self.db.counters.stall_nanos.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}
