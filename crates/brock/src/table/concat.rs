//! A cursor over the tables of one level ≥ 1, which do not overlap.
//!
//! Badger's `ConcatIterator`. Tables are sorted by smallest key; a seek picks
//! the one table that can hold the key, so a level costs one source in a merge
//! however many tables it has.

use super::iterator::TableIterator;
use super::table::Table;
use crate::error::Result;
use crate::format::{ValueStruct, compare_keys};
use crate::iterator::KvIterator;
use std::borrow::Borrow;
use std::cmp::Ordering;

/// Iterates non-overlapping tables in key order.
pub struct ConcatIterator<T: Borrow<Table> + Clone> {
    tables: Vec<T>,
    idx: usize,
    cur: Option<TableIterator<T>>,
    use_cache: bool,
}

impl<T: Borrow<Table> + Clone> ConcatIterator<T> {
    /// `tables` must be sorted by key range and not overlap.
    pub fn new(tables: Vec<T>) -> Self {
        ConcatIterator {
            tables,
            idx: 0,
            cur: None,
            use_cache: true,
        }
    }

    /// Reads every table past the block cache ([`TableIterator::without_cache`]).
    #[must_use]
    pub fn without_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }

    fn open(&mut self, idx: usize) -> Result<()> {
        self.idx = idx;
        let use_cache = self.use_cache;
        self.cur = self.tables.get(idx).cloned().map(|t| {
            let it = TableIterator::new(t);
            if use_cache { it } else { it.without_cache() }
        });
        if let Some(it) = &mut self.cur {
            it.seek_to_first()?;
        }
        Ok(())
    }

    /// Moves to the next table while the current one is exhausted.
    fn skip_exhausted(&mut self) -> Result<()> {
        while self.cur.as_ref().is_some_and(|c| !c.valid()) {
            self.open(self.idx + 1)?;
        }
        Ok(())
    }
}

impl<T: Borrow<Table> + Clone> KvIterator for ConcatIterator<T> {
    fn seek_to_first(&mut self) -> Result<()> {
        self.open(0)?;
        self.skip_exhausted()
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        // First table whose biggest key is ≥ key.
        let idx = self
            .tables
            .partition_point(|t| compare_keys(t.borrow().biggest(), key) == Ordering::Less);
        self.open(idx)?;
        if let Some(it) = &mut self.cur {
            it.seek(key)?;
        }
        self.skip_exhausted()
    }

    fn next(&mut self) -> Result<()> {
        if let Some(it) = &mut self.cur {
            it.next()?;
        }
        self.skip_exhausted()
    }

    fn valid(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.valid())
    }

    fn key(&self) -> &[u8] {
        self.cur.as_ref().map_or(&[], |c| c.key())
    }

    fn value(&self) -> ValueStruct<'_> {
        self.cur.as_ref().map(|c| c.value()).unwrap_or_default()
    }
}
