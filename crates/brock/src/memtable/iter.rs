//! A [`KvIterator`] over a memtable that owns its `Arc`, so it can outlive
//! a leaf's read lock: it copies entries (small values into
//! one buffer, big ones as `Bytes` clones) in small batches and refills from
//! just past the last one.

use super::{Batch, Memtable};
use crate::error::Result;
use crate::format::ValueStruct;
use crate::iterator::KvIterator;
use std::sync::Arc;

const BATCH: usize = 64;

/// A forward cursor over a memtable.
#[derive(Debug)]
pub struct MemtableIterator {
    mt: Arc<Memtable>,
    batch: Batch,
    pos: usize,
    /// True when the batch ended because the memtable did.
    exhausted: bool,
}

impl MemtableIterator {
    /// A cursor over `mt`, not yet positioned.
    pub fn new(mt: Arc<Memtable>) -> Self {
        MemtableIterator {
            mt,
            batch: Batch::default(),
            pos: 0,
            exhausted: true,
        }
    }

    fn fill(&mut self, from: Option<(&[u8], bool)>) {
        let mut batch = std::mem::take(&mut self.batch);
        self.mt.batch_from(from, BATCH, &mut batch);
        self.exhausted = batch.len() < BATCH;
        self.batch = batch;
        self.pos = 0;
    }
}

impl KvIterator for MemtableIterator {
    fn seek_to_first(&mut self) -> Result<()> {
        self.fill(None);
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.fill(Some((key, false)));
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.pos += 1;
        if self.pos >= self.batch.len() && !self.exhausted {
            let last = self.batch.key(self.batch.len() - 1).to_vec();
            self.fill(Some((&last, true)));
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        self.pos < self.batch.len()
    }

    fn key(&self) -> &[u8] {
        self.batch.key(self.pos)
    }

    fn value(&self) -> ValueStruct<'_> {
        self.batch.value(self.pos)
    }
}
