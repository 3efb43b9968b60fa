//! The block cache: decoded blocks shared by all readers.
//!
//! Badger's ristretto `BlockCache` keyed by table id and block index; ours is
//! `quick_cache` (scan-resistant CLOCK-Pro, sharded, no background thread),
//! weighted by the block's bytes so `block_cache_size` bounds memory.
//! Ids are unique while a table exists; after `drop_all` restarts ids the
//! cache must be cleared.

use super::block::Block;
use std::sync::Arc;

#[derive(Clone, Debug)]
struct BlockWeight;

impl quick_cache::Weighter<(u64, u32), Arc<Block>> for BlockWeight {
    fn weight(&self, _key: &(u64, u32), val: &Arc<Block>) -> u64 {
        val.size_in_memory() as u64 + 64
    }
}

/// A shared cache of decoded blocks.
#[derive(Clone)]
pub struct BlockCache {
    inner: Arc<quick_cache::sync::Cache<(u64, u32), Arc<Block>, BlockWeight>>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("blocks", &self.inner.len())
            .field("bytes", &self.inner.weight())
            .finish()
    }
}

impl BlockCache {
    /// A cache holding up to `bytes` of blocks (`block_size` is the expected block size).
    pub fn new(bytes: u64, block_size: u64) -> Self {
        let items = (bytes / block_size.max(64)).clamp(16, 1 << 24) as usize;
        BlockCache {
            inner: Arc::new(quick_cache::sync::Cache::with_weighter(items, bytes, BlockWeight)),
        }
    }

    /// The cached block, if present.
    pub fn get(&self, table: u64, block: u32) -> Option<Arc<Block>> {
        self.inner.get(&(table, block))
    }

    /// Caches a block.
    pub fn insert(&self, table: u64, block: u32, b: Arc<Block>) {
        self.inner.insert((table, block), b);
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
