//! A [`KvIterator`] over an owned, sorted vector of entries.
//!
//! Used for memtables replayed from a WAL in the offline view and in tests.

use super::KvIterator;
use crate::error::Result;
use crate::format::{ValueStruct, compare_keys};
use crate::table::OwnedValue;
use std::cmp::Ordering;

/// Iterates entries sorted by [`compare_keys`].
#[derive(Debug, Clone, Default)]
pub struct VecIterator {
    entries: Vec<(Vec<u8>, OwnedValue)>,
    pos: usize,
}

impl VecIterator {
    /// Sorts `entries` by internal key and positions past the end (seek
    /// first). Of several entries with one internal key the last one given
    /// wins, as a later memtable put overwrites an earlier one.
    pub fn new(mut entries: Vec<(Vec<u8>, OwnedValue)>) -> Self {
        entries.reverse();
        entries.sort_by(|a, b| compare_keys(&a.0, &b.0));
        entries.dedup_by(|b, a| compare_keys(&a.0, &b.0) == Ordering::Equal);
        let pos = entries.len();
        VecIterator { entries, pos }
    }
}

impl KvIterator for VecIterator {
    fn seek_to_first(&mut self) -> Result<()> {
        self.pos = 0;
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.pos = self
            .entries
            .partition_point(|(k, _)| compare_keys(k, key) == Ordering::Less);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        self.pos = (self.pos + 1).min(self.entries.len());
        Ok(())
    }

    fn valid(&self) -> bool {
        self.pos < self.entries.len()
    }

    fn key(&self) -> &[u8] {
        &self.entries[self.pos].0
    }

    fn value(&self) -> ValueStruct<'_> {
        self.entries[self.pos].1.as_ref()
    }
}
