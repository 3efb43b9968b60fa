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
        }
    }

    fn load(&mut self, idx: usize) -> Result<()> {
        let table: &Table = self.table.borrow();
        if idx >= table.block_count() {
            self.block = None;
            return Ok(());
        }
        if self.block.is_none() || self.block_idx != idx {
            self.block = Some(table.block(idx)?);
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
