//! Value-log garbage collection: rewriting the live values of a mostly-dead
//! file and removing it.
//!
//! Badger's `RunValueLogGC`/`pickLog`/`rewrite`. The file with the most
//! bytes that compaction recorded as dropped (DISCARD) is collected when
//! those bytes reach `discard_ratio` of its size. Each entry's liveness is
//! decided against the tree ([`liveness`]); live values are written again
//! through the write thread at their original versions (stand-alone
//! entries, no transaction framing, checked once more against the tree at
//! write time), then the file is removed and its DISCARD count reset.
//!
//! Better than Badger:
//! - when the active file holds the most garbage, it is rotated and
//!   collected rather than refused (Badger #2334);
//! - an entry is rewritten only while it is its key's newest version; one
//!   that a newer version supersedes is dead once no snapshot can see it,
//!   and keeps the file (for a later run) while one can. So a rewrite never
//!   puts an old version above a newer one, and a deleted or overwritten key
//!   cannot come back however compaction and deletes interleave (Badger
//!   #2286 fixed one such race by pausing version GC during the rewrite);
//! - the removed file stays readable (open handle, name gone) for iterators
//!   whose snapshot predates the rewrite, and is let go once they finish;
//! - `Options::with_auto_value_log_gc` runs this in the background.

use super::{DbInner, RewriteOf, WriteRequest, WriterMsg};
use crate::error::{Error, Result};
use crate::format::meta::{BIT_FIN_TXN, BIT_TXN, BIT_VALUE_POINTER, is_deleted_or_expired, now_secs};
use crate::format::{ValuePointer, user_key, version};
use crate::txn::PendingWrite;
use crate::vlog::gc::{Verdict, for_each_at, scan};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What one successful GC run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// The value-log file collected.
    pub fid: u32,
    /// Its size.
    pub file_bytes: u64,
    /// Entries written again.
    pub rewritten: u64,
    /// Bytes of those entries (written again elsewhere).
    pub rewritten_bytes: u64,
    /// Entries found dead.
    pub dropped: u64,
}

impl GcReport {
    /// Disk space returned (the file minus what was written again).
    pub fn reclaimed(&self) -> u64 {
        self.file_bytes.saturating_sub(self.rewritten_bytes)
    }
}

/// Decides whether the entry at `offset` of file `fid` is still needed.
fn liveness(db: &DbInner, fid: u32, e: &crate::wal::LogEntry, discard_ts: u64, now: u64) -> Result<Verdict> {
    if is_deleted_or_expired(e.meta, e.expires_at, now) {
        return Ok(Verdict::Dead);
    }
    let (uk, v) = (user_key(&e.key), version(&e.key));
    let view = db.view();
    let Some(newest) = super::read::get_raw(&view, uk, u64::MAX)? else {
        return Ok(Verdict::Dead);
    };
    let points_here = |f: &crate::table::Found| {
        f.points_at(fid, e.offset) && !is_deleted_or_expired(f.meta, f.expires_at, now)
    };
    if newest.version < v {
        return Ok(Verdict::Dead);
    }
    if newest.version == v {
        return Ok(if points_here(&newest) {
            Verdict::Live
        } else {
            Verdict::Dead
        });
    }
    // A newer version exists. With one version kept, this one is dead once
    // no snapshot reads below the newer one.
    if db.opts.num_versions_to_keep <= 1 {
        return Ok(if newest.version <= discard_ts {
            Verdict::Dead
        } else {
            Verdict::Pinned
        });
    }
    // Older versions are kept on purpose: keep this one where it is needed.
    match super::read::get_raw(&view, uk, v)? {
        Some(f) if f.version == v && points_here(&f) => Ok(Verdict::Pinned),
        _ => Ok(Verdict::Dead),
    }
}

/// Bytes of a file a sample looks at: a tenth of it, at least 4 MiB.
fn sample_limit(size: u64) -> u64 {
    (size / 10).max(4 << 20)
}

/// Badger's `RunValueLogGC(discard_ratio)`: collects at most one file.
///
/// The file is chosen as Badger does, by the bytes compaction recorded as
/// dropped (DISCARD). Better than Badger: when no file qualifies that way
/// (the overwritten or deleted pointers are still in tables compaction has
/// not reached, as after any burst of overwrites that fits in the upper
/// levels), files are sampled oldest first, checking each sampled entry
/// against the tree, and the first whose dead share reaches `discard_ratio`
/// is collected. A file sampled and found wanting is sampled again only
/// after a tenth of its size has been written to the database.
pub(crate) fn run(db: &DbInner, discard_ratio: f64) -> Result<GcReport> {
    if !(discard_ratio > 0.0 && discard_ratio < 1.0) {
        return Err(Error::InvalidArgument {
            name: "discard_ratio",
            reason: "must be in (0, 1)".into(),
        });
    }
    if db.opts.in_memory {
        return Err(Error::Unsupported {
            feature: "value-log GC in memory (there is no value log)",
        });
    }
    db.check_writable()?;
    let Some(_running) = db.gc_lock.try_lock() else {
        return Err(Error::Rejected);
    };
    release_retired(db);
    if let Some((fid, file)) = pick_by_discard(db, discard_ratio)? {
        match collect(db, fid, &file) {
            Err(Error::NoRewrite) => {}
            other => return other,
        }
    }
    let files: Vec<(u32, Arc<crate::vlog::VlogFile>)> =
        db.vlogs.read().iter().map(|(f, v)| (*f, v.clone())).collect();
    let written = db.counters.user_bytes.load(Ordering::Relaxed);
    for (fid, file) in files {
        let size = file.valid_len();
        if size <= u64::from(crate::format::log_header::LOG_HEADER_LEN as u32) {
            continue;
        }
        if let Some(&at) = db.gc_sampled.lock().get(&fid)
            && written.saturating_sub(at) < size / 10
        {
            continue;
        }
        let sample = sample(db, fid, size)?;
        let looked = sample.dead_bytes + sample.live_bytes;
        if !sample.pinned && looked > 0 && sample.dead_bytes as f64 >= discard_ratio * looked as f64 {
            match collect(db, fid, &file) {
                Err(Error::NoRewrite) => {}
                other => return other,
            }
        }
        db.gc_sampled.lock().insert(fid, written);
    }
    Err(Error::NoRewrite)
}

/// The file DISCARD says has the most garbage, if that reaches the ratio.
fn pick_by_discard(db: &DbInner, discard_ratio: f64) -> Result<Option<(u32, Arc<crate::vlog::VlogFile>)>> {
    for _ in 0..16 {
        let pick = db.discard.lock().as_ref().and_then(|d| d.max_discard());
        let Some((fid, discarded)) = pick else {
            return Ok(None);
        };
        let file = db.vlogs.read().get(&fid).cloned();
        let Some(file) = file else {
            // Statistics for a file that is gone: forget them and look again.
            if let Some(d) = db.discard.lock().as_mut() {
                d.reset(fid)?;
            }
            continue;
        };
        if (discarded as f64) < discard_ratio * file.valid_len() as f64 {
            return Ok(None);
        }
        return Ok(Some((fid, file)));
    }
    Ok(None)
}

fn open_for_gc(
    db: &DbInner,
    fid: u32,
) -> Result<(std::path::PathBuf, Arc<dyn crate::vfs::RandomAccessFile>)> {
    // A fresh handle: the one readers use was opened while the file was
    // still being written and may know an older length.
    let path = db.value_dir.join(crate::vfs::vlog_file_name(fid));
    let handle = db.vfs.open_read(&path)?;
    Ok((path, handle))
}

/// Classifies the first [`sample_limit`] bytes of a file.
fn sample(db: &DbInner, fid: u32, size: u64) -> Result<crate::vlog::gc::Scan> {
    let (discard_ts, now) = (db.oracle.discard_ts(), now_secs());
    let (_, handle) = open_for_gc(db, fid)?;
    scan(handle, size, sample_limit(size), &mut |e| {
        liveness(db, fid, e, discard_ts, now)
    })
}

/// Collects file `fid`: its live entries written again, then the file gone.
fn collect(db: &DbInner, fid: u32, file: &Arc<crate::vlog::VlogFile>) -> Result<GcReport> {
    let active = db.vlogs.read().keys().next_back().copied();
    if active == Some(fid) {
        // Better than Badger: rotate the active file and collect it.
        super::ops::on_writer(db, super::write::Writer::rotate_vlog)??;
    }
    let (discard_ts, now) = (db.oracle.discard_ts(), now_secs());
    let (path, handle) = open_for_gc(db, fid)?;
    let size = file.valid_len();
    let found = scan(handle.clone(), size, u64::MAX, &mut |e| {
        liveness(db, fid, e, discard_ts, now)
    })?;
    if found.pinned {
        return Err(Error::NoRewrite);
    }
    let mut report = GcReport {
        fid,
        file_bytes: size,
        rewritten: 0,
        rewritten_bytes: 0,
        dropped: found.dead,
    };
    // Write the live entries again, in batches within Badger's limits.
    let limits = db.limits;
    let mut batch: Vec<PendingWrite> = Vec::new();
    let mut origins: Vec<RewriteOf> = Vec::new();
    let mut bytes = 0u64;
    let send = |batch: &mut Vec<PendingWrite>, origins: &mut Vec<RewriteOf>| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let sender = db.sender.lock().clone().ok_or(Error::Closed)?;
        let req = WriteRequest {
            ts: 0,
            entries: std::mem::take(batch),
            rewrite: Some(std::mem::take(origins)),
            done: tx,
        };
        sender.send(WriterMsg::Write(req)).map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)?
    };
    for_each_at(handle, &path, &found.live, &mut |e| {
        let est = e.key.len() as u64 + e.value.len() as u64 + 64;
        if !batch.is_empty()
            && (batch.len() as u64 + 1 >= limits.max_batch_count || bytes + est >= limits.max_batch_size)
        {
            send(&mut batch, &mut origins)?;
            bytes = 0;
        }
        report.rewritten += 1;
        report.rewritten_bytes += u64::from(e.len);
        origins.push(RewriteOf {
            version: version(&e.key),
            from: ValuePointer {
                fid,
                len: e.len,
                offset: e.offset,
            },
        });
        bytes += est;
        batch.push(PendingWrite {
            key: Bytes::copy_from_slice(user_key(&e.key)),
            value: Bytes::from(e.value),
            meta: e.meta & !(BIT_VALUE_POINTER | BIT_TXN | BIT_FIN_TXN),
            user_meta: e.user_meta,
            expires_at: e.expires_at,
        });
        Ok(())
    })?;
    send(&mut batch, &mut origins)?;
    // The copies must be durable before the original goes.
    super::ops::on_writer(db, super::write::Writer::sync_logs)??;
    // Retire the file: readers that still hold an older snapshot can finish
    // reading it through the open handle.
    let removed = db.vlogs.write().remove(&fid);
    if let Some(f) = removed {
        db.retired_vlogs
            .lock()
            .push((db.oracle.applied(), db.oracle.begun(), f));
    }
    if db.vfs.exists(&path) {
        db.vfs.remove(&path)?;
    }
    db.vfs.sync_dir(&db.value_dir)?;
    if let Some(d) = db.discard.lock().as_mut() {
        d.reset(fid)?;
    }
    db.gc_sampled.lock().remove(&fid);
    db.counters
        .vlog_gc_bytes
        .fetch_add(report.reclaimed(), Ordering::Relaxed);
    Ok(report)
}

/// Lets go of retired files no open transaction or iterator can still read:
/// one is kept while a reader that began before its retirement is open.
pub(crate) fn release_retired(db: &DbInner) {
    let oldest = db.oracle.oldest_begun();
    db.retired_vlogs
        .lock()
        .retain(|(_, retired_at, _)| oldest.is_some_and(|o| o < *retired_at));
}

/// The background GC loop (`Options::with_auto_value_log_gc`).
pub(crate) fn run_auto(db: Arc<DbInner>, ratio: f64) {
    loop {
        {
            let mut g = db.sync.lock();
            if g.shutdown_compactors {
                return;
            }
            db.cond.wait_for(&mut g, std::time::Duration::from_secs(1));
            if g.shutdown_compactors {
                return;
            }
        }
        while run(&db, ratio).is_ok() {}
    }
}
