//! What a reader sees: Badger's visibility rules over a merged source.
//!
//! Badger's `Iterator.parseItem` (forward). Versions above the read
//! timestamp are invisible. Without `all_versions`, each user key yields its
//! newest visible version, and nothing at all if that version is a tombstone
//! or expired. With `all_versions`, every visible version is yielded,
//! tombstones and expired ones included. Keys under `!badger!` are Badger's
//! own and never yielded. A prefix bounds the walk.

use super::KvIterator;
use crate::error::Result;
use crate::format::key::INTERNAL_PREFIX;
use crate::format::meta::is_deleted_or_expired;
use crate::format::{ValueStruct, key_with_version, user_key, version};

/// Filters a merged iterator down to what a reader at `read_ts` sees.
pub struct VisibleIterator<I: KvIterator> {
    inner: I,
    read_ts: u64,
    all_versions: bool,
    prefix: Vec<u8>,
    now: u64,
    /// The user key of the last yielded entry (to skip its older versions).
    last: Vec<u8>,
    has_last: bool,
    done: bool,
}

impl<I: KvIterator> VisibleIterator<I> {
    /// Wraps `inner` (sources merged newest first).
    pub fn new(inner: I, read_ts: u64, all_versions: bool, prefix: &[u8], now: u64) -> Self {
        VisibleIterator {
            inner,
            read_ts,
            all_versions,
            prefix: prefix.to_vec(),
            now,
            last: Vec::new(),
            has_last: false,
            done: false,
        }
    }

    /// Positions at the first visible entry with user key ≥ `key` (and the prefix).
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        let start = if key < self.prefix.as_slice() {
            self.prefix.clone()
        } else {
            key.to_vec()
        };
        self.inner.seek(&key_with_version(&start, self.read_ts))?;
        self.has_last = false;
        self.done = false;
        self.settle()
    }

    /// Positions at the first visible entry.
    pub fn rewind(&mut self) -> Result<()> {
        let p = self.prefix.clone();
        self.seek(&p)
    }

    /// Skips to the next entry that must be yielded.
    fn settle(&mut self) -> Result<()> {
        while self.inner.valid() {
            let k = self.inner.key();
            let uk = user_key(k);
            if !uk.starts_with(&self.prefix) {
                self.done = true;
                return Ok(());
            }
            let skip_older = !self.all_versions && self.has_last && uk == self.last.as_slice();
            if version(k) > self.read_ts || uk.starts_with(INTERNAL_PREFIX) || skip_older {
                self.inner.next()?;
                continue;
            }
            if self.all_versions {
                return Ok(());
            }
            // Newest visible version of a new key: yield it unless deleted.
            self.last.clear();
            self.last.extend_from_slice(uk);
            self.has_last = true;
            let v = self.inner.value();
            if is_deleted_or_expired(v.meta, v.expires_at, self.now) {
                self.inner.next()?;
                continue;
            }
            return Ok(());
        }
        self.done = true;
        Ok(())
    }

    /// Whether positioned on an entry.
    pub fn valid(&self) -> bool {
        !self.done && self.inner.valid()
    }

    /// Advances to the next entry.
    pub fn advance(&mut self) -> Result<()> {
        if !self.valid() {
            return Ok(());
        }
        self.inner.next()?;
        self.settle()
    }

    /// The current internal key.
    pub fn key(&self) -> &[u8] {
        self.inner.key()
    }

    /// The current value struct.
    pub fn value(&self) -> ValueStruct<'_> {
        self.inner.value()
    }
}
