//! The read path: point lookups and the snapshot iterator.
//!
//! Badger's `db.get` and `iterator.go`. A lookup searches the mutable
//! memtable, the immutable ones newest first, then the tree (L0 newest
//! first, then one table per level); the first hit is the newest version at
//! or below the read timestamp, because every source is newer than the ones
//! after it. Values that live in the value log are read through their
//! pointer, with the file's bounds and the entry's CRC checked.

use super::{DbInner, View};
use crate::error::{Error, Result};
use crate::format::meta::{BIT_VALUE_POINTER, is_deleted_or_expired_now, now_secs};
use crate::format::{ValuePointer, ValueStruct, key_with_version, user_key, version};
use crate::iterator::{KvIterator, MergeIterator, VecIterator, VisibleIterator};
use crate::memtable::MemtableIterator;
use crate::table::{Found, OwnedValue, ValueBytes};
use crate::txn::{PendingWrite, fingerprint};
use bytes::Bytes;
use std::sync::Arc;

/// One version of one key, as a reader sees it.
///
/// An item found in a table holds the table block it was found in (a few
/// KiB, shared with the block cache) instead of a copy of its value, until
/// it is dropped: keep the bytes of [`Item::value`], not the item, to hold a
/// value for long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    key: ValueBytes,
    version: u64,
    meta: u8,
    user_meta: u8,
    expires_at: u64,
    value: ValueBytes,
}

impl Item {
    pub(crate) fn from_pending(w: &PendingWrite, read_ts: u64) -> Option<Item> {
        if is_deleted_or_expired_now(w.meta, w.expires_at) {
            return None;
        }
        Some(Item {
            key: w.key.clone().into(),
            version: read_ts,
            meta: w.meta,
            user_meta: w.user_meta,
            expires_at: w.expires_at,
            value: w.value.clone().into(),
        })
    }

    /// The user key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The version (commit timestamp).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The value.
    pub fn value(&self) -> Result<Bytes> {
        Ok(self.value.to_bytes())
    }

    /// The value, borrowed.
    pub fn value_ref(&self) -> &[u8] {
        &self.value
    }

    /// The user's meta byte.
    pub fn user_meta(&self) -> u8 {
        self.user_meta
    }

    /// Expiry in Unix seconds; 0 = never.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Tombstone, or expired now. Only all-versions iteration yields these.
    pub fn is_deleted_or_expired(&self) -> bool {
        is_deleted_or_expired_now(self.meta, self.expires_at)
    }
}

/// Reads the value of a stored entry, following a value pointer.
pub(crate) fn resolve(db: &DbInner, meta: u8, value: &[u8]) -> Result<Bytes> {
    debug_assert!(meta & BIT_VALUE_POINTER != 0);
    let vp = ValuePointer::decode(value).map_err(|e| e.in_file(&db.dir, 0))?;
    let file = db
        .vlogs
        .read()
        .get(&vp.fid)
        .cloned()
        .or_else(|| {
            db.retired_vlogs
                .lock()
                .iter()
                .find(|r| r.2.fid == vp.fid)
                .map(|r| r.2.clone())
        })
        .ok_or_else(|| Error::MissingFile {
            path: db.value_dir.join(crate::vfs::vlog_file_name(vp.fid)),
        })?;
    file.read_value(&vp)
}

fn item_from(db: &DbInner, key: &[u8], v: &ValueStruct<'_>) -> Result<Item> {
    let value = if v.meta & BIT_VALUE_POINTER != 0 {
        resolve(db, v.meta, v.value)?.into()
    } else {
        ValueBytes::copy_of(v.value)
    };
    Ok(Item {
        key: ValueBytes::copy_of(user_key(key)),
        version: version(key),
        meta: v.meta,
        user_meta: v.user_meta,
        expires_at: v.expires_at,
        value,
    })
}

/// The newest stored entry of `key` at or below `read_ts`, deleted or not.
///
/// As Badger's `db.get`, the newest version across every source wins, not
/// the first source that has one: a WAL whose flush was undone by a crash,
/// or (later) a value-log GC rewrite, puts older versions into a newer
/// source. Sources whose highest version cannot beat the best found so far
/// are skipped, and an exact hit at `read_ts` ends the search.
pub(crate) fn get_raw(view: &View, key: &[u8], read_ts: u64) -> Result<Option<Found>> {
    crate::format::key::with_version(key, read_ts, |probe| get_probe(view, probe, read_ts))
}

fn get_probe(view: &View, probe: &[u8], read_ts: u64) -> Result<Option<Found>> {
    let mut best: Option<Found> = None;
    for mt in view.mutable.iter().chain(view.immutables.iter()) {
        if best.as_ref().is_some_and(|b| mt.max_version() <= b.version) {
            continue;
        }
        if let Some(hit) = mt.get(probe)
            && best.as_ref().is_none_or(|b| hit.version > b.version)
        {
            let exact = hit.version == read_ts;
            best = Some(hit);
            if exact {
                return Ok(best);
            }
        }
    }
    if let Some(hit) = view
        .tree
        .get_newer_than(probe, best.as_ref().map(|b| b.version))?
    {
        best = Some(hit);
    }
    Ok(best)
}

/// A point lookup at `read_ts`: `None` when absent, deleted or expired.
///
/// `view` is one the caller holds: current when its read timestamp was
/// taken, or later.
pub(crate) fn get_in(db: &DbInner, view: &View, key: &[u8], read_ts: u64) -> Result<Option<Item>> {
    let Some(f) = get_raw(view, key, read_ts)? else {
        return Ok(None);
    };
    if is_deleted_or_expired_now(f.meta, f.expires_at) {
        return Ok(None);
    }
    let value = if f.meta & BIT_VALUE_POINTER != 0 {
        resolve(db, f.meta, &f.value)?.into()
    } else {
        f.value
    };
    Ok(Some(Item {
        key: ValueBytes::copy_of(key),
        version: f.version,
        meta: f.meta,
        user_meta: f.user_meta,
        expires_at: f.expires_at,
        value,
    }))
}

/// How to iterate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IterOptions {
    /// Only keys starting with this prefix.
    pub prefix: Vec<u8>,
    /// Every version at or below the read timestamp, including deleted and
    /// expired ones, instead of the newest live version per key.
    pub all_versions: bool,
}

impl IterOptions {
    /// Restricts to keys starting with `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.prefix = prefix.as_ref().to_vec();
        self
    }

    /// Yields every version, deleted and expired ones included.
    #[must_use]
    pub fn all_versions(mut self, yes: bool) -> Self {
        self.all_versions = yes;
        self
    }
}

type Sources = MergeIterator<Box<dyn KvIterator + Send>>;

/// A forward iterator over a snapshot: a cursor (`rewind`, `seek`, `valid`,
/// `item`, `next`) and a Rust [`Iterator`] of `Result<Item>`.
pub struct DbIterator {
    db: Arc<DbInner>,
    /// Registered as a reader while alive (keeps retired value logs readable).
    reader_seq: u64,
    _view: Arc<View>,
    it: VisibleIterator<Sources>,
    reads: Option<Arc<parking_lot::Mutex<Vec<u64>>>>,
    started: bool,
}

impl Drop for DbIterator {
    fn drop(&mut self) {
        self.db.oracle.end_reader(self.reader_seq);
    }
}

impl std::fmt::Debug for DbIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbIterator")
            .field("valid", &self.it.valid())
            .finish()
    }
}

impl DbIterator {
    pub(crate) fn new(
        db: Arc<DbInner>,
        read_ts: u64,
        opts: IterOptions,
        pending: Vec<PendingWrite>,
        reads: Option<Arc<parking_lot::Mutex<Vec<u64>>>>,
    ) -> Result<Self> {
        let view = db.view();
        let mut sources: Vec<Box<dyn KvIterator + Send>> = Vec::new();
        if !pending.is_empty() {
            let entries = pending
                .into_iter()
                .map(|w| {
                    (
                        key_with_version(&w.key, read_ts),
                        OwnedValue {
                            meta: w.meta,
                            user_meta: w.user_meta,
                            expires_at: w.expires_at,
                            value: w.value.to_vec(),
                        },
                    )
                })
                .collect();
            sources.push(Box::new(VecIterator::new(entries)));
        }
        for mt in view.mutable.iter().chain(view.immutables.iter()) {
            sources.push(Box::new(MemtableIterator::new(mt.clone())));
        }
        sources.extend(view.tree.iterators());
        let it = VisibleIterator::new(
            MergeIterator::new(sources),
            read_ts,
            opts.all_versions,
            &opts.prefix,
            now_secs(),
        );
        let reader_seq = db.oracle.begin_reader();
        Ok(DbIterator {
            db,
            reader_seq,
            _view: view,
            it,
            reads,
            started: false,
        })
    }

    /// Positions at the first key (of the prefix).
    pub fn rewind(&mut self) -> Result<()> {
        self.started = true;
        self.it.rewind()
    }

    /// Positions at the first key ≥ `key` (within the prefix).
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.started = true;
        self.it.seek(key)
    }

    /// Whether positioned on an item.
    pub fn valid(&self) -> bool {
        self.it.valid()
    }

    /// The current item (its value resolved).
    pub fn item(&self) -> Result<Item> {
        let k = self.it.key();
        if let Some(r) = &self.reads {
            r.lock().push(fingerprint(user_key(k)));
        }
        item_from(&self.db, k, &self.it.value())
    }

    /// Advances.
    pub fn next_entry(&mut self) -> Result<()> {
        self.it.advance()
    }
}

impl Iterator for DbIterator {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            if let Err(e) = self.rewind() {
                return Some(Err(e));
            }
        } else if let Err(e) = self.it.advance() {
            return Some(Err(e));
        }
        self.valid().then(|| self.item())
    }
}
