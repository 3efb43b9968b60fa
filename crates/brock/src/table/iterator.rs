//! A forward cursor over one table's entries.
//!
//! Badger's `table/iterator.go` (forward half). Blocks are loaded one at a
//! time as the cursor crosses them; a read or decode failure is returned from
//! the call that needed the block.

use super::block::Block;
use super::table::{OwnedValue, Table};
use crate::error::Result;
use crate::format::ValueStruct;
use crate::iterator::KvIterator;
use std::borrow::Borrow;
use std::sync::Arc;

/// A cursor over a [`Table`], held by reference or by `Arc`.
pub struct TableIterator<T: Borrow<Table>> {
    table: T,
    block_idx: usize,
    block: Option<Arc<Block>>,
    entry: usize,
    key: Vec<u8>,
    /// Read blocks through the block cache (false: Badger's `NOCACHE`).
    use_cache: bool,
}

impl<T: Borrow<Table>> TableIterator<T> {
    /// A cursor over `table`, not yet positioned.
    pub fn new(table: T) -> Self {
        TableIterator {
            table,
            block_idx: 0,
            block: None,
            entry: 0,
            key: Vec::new(),
            use_cache: true,
        }
    }

    /// Reads blocks straight from the file, neither looking them up in the
    /// block cache nor adding them (Badger's `NOCACHE`, which its
    /// compactions use): a compaction reads every block of tables it is
    /// about to delete once, and caching them would only evict the blocks
    /// readers use.
    #[must_use]
    pub fn without_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    fn load(&mut self, idx: usize) -> Result<()> {
        let table: &Table = self.table.borrow();
        if idx >= table.block_count() {
            self.block = None;
            return Ok(());
        }
        if self.block.is_none() || self.block_idx != idx {
            self.block = Some(if self.use_cache {
                table.block(idx)?
            } else {
                Arc::new(table.read_block(idx)?)
            });
            self.block_idx = idx;
        }
        Ok(())
    }

    /// Settles on entry `entry` of the loaded block, moving to later blocks
    /// when the block has no such entry.
    fn settle(&mut self, mut entry: usize) -> Result<()> {
        loop {
            let Some(b) = &self.block else { return Ok(()) };
            if entry < b.len() {
                self.entry = entry;
                b.key_into(entry, &mut self.key);
                return Ok(());
            }
            let next = self.block_idx + 1;
            self.load(next)?;
            entry = 0;
        }
    }

    /// The current entry as owned values, if valid.
    pub fn entry(&self) -> Option<(Vec<u8>, OwnedValue)> {
        self.valid()
            .then(|| (self.key.clone(), OwnedValue::from_ref(&self.value())))
    }
}

impl<T: Borrow<Table>> KvIterator for TableIterator<T> {
    fn seek_to_first(&mut self) -> Result<()> {
        self.load(0)?;
        self.settle(0)
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        let idx = self.table.borrow().first_block_for(key);
        self.load(idx)?;
        let e = self.block.as_ref().map_or(0, |b| b.seek(key));
        self.settle(e)
    }

    fn next(&mut self) -> Result<()> {
        let e = self.entry + 1;
        self.settle(e)
    }

    fn valid(&self) -> bool {
        self.block.as_ref().is_some_and(|b| self.entry < b.len())
    }

    fn key(&self) -> &[u8] {
        &self.key
    }

    fn value(&self) -> ValueStruct<'_> {
        match &self.block {
            Some(b) => b.value(self.entry),
            None => ValueStruct::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key_with_version;
    use crate::table::{BlockCache, BuilderOptions, TableBuilder, TableOptions};

    /// A walk without the cache reads every entry and leaves the cache
    /// empty; the same walk with it fills the cache.
    #[test]
    fn a_walk_without_the_cache_leaves_it_untouched() {
        let mut b = TableBuilder::new(BuilderOptions::default());
        let value = [7u8; 100];
        for i in 0..2000u32 {
            let v = ValueStruct {
                value: &value,
                ..ValueStruct::default()
            };
            b.add(&key_with_version(format!("k{i:06}").as_bytes(), 1), &v, 0);
        }
        let cache = BlockCache::new(64 << 20, 4096);
        let opts = TableOptions {
            id: 1,
            compression: crate::format::CompressionType::Snappy,
            key_id: 0,
            verify_blocks: true,
        };
        let vfs = crate::vfs::MemVfs::new();
        let path = std::path::Path::new("000001.sst");
        vfs.put_file(path, &b.finish());
        let file = crate::vfs::Vfs::open_read(&vfs, path).unwrap();
        let t = Table::open_cached(file, opts, Some(cache.clone())).unwrap();
        assert!(t.block_count() > 10);
        let walk = |mut it: TableIterator<&Table>| {
            it.seek_to_first().unwrap();
            let mut n = 0;
            while it.valid() {
                n += 1;
                it.next().unwrap();
            }
            n
        };
        assert_eq!(walk(TableIterator::new(&t).without_cache()), 2000);
        assert_eq!(cache.weight(), 0, "a walk without the cache added blocks to it");
        assert_eq!(walk(TableIterator::new(&t)), 2000);
        assert!(cache.weight() > 0);
    }
}
