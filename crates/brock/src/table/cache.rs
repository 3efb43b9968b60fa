//! The block cache: decoded blocks shared by all readers.
//!
//! Badger's ristretto `BlockCache` keyed by table id and block index; ours is
//! `quick_cache` (scan-resistant CLOCK-Pro, sharded, no background thread),
//! weighted by the block's bytes so `block_cache_size` bounds memory.
//! Ids are unique while a table exists; after `drop_all` restarts ids the
//! cache must be cleared.
//!
//! **Direct slots.** A hash-cache hit costs four dependent cache misses
//! (control bytes, index, entry, the block's count), about a fifth of a
//! random point read. So each table that reads through the cache also keeps
//! [`BlockSlots`]: one slot per block holding a *weak* reference to the
//! cached copy. A read tries its slot first (one miss, then the block it
//! needs anyway); the cache stays the only owner, so its weight bound holds,
//! and when it evicts a block its lifecycle hook empties the slot. A slot
//! that misses the hook in a race holds a dead weak reference (the block's
//! memory is freed; a ~128-byte header waits for the slot's next use or the
//! table's end). Slots cost 16 bytes per block and are allocated on a
//! table's first cached read, so tables read only by compactions have none.
//! A slot hit is not a cache hit, so quick_cache sees every eighth one (per
//! thread) to keep its hot/cold choice informed.
//!
//! Locks: the cache's shard lock, then a slot's mutex (in the eviction hook);
//! a reader never holds a slot's mutex while calling into the cache.

use super::block::Block;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::{Arc, Weak};

/// One table's slots: a weak reference to each block the cache holds.
#[derive(Debug)]
pub struct BlockSlots {
    slots: Box<[Mutex<Weak<Block>>]>,
}

impl BlockSlots {
    /// Empty slots for a table of `blocks` blocks.
    pub fn new(blocks: usize) -> Self {
        BlockSlots {
            slots: (0..blocks).map(|_| Mutex::new(Weak::new())).collect(),
        }
    }

    /// Number of slots (the table's blocks).
    fn len(&self) -> usize {
        self.slots.len()
    }

    /// The cached block `i`, if the cache still holds it.
    fn get(&self, i: usize) -> Option<Arc<Block>> {
        self.slots.get(i)?.lock().upgrade()
    }

    fn set(&self, i: usize, b: &Arc<Block>) {
        if let Some(s) = self.slots.get(i) {
            *s.lock() = Arc::downgrade(b);
        }
    }

    /// True when slot `i` holds no reference at all (not even a dead one).
    #[cfg(test)]
    fn is_clear(&self, i: usize) -> bool {
        self.slots[i].lock().ptr_eq(&Weak::new())
    }

    fn clear(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            *s.lock() = Weak::new();
        }
    }
}

/// What the cache holds per block: the block and the slots to empty on eviction.
#[derive(Clone)]
struct Cached {
    block: Arc<Block>,
    slots: Weak<BlockSlots>,
}

#[derive(Clone, Debug)]
struct BlockWeight;

impl quick_cache::Weighter<(u64, u32), Cached> for BlockWeight {
    fn weight(&self, _key: &(u64, u32), val: &Cached) -> u64 {
        val.block.size_in_memory() as u64 + 64
    }
}

/// Empties a block's slot when the cache lets the block go.
#[derive(Clone, Debug)]
struct EmptySlot;

impl quick_cache::Lifecycle<(u64, u32), Cached> for EmptySlot {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), key: (u64, u32), val: Cached) {
        if let Some(slots) = val.slots.upgrade() {
            slots.clear(key.1 as usize);
        }
    }
}

type Inner =
    quick_cache::sync::Cache<(u64, u32), Cached, BlockWeight, quick_cache::DefaultHashBuilder, EmptySlot>;

/// A shared cache of decoded blocks.
#[derive(Clone)]
pub struct BlockCache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("blocks", &self.inner.len())
            .field("bytes", &self.inner.weight())
            .finish()
    }
}

thread_local! {
    /// Counts slot hits, so every eighth is also reported to the cache.
    static SLOT_HITS: Cell<u32> = const { Cell::new(0) };
}

impl BlockCache {
    /// A cache holding up to `bytes` of blocks (`block_size` is the expected block size).
    pub fn new(bytes: u64, block_size: u64) -> Self {
        let items = (bytes / block_size.max(64)).clamp(16, 1 << 24) as usize;
        BlockCache {
            inner: Arc::new(Inner::with(
                items,
                bytes,
                BlockWeight,
                quick_cache::DefaultHashBuilder::default(),
                EmptySlot,
            )),
        }
    }

    /// Block `block` of table `table`: from its slot, else from the cache,
    /// else read by `read` and cached.
    pub fn get_or_read<E>(
        &self,
        table: u64,
        slots: &Arc<BlockSlots>,
        block: u32,
        read: impl FnOnce() -> Result<Block, E>,
    ) -> Result<Arc<Block>, E> {
        let i = block as usize;
        if let Some(b) = slots.get(i) {
            let n = SLOT_HITS.with(|c| {
                c.set(c.get().wrapping_add(1));
                c.get()
            });
            if n.is_multiple_of(8) {
                // Tells the cache the block is in use (sets its reference bit).
                let _ = self.inner.get(&(table, block));
            }
            return Ok(b);
        }
        if let Some(c) = self.inner.get(&(table, block)) {
            slots.set(i, &c.block);
            return Ok(c.block);
        }
        let b = Arc::new(read()?);
        self.insert(table, slots, block, b.clone());
        Ok(b)
    }

    /// Drops every block of table `table` that `slots` say the cache holds
    /// (a table being deleted: its blocks are dead weight).
    pub fn forget(&self, table: u64, slots: &BlockSlots) {
        for i in 0..slots.len() {
            if slots.get(i).is_some() {
                slots.clear(i);
                self.inner.remove(&(table, i as u32));
            }
        }
    }

    /// Caches `b` as block `block` of table `table`.
    pub fn insert(&self, table: u64, slots: &Arc<BlockSlots>, block: u32, b: Arc<Block>) {
        // The slot first: an eviction during the insert then empties it.
        slots.set(block as usize, &b);
        self.inner.insert(
            (table, block),
            Cached {
                block: b,
                slots: Arc::downgrade(slots),
            },
        );
    }

    /// The cached block, if present (not through a table's slots); readers
    /// go through [`get_or_read`](Self::get_or_read).
    #[cfg(test)]
    fn get(&self, table: u64, block: u32) -> Option<Arc<Block>> {
        self.inner.get(&(table, block)).map(|c| c.block)
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.inner.clear();
    }

    /// Bytes cached.
    pub fn weight(&self) -> u64 {
        self.inner.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::ValueStruct;
    use crate::format::key::key_with_version;
    use crate::table::block::BlockBuilder;

    fn block(n: usize) -> Block {
        let mut b = BlockBuilder::default();
        for i in 0..n {
            let v = vec![7u8; 100];
            b.add(
                &key_with_version(format!("k{i:05}").as_bytes(), 1),
                &ValueStruct {
                    meta: 0,
                    user_meta: 0,
                    expires_at: 0,
                    value: &v,
                },
            );
        }
        Block::decode(b.finish().0, true).expect("a built block decodes")
    }

    /// A slot serves what the cache holds, and is emptied when the cache
    /// evicts the block, so the cache's bound is the only owner's bound.
    #[test]
    fn evictions_empty_the_slots() {
        let one = block(30).size_in_memory() as u64 + 64;
        let cache = BlockCache::new(one * 8, one);
        let slots = Arc::new(BlockSlots::new(64));
        let mut reads = 0;
        let first = cache
            .get_or_read::<()>(1, &slots, 0, || {
                reads += 1;
                Ok(block(30))
            })
            .unwrap();
        let again = cache
            .get_or_read::<()>(1, &slots, 0, || panic!("read twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the slot serves the cached block");
        drop((first, again));
        // Fill well past the cache's capacity: block 0 must be evicted and
        // its slot emptied, and only about capacity's worth stays alive.
        for i in 1..64 {
            cache.get_or_read::<()>(1, &slots, i, || Ok(block(30))).unwrap();
        }
        let live: Vec<u32> = (0..64).filter(|&i| slots.get(i as usize).is_some()).collect();
        assert!(
            live.len() <= 9,
            "{} blocks alive through slots, cache holds ~8",
            live.len()
        );
        for i in &live {
            assert!(cache.get(1, *i).is_some(), "slot {i} outlived its cache entry");
        }
        // Evicted blocks' slots are emptied, not left holding dead headers.
        let cleared = (0..64).filter(|&i| slots.is_clear(i)).count();
        assert!(cleared >= 64 - live.len() - 1, "only {cleared} slots emptied");
        assert!(cache.weight() <= one * 8);
        assert_eq!(reads, 1);
    }
}
