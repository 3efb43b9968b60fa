//! Closing: refuse writes, drain the queue, flush, sync, unlock.
//!
//! Badger's `db.close`: block new writes; let the write thread finish what is
//! queued; hand the mutable memtable to the flush queue if it holds anything
//! (else delete its WAL); let the flush thread write every waiting memtable
//! and exit; sync the directories; release the locks (removing `LOCK`).
//! Idempotent: a second call returns `Ok(())`.

use super::DbInner;
use crate::error::{Error, Result};
use crate::vfs::mem_file_name;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(crate) fn close(db: &Arc<DbInner>) -> Result<()> {
    if db.closed.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let mut first_err: Option<Error> = None;
    // New commits now fail with Closed; the queue drains and the writer exits.
    {
        let _order = db.oracle.write_order.lock();
        db.sender.lock().take();
    }
    let exit = db.writer_exit.lock().take().map(|h| h.join());
    if let Some(Ok(exit)) = exit {
        let mt = exit.memtable;
        if mt.is_empty() {
            drop(exit.wal);
            if mt.wal_fid() != 0 {
                let path = db.dir.join(mem_file_name(mt.wal_fid()));
                if db.vfs.exists(&path)
                    && let Err(e) = db.vfs.remove(&path)
                {
                    first_err.get_or_insert(e);
                }
            }
        } else {
            drop(exit.wal);
            let mut v = db.view.write();
            let mut next = (**v).clone();
            next.immutables.insert(0, mt);
            next.mutable = None;
            *v = Arc::new(next);
        }
    }
    {
        let mut g = db.sync.lock();
        g.shutdown_flush = true;
        db.cond.notify_all();
    }
    let threads: Vec<_> = db.threads.lock().drain(..).collect();
    for t in threads {
        let _ = t.join();
    }
    {
        let mut g = db.sync.lock();
        g.shutdown_compactors = true;
        db.cond.notify_all();
    }
    let compactors: Vec<_> = db.compactors.lock().drain(..).collect();
    for t in compactors {
        let _ = t.join();
    }
    if db.opts.compact_l0_on_close
        && db.poisoned.lock().is_none()
        && let Err(e) = super::ops::compact_l0_once(db)
    {
        first_err.get_or_insert(e);
    }
    if let Some(d) = db.discard.lock().as_mut()
        && let Err(e) = d.sync()
    {
        first_err.get_or_insert(e);
    }
    if let Some(cause) = db.poisoned.lock().clone() {
        first_err.get_or_insert(Error::WritesPoisoned { cause });
    }
    if !db.opts.read_only && !db.opts.in_memory {
        for d in [&db.dir, &db.value_dir] {
            if let Err(e) = db.vfs.sync_dir(d) {
                first_err.get_or_insert(e);
            }
        }
    }
    for lock in db.locks.lock().drain(..) {
        if let Err(e) = lock.release() {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
