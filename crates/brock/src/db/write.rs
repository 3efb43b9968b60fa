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

use super::{DbInner, View, WriteRequest, WriterMsg};
use crate::error::{Error, Result};
use crate::format::entry::{EntryRef, encode_entry};
use crate::format::key::append_key_with_version;
use crate::format::meta::{BIT_TXN, BIT_VALUE_POINTER};
use crate::format::{VALUE_POINTER_LEN, ValuePointer};
use crate::memtable::{MemValue, Memtable};
use crate::vfs::mem_file_name;
use crate::vlog::VlogFile;
use crate::wal::{LogWriter, TxnEntry, encode_txn};
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

/// Where one entry of a request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// The value is stored inline.
    Inline,
    /// The value went to the value log.
    Ptr(ValuePointer),
    /// A GC rewrite whose key has a newer version: not written.
    Skip,
}

pub(crate) struct Writer {
    pub db: Arc<DbInner>,
    pub wal: Option<LogWriter>,
    pub memtable: Arc<Memtable>,
    pub next_mem_fid: u32,
    /// The active value-log file (none in memory or read-only).
    vlog: Option<LogWriter>,
    /// Entries in the active value-log file.
    vlog_entries: u32,
    /// Encoded WAL bytes of the current segment.
    buf: Vec<u8>,
    /// Encoded value-log bytes of the current segment.
    vbuf: Vec<u8>,
    /// Where each entry of the batch's requests goes (by request, by entry).
    vptrs: Vec<Vec<Slot>>,
    key_buf: Vec<u8>,
}

impl Writer {
    pub fn new(
        db: Arc<DbInner>,
        wal: Option<LogWriter>,
        memtable: Arc<Memtable>,
        next_mem_fid: u32,
        vlog: Option<LogWriter>,
    ) -> Self {
        Writer {
            db,
            wal,
            memtable,
            next_mem_fid,
            vlog,
            vlog_entries: 0,
            buf: Vec::new(),
            vbuf: Vec::new(),
            vptrs: Vec::new(),
            key_buf: Vec::new(),
        }
    }

    /// Starts value-log file `fid` as the active one (drop-all restarts at 1).
    pub fn start_vlog(&mut self, fid: u32) -> Result<()> {
        let dir = self.db.value_dir.clone();
        let path = dir.join(crate::vfs::vlog_file_name(fid));
        let mut w = LogWriter::create(self.db.vfs.as_ref(), &path, fid)?;
        w.sync()?;
        self.db.vfs.sync_dir(&dir)?;
        let f = VlogFile::new(fid, self.db.vfs.open_read(&path)?, w.offset())
            .with_sync_handle(self.db.vfs.open_write(&path, crate::vfs::OpenMode::Existing)?);
        self.db.vlogs.write().insert(fid, Arc::new(f));
        self.vlog = Some(w);
        self.vlog_entries = 0;
        Ok(())
    }

    /// Starts a new value-log file if the active one holds any entry.
    pub fn rotate_vlog(&mut self) -> Result<()> {
        let Some(v) = &self.vlog else { return Ok(()) };
        if v.offset() <= crate::format::LOG_HEADER_LEN as u64 {
            return Ok(());
        }
        let next = v.fid() + 1;
        self.start_vlog(next)
    }

    /// Makes everything written so far durable: the active value log, the
    /// WAL, and both directories' entries for them. Value-log GC calls this
    /// before it deletes the file it rewrote, whatever `sync_writes` says,
    /// so a crash never finds the old file gone and the copies unwritten.
    pub fn sync_logs(&mut self) -> Result<()> {
        if let Some(v) = &mut self.vlog {
            v.sync()?;
            if let Some(f) = self.db.vlogs.read().get(&v.fid()) {
                f.set_synced_len(v.offset());
            }
            self.db.vfs.sync_dir(&self.db.value_dir)?;
        }
        if let Some(w) = &mut self.wal {
            w.sync()?;
            self.db.vfs.sync_dir(&self.db.dir)?;
        }
        Ok(())
    }

    fn vlog_is_full(&self) -> bool {
        let Some(v) = &self.vlog else { return false };
        let used = v.offset() + self.vbuf.len() as u64;
        used > self.db.opts.value_log_file_size || self.vlog_entries >= self.db.opts.value_log_max_entries
    }

    /// Runs until the request queue closes.
    pub fn run(mut self, rx: crossbeam_channel::Receiver<WriterMsg>) -> WriterExit {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut next = rx.recv().ok();
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Exec(f) => f(&mut self),
                WriterMsg::Write(first) => {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(WriterMsg::Write(r)) => batch.push(r),
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.process(&mut batch);
                }
            }
            if next.is_none() {
                next = rx.recv().ok();
            }
        }
        if let Some(v) = &mut self.vlog {
            // Tables flushed at close may point here: make it durable.
            let _ = v.sync();
        }
        WriterExit {
            wal: self.wal,
            memtable: self.memtable,
        }
    }

    /// Starts an empty memtable and WAL, retiring the current ones without
    /// flushing (drop-all): returns the WAL ids of the retired memtable.
    pub fn reset_memtable(&mut self) -> Result<u32> {
        let old = self.memtable.wal_fid();
        self.wal = None;
        self.open_new_memtable(false)?;
        Ok(old)
    }

    /// Moves a non-empty memtable to the flush queue (drop-prefix, flatten).
    pub fn rotate_now(&mut self) -> Result<()> {
        if self.memtable.is_empty() {
            return Ok(());
        }
        self.rotate()
    }

    fn process(&mut self, batch: &mut Vec<WriteRequest>) {
        let mut start = 0;
        let mut result = Ok(());
        self.vptrs.clear();
        for i in 0..batch.len() {
            if let Some(cause) = self.db.poisoned.lock().clone() {
                result = Err(Error::WritesPoisoned { cause });
                break;
            }
            let memtable_full = self.is_full() && !self.memtable.is_empty();
            let vlog_full = self.vlog_is_full();
            if memtable_full || vlog_full {
                result = self.commit_segment(&mut batch[start..i], start);
                if result.is_ok() {
                    start = i;
                    if memtable_full {
                        result = self.rotate();
                    }
                }
                if result.is_ok() && vlog_full {
                    let next = self.vlog.as_ref().map_or(1, |v| v.fid() + 1);
                    result = self.start_vlog(next);
                }
                if result.is_err() {
                    break;
                }
            }
            self.encode_request(&batch[i]);
        }
        if result.is_ok() {
            result = self.commit_segment(&mut batch[start..], start);
            if result.is_ok() {
                start = batch.len();
            }
        }
        if let Err(e) = result {
            self.db.poison(&e);
            let cause = e.to_string();
            for req in batch.drain(start..) {
                let _ = req.done.send(Err(Error::WritesPoisoned { cause: cause.clone() }));
            }
            self.buf.clear();
            self.vbuf.clear();
        }
        batch.clear();
    }

    /// Encodes one request: large values into the value-log buffer (transaction
    /// bits clear, as Badger writes them), then the WAL entries, with a
    /// pointer in place of each large value. A commit is framed as a
    /// transaction; a GC rewrite is written as stand-alone entries at their
    /// own versions, skipping keys that have a newer version by now.
    fn encode_request(&mut self, req: &WriteRequest) {
        let threshold = self.db.value_threshold.load(Ordering::Relaxed);
        let mut slots: Vec<Slot> = Vec::with_capacity(req.entries.len());
        let view = req.rewrite.as_ref().map(|_| self.db.view());
        for (i, w) in req.entries.iter().enumerate() {
            let version = req.rewrite.as_ref().map_or(req.ts, |v| v[i].version);
            if let (Some(view), Some(rw)) = (&view, &req.rewrite) {
                // Rewrite only what is still the key's newest copy: a newer
                // version, or a delete that compaction has since dropped
                // together with this version, means the value is gone.
                let from = rw[i].from;
                let current = super::read::get_raw(view, &w.key, u64::MAX)
                    .ok()
                    .flatten()
                    .is_some_and(|f| f.version == version && f.points_at(from.fid, from.offset));
                if !current {
                    slots.push(Slot::Skip);
                    continue;
                }
            }
            match &self.vlog {
                // GC keeps rewritten values in the value log whatever the
                // threshold, so a rewritten copy always outranks the pointer
                // it replaces (`copy_rank`).
                Some(v) if w.value.len() as u64 >= threshold || req.rewrite.is_some() => {
                    let offset = v.offset() + self.vbuf.len() as u64;
                    self.key_buf.clear();
                    append_key_with_version(&mut self.key_buf, &w.key, version);
                    let len = encode_entry(
                        &mut self.vbuf,
                        &EntryRef {
                            meta: w.meta,
                            user_meta: w.user_meta,
                            expires_at: w.expires_at,
                            key: &self.key_buf,
                            value: &w.value,
                        },
                    );
                    slots.push(Slot::Ptr(ValuePointer {
                        fid: v.fid(),
                        len: len as u32,
                        offset: offset as u32,
                    }));
                }
                _ => slots.push(Slot::Inline),
            }
        }
        if self.wal.is_some() {
            let ptrs: Vec<Option<[u8; VALUE_POINTER_LEN]>> = slots
                .iter()
                .map(|s| {
                    if let Slot::Ptr(vp) = s {
                        Some(vp.encode())
                    } else {
                        None
                    }
                })
                .collect();
            let entries: Vec<TxnEntry<'_>> = req
                .entries
                .iter()
                .zip(&slots)
                .zip(&ptrs)
                .filter(|((_, s), _)| **s != Slot::Skip)
                .map(|((w, _), p)| match p {
                    Some(b) => TxnEntry {
                        key: &w.key,
                        value: &b[..],
                        meta: w.meta | BIT_VALUE_POINTER,
                        user_meta: w.user_meta,
                        expires_at: w.expires_at,
                    },
                    None => TxnEntry {
                        key: &w.key,
                        value: &w.value,
                        meta: w.meta,
                        user_meta: w.user_meta,
                        expires_at: w.expires_at,
                    },
                })
                .collect();
            match &req.rewrite {
                None => encode_txn(&mut self.buf, &mut self.key_buf, req.ts, &entries),
                Some(versions) => {
                    let kept = versions
                        .iter()
                        .zip(&slots)
                        .filter(|(_, s)| **s != Slot::Skip)
                        .map(|(v, _)| v.version);
                    for (e, version) in entries.iter().zip(kept) {
                        self.key_buf.clear();
                        append_key_with_version(&mut self.key_buf, e.key, version);
                        encode_entry(
                            &mut self.buf,
                            &EntryRef {
                                meta: e.meta,
                                user_meta: e.user_meta,
                                expires_at: e.expires_at,
                                key: &self.key_buf,
                                value: e.value,
                            },
                        );
                    }
                }
            }
        }
        self.vptrs.push(slots);
    }

    fn is_full(&self) -> bool {
        let limit = self.db.opts.mem_table_size;
        self.memtable.size() >= limit || self.wal.as_ref().is_some_and(|w| w.offset() >= limit)
    }

    /// Makes the encoded requests durable as asked (values first, then the
    /// WAL records pointing at them), applies them, acknowledges. `first` is
    /// the index in the batch of `reqs[0]`.
    fn commit_segment(&mut self, reqs: &mut [WriteRequest], first: usize) -> Result<()> {
        if reqs.is_empty() {
            return Ok(());
        }
        if let Some(v) = &mut self.vlog
            && !self.vbuf.is_empty()
        {
            v.append(&self.vbuf)?;
            let entries = self.vptrs[first..first + reqs.len()]
                .iter()
                .flatten()
                .filter(|s| matches!(s, Slot::Ptr(_)))
                .count();
            self.vlog_entries += entries as u32;
            self.db
                .counters
                .bytes_written
                .fetch_add(self.vbuf.len() as u64, Ordering::Relaxed);
            self.vbuf.clear();
            if self.db.opts.sync_writes {
                v.sync()?;
            }
            if let Some(f) = self.db.vlogs.read().get(&v.fid()) {
                f.set_valid_len(v.offset());
                if self.db.opts.sync_writes {
                    f.set_synced_len(v.offset());
                }
            }
        }
        if let Some(wal) = &mut self.wal {
            wal.append(&self.buf)?;
            self.db
                .counters
                .bytes_written
                .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
            self.buf.clear();
            if self.db.opts.sync_writes {
                wal.sync()?;
            }
        }
        let user_bytes: usize = reqs
            .iter()
            .flat_map(|r| &r.entries)
            .map(|w| w.key.len() + w.value.len())
            .sum();
        self.db
            .counters
            .user_bytes
            .fetch_add(user_bytes as u64, Ordering::Relaxed);
        if self.db.opts.vlog_percentile > 0.0
            && let Some(hist) = self.db.threshold_hist.lock().as_mut()
        {
            // Badger's dynamic threshold: every value of the batch counts.
            for w in reqs.iter().flat_map(|r| &r.entries) {
                hist.record(w.value.len() as u64);
            }
            self.db.value_threshold.store(hist.threshold(), Ordering::Relaxed);
        }
        let slots = &self.vptrs[first..first + reqs.len()];
        for (req, slots) in reqs.iter_mut().zip(slots) {
            insert_request(&self.memtable, req, slots, &mut self.key_buf);
        }
        if let Some(last) = reqs.iter().rev().find(|r| r.rewrite.is_none()) {
            self.db.oracle.set_applied(last.ts);
        }
        let commits = reqs.iter().filter(|r| r.rewrite.is_none()).count();
        self.db
            .counters
            .commits
            .fetch_add(commits as u64, Ordering::Relaxed);
        for req in reqs {
            let _ = req.done.send(Ok(()));
        }
        Ok(())
    }

    /// Replaces the full memtable with a new one (and WAL) and queues it for flushing.
    fn rotate(&mut self) -> Result<()> {
        self.stall_for_memtables()?;
        self.open_new_memtable(true)?;
        let _g = self.db.sync.lock();
        self.db.cond.notify_all();
        Ok(())
    }

    /// Creates a new WAL and an empty mutable memtable and publishes it, in
    /// the same view update moving the old one to the flush queue when
    /// `retire` (so readers never miss it).
    fn open_new_memtable(&mut self, retire: bool) -> Result<()> {
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
        let new_mt = Arc::new(Memtable::with_capacity(fid, self.db.opts.mem_table_size));
        {
            let mut v = self.db.view.write();
            let mut next: View = (**v).clone();
            if retire {
                next.immutables.insert(0, self.memtable.clone());
            }
            next.mutable = Some(new_mt.clone());
            *v = Arc::new(next);
        }
        self.memtable = new_mt;
        self.wal = wal;
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
            self.db
                .counters
                .stall_nanos
                .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
            self.db
                .counters
                .max_stall_nanos
                .fetch_max(waited.as_nanos() as u64, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Inserts `req`'s entries into `memtable` as `slots` placed their values,
/// moving inline values out of the request: a clone of a `Vec`-backed
/// `Bytes` would allocate a shared header per value.
fn insert_request(memtable: &Memtable, req: &mut WriteRequest, slots: &[Slot], key_buf: &mut Vec<u8>) {
    // Commits carry the transaction bit into the tree, as Badger's do;
    // GC rewrites are stand-alone entries.
    let txn_bit = if req.rewrite.is_some() { 0 } else { BIT_TXN };
    for (i, (w, &slot)) in req.entries.iter_mut().zip(slots).enumerate() {
        let version = req
            .rewrite
            .as_ref()
            .and_then(|r| r.get(i))
            .map_or(req.ts, |r| r.version);
        key_buf.clear();
        append_key_with_version(key_buf, &w.key, version);
        let (meta, value) = match slot {
            Slot::Skip => continue,
            Slot::Ptr(vp) => (
                w.meta | txn_bit | BIT_VALUE_POINTER,
                bytes::Bytes::copy_from_slice(&vp.encode()),
            ),
            Slot::Inline => (w.meta | txn_bit, std::mem::take(&mut w.value)),
        };
        memtable.put(
            key_buf,
            MemValue {
                meta,
                user_meta: w.user_meta,
                expires_at: w.expires_at,
                value,
            },
        );
    }
}
