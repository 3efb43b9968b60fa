//! Memtables: the sorted in-memory table that takes every write first.
//!
//! Badger's `memtable.go` and `skl/`. A [`Memtable`] is a B+tree of internal
//! keys (`btree.rs`: one writer, readers behind per-node read locks taken
//! top-down) with Badger's size accounting; Badger uses an arena skiplist,
//! which decision 0004 measured against. Each on-disk
//! memtable has a `.mem` WAL, written by the write path before the insert
//! (see `db/write.rs`); the memtable itself knows only its WAL's file id.
//!
//! Size accounting: Badger counts arena bytes (`MemSize`); we count, per
//! entry, the key, the encoded value struct and a fixed node overhead close
//! to Badger's average node, so a memtable fills at about the same number of
//! entries as Badger's does and L0 tables come out about the same size.

mod btree;
mod iter;

pub use iter::MemtableIterator;

use crate::format::{ValueStruct, compare_keys, user_key, version};
use crate::table::OwnedValue;
use bytes::Bytes;
use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

/// Bytes charged per entry beyond its key and value (Badger's node with an
/// average tower and alignment).
pub const NODE_OVERHEAD: u64 = 24;

/// Keys up to this long live inside the memtable's leaf.
const INLINE_KEY: usize = 46;

/// An internal key ordered by [`compare_keys`]. Short keys (most keys) are
/// stored inline, so a leaf search compares bytes already in the leaf
/// instead of chasing a pointer per step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemKey {
    /// Up to [`INLINE_KEY`] bytes in place.
    Inline {
        /// Used length.
        len: u8,
        /// The bytes.
        buf: [u8; INLINE_KEY],
    },
    /// Longer keys on the heap.
    Heap(Bytes),
}

impl MemKey {
    /// Stores `key`.
    pub fn new(key: &[u8]) -> Self {
        if key.len() <= INLINE_KEY {
            let mut buf = [0u8; INLINE_KEY];
            buf[..key.len()].copy_from_slice(key);
            MemKey::Inline {
                len: key.len() as u8,
                buf,
            }
        } else {
            MemKey::Heap(Bytes::copy_from_slice(key))
        }
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            MemKey::Inline { len, buf } => &buf[..usize::from(*len)],
            MemKey::Heap(b) => b,
        }
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_keys(self.as_bytes(), other.as_bytes())
    }
}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A value as a memtable stores it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemValue {
    /// Badger's meta bits.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
    /// The value or an encoded value pointer.
    pub value: Bytes,
}

impl MemValue {
    /// Borrows as a value struct.
    pub fn as_struct(&self) -> ValueStruct<'_> {
        ValueStruct {
            meta: self.meta,
            user_meta: self.user_meta,
            expires_at: self.expires_at,
            value: &self.value,
        }
    }

    /// Copies into an owned value.
    pub fn to_owned_value(&self) -> OwnedValue {
        OwnedValue::from_ref(&self.as_struct())
    }
}

/// A bloom filter over the user keys of a memtable, filled by the writer and
/// read concurrently (bits are set with atomic ORs), so a lookup of a key the
/// memtable does not hold skips the tree search.
///
/// Blocked: a key's bits all lie in one 64-byte block, so an insert or a
/// lookup touches one cache line instead of one per probe (at ~10 bits per
/// entry the false-positive rate goes from ~1% to ~1.5%).
#[derive(Debug)]
struct MemBloom {
    blocks: Vec<BloomBlock>,
}

/// 512 bits on one cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct BloomBlock([std::sync::atomic::AtomicU64; 8]);

impl MemBloom {
    const PROBES: u32 = 4;

    fn new(expected_entries: usize) -> Self {
        // ~10 bits per entry.
        let blocks = (expected_entries * 10 / 512).clamp(2, 1 << 19);
        MemBloom {
            blocks: (0..blocks).map(|_| BloomBlock::default()).collect(),
        }
    }

    /// The key's block and its (word, mask) pairs there.
    fn positions(&self, user_key: &[u8]) -> (&BloomBlock, impl Iterator<Item = (usize, u64)>) {
        let h = crate::format::checksum::xxhash64(user_key);
        let block = &self.blocks[((h >> 32) % self.blocks.len() as u64) as usize];
        // Nine bits of the low half per probe pick one of the block's 512 bits.
        let bits = (0..Self::PROBES).map(move |j| {
            let bit = (h >> (9 * j)) & 511;
            ((bit / 64) as usize, 1u64 << (bit % 64))
        });
        (block, bits)
    }

    fn insert(&self, user_key: &[u8]) {
        let (block, bits) = self.positions(user_key);
        for (w, m) in bits {
            block.0[w].fetch_or(m, AtomicOrdering::Relaxed);
        }
    }

    fn may_contain(&self, user_key: &[u8]) -> bool {
        let (block, mut bits) = self.positions(user_key);
        bits.all(|(w, m)| block.0[w].load(AtomicOrdering::Relaxed) & m != 0)
    }
}

/// Values up to this size are copied into a [`Batch`]'s buffer: cheaper
/// than a `Bytes` clone, which for a value moved in from a commit allocates
/// a shared header on first clone.
const BATCH_COPY_UP_TO: usize = 1024;

/// Entries copied out of a memtable for an iterator.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    entries: Vec<(MemKey, BatchValue)>,
    /// Small values, end to end.
    buf: Vec<u8>,
}

#[derive(Debug)]
struct BatchValue {
    meta: u8,
    user_meta: u8,
    expires_at: u64,
    value: Held,
}

/// Where a batch keeps a value.
#[derive(Debug)]
enum Held {
    /// `buf[at..at + len]`.
    Copied {
        at: usize,
        len: usize,
    },
    Shared(Bytes),
}

impl Batch {
    fn push(&mut self, key: &MemKey, v: &MemValue) {
        let value = if v.value.len() <= BATCH_COPY_UP_TO {
            let at = self.buf.len();
            self.buf.extend_from_slice(&v.value);
            Held::Copied {
                at,
                len: v.value.len(),
            }
        } else {
            Held::Shared(v.value.clone())
        };
        let bv = BatchValue {
            meta: v.meta,
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value,
        };
        self.entries.push((key.clone(), bv));
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`'s key.
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        self.entries[i].0.as_bytes()
    }

    /// Entry `i`'s value.
    pub(crate) fn value(&self, i: usize) -> ValueStruct<'_> {
        let v = &self.entries[i].1;
        ValueStruct {
            meta: v.meta,
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value: match &v.value {
                Held::Copied { at, len } => &self.buf[*at..*at + *len],
                Held::Shared(b) => b,
            },
        }
    }
}

/// One memtable.
#[derive(Debug)]
pub struct Memtable {
    map: btree::BTree,
    bloom: MemBloom,
    size: AtomicU64,
    max_version: AtomicU64,
    /// Deletes inserted (tombstones), for deletion-triggered compaction.
    deletes: AtomicU64,
    /// The `.mem` WAL's file id; 0 for a memtable without a WAL.
    wal_fid: u32,
}

impl Memtable {
    /// An empty memtable backed by WAL `wal_fid` (0 for none).
    pub fn new(wal_fid: u32) -> Self {
        Self::with_capacity(wal_fid, 1 << 16)
    }

    /// An empty memtable sized (its key filter) for about `bytes` of entries.
    pub fn with_capacity(wal_fid: u32, bytes: u64) -> Self {
        Memtable {
            bloom: MemBloom::new((bytes / 64) as usize),
            map: btree::BTree::default(),
            size: AtomicU64::new(0),
            max_version: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            wal_fid,
        }
    }

    /// The WAL's file id.
    pub fn wal_fid(&self) -> u32 {
        self.wal_fid
    }

    /// Inserts an entry; a second insert of one internal key replaces the
    /// first, atomically for concurrent readers (a value-log GC rewrite of
    /// an entry still in the live memtable does this). The write thread and
    /// replay are the callers; concurrent calls are serialised.
    pub fn put(&self, key: &[u8], value: MemValue) {
        let cost = key.len() as u64 + value.as_struct().encoded_len() as u64 + NODE_OVERHEAD;
        let v = version(key);
        self.max_version.fetch_max(v, AtomicOrdering::Relaxed);
        self.size.fetch_add(cost, AtomicOrdering::Relaxed);
        if value.meta & crate::format::meta::BIT_DELETE != 0 {
            self.deletes.fetch_add(1, AtomicOrdering::Relaxed);
        }
        // Filter bits go in before the entry is reachable, so a reader that
        // can find the entry also passes the filter.
        self.bloom.insert(user_key(key));
        self.map.insert(MemKey::new(key), value);
    }

    /// Accounted bytes (Badger's `MemSize`).
    pub fn size(&self) -> u64 {
        self.size.load(AtomicOrdering::Relaxed)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing has been inserted.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Deletes inserted.
    pub fn deletes(&self) -> u64 {
        self.deletes.load(AtomicOrdering::Relaxed)
    }

    /// The share of entries that are deletes.
    pub fn delete_share(&self) -> f64 {
        self.deletes() as f64 / self.len().max(1) as f64
    }

    /// The highest version inserted.
    pub fn max_version(&self) -> u64 {
        self.max_version.load(AtomicOrdering::Relaxed)
    }

    /// The newest entry of `key`'s user key with version ≤ the version in
    /// `key` (an internal key), if any.
    pub fn get(&self, key: &[u8]) -> Option<crate::table::Found> {
        // An empty memtable (the usual one after a reopen) costs a counter
        // read, not a key hash and a filter probe.
        if self.is_empty() || !self.bloom.may_contain(user_key(key)) {
            return None;
        }
        let found = |ks: &[MemKey], vs: &[MemValue], at: usize| {
            let k = ks.get(at)?.as_bytes();
            if !crate::format::key::same_user_key(k, key) {
                return None;
            }
            let v = &vs[at];
            // Short values are copied inline; longer ones are usually
            // slices of their commit's buffer (`txn::share_short_values`),
            // so sharing one costs a reference count, not an allocation.
            let value = if v.value.len() <= crate::table::INLINE_BYTES {
                crate::table::ValueBytes::copy_of(&v.value)
            } else {
                v.value.clone().into()
            };
            Some(crate::table::Found {
                version: version(k),
                meta: v.meta,
                user_meta: v.user_meta,
                expires_at: v.expires_at,
                value,
            })
        };
        let next = match self.map.with_leaf(Some(key), false, |ks, vs, at, next| {
            if at < ks.len() {
                Ok(found(ks, vs, at))
            } else {
                Err(next
                    .filter(|n| crate::format::key::same_user_key(n.as_bytes(), key))
                    .cloned())
            }
        }) {
            Ok(hit) => return hit,
            Err(next) => next?,
        };
        // The leaf ended before the key's versions did: the next leaf starts
        // with one of them.
        self.map
            .with_leaf(Some(next.as_bytes()), false, |ks, vs, at, _| found(ks, vs, at))
    }

    /// Up to `max` entries starting at the first ≥ `from` (or > when `exclusive`).
    pub(crate) fn batch_from(&self, from: Option<(&[u8], bool)>, max: usize, out: &mut Batch) {
        out.entries.clear();
        out.buf.clear();
        // Copies from `at` on; returns where the next leaf starts unless `out` is full.
        let mut copy = |ks: &[MemKey], vs: &[MemValue], at: usize, next: Option<&MemKey>| {
            for (k, v) in ks[at..].iter().zip(&vs[at..]) {
                if out.entries.len() == max {
                    return None;
                }
                out.push(k, v);
            }
            next.filter(|_| out.entries.len() < max).cloned()
        };
        let (key, exclusive) = from.map_or((None, false), |(k, e)| (Some(k), e));
        let mut next = self.map.with_leaf(key, exclusive, &mut copy);
        while let Some(n) = next {
            next = self.map.with_leaf(Some(n.as_bytes()), false, &mut copy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key_with_version;
    use crate::iterator::KvIterator;
    use std::sync::Arc;

    fn val(s: &str) -> MemValue {
        MemValue {
            meta: 0,
            user_meta: 0,
            expires_at: 0,
            value: Bytes::copy_from_slice(s.as_bytes()),
        }
    }

    /// Every inserted key passes the memtable filter, and at its sizing
    /// (~10 bits per entry) few others do.
    #[test]
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let n = 20_000;
        let f = MemBloom::new(n);
        for i in 0..n {
            f.insert(format!("key{i}").as_bytes());
        }
        assert!((0..n).all(|i| f.may_contain(format!("key{i}").as_bytes())));
        let false_positives = (0..n)
            .filter(|i| f.may_contain(format!("other{i}").as_bytes()))
            .count();
        assert!(false_positives < n * 3 / 100, "{false_positives} of {n}");
    }

    #[test]
    fn get_finds_newest_visible_version() {
        let mt = Memtable::new(1);
        mt.put(&key_with_version(b"a", 1), val("a1"));
        mt.put(&key_with_version(b"a", 5), val("a5"));
        mt.put(&key_with_version(b"ab", 3), val("ab3"));
        assert_eq!(mt.get(&key_with_version(b"a", 9)).unwrap().value[..], b"a5"[..]);
        assert_eq!(mt.get(&key_with_version(b"a", 4)).unwrap().value[..], b"a1"[..]);
        assert!(mt.get(&key_with_version(b"a", 0)).is_none());
        assert!(mt.get(&key_with_version(b"b", 9)).is_none());
        assert_eq!(mt.max_version(), 5);
        assert_eq!(mt.len(), 3);
        assert!(mt.size() > 3 * NODE_OVERHEAD);
    }

    #[test]
    fn iterator_walks_in_order_across_batches() {
        let mt = Arc::new(Memtable::new(1));
        for i in (0..1000u32).rev() {
            mt.put(&key_with_version(format!("k{i:05}").as_bytes(), 1), val("v"));
        }
        let mut it = MemtableIterator::new(mt.clone());
        it.seek_to_first().unwrap();
        let mut n = 0;
        let mut prev: Vec<u8> = Vec::new();
        while it.valid() {
            assert!(prev.is_empty() || compare_keys(&prev, it.key()) == Ordering::Less);
            prev = it.key().to_vec();
            n += 1;
            it.next().unwrap();
        }
        assert_eq!(n, 1000);
        it.seek(&key_with_version(b"k00500", 1)).unwrap();
        assert_eq!(user_key(it.key()), b"k00500");
    }
}
