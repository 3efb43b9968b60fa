//! Iteration over sorted internal keys: the source trait and the merge.
//!
//! Every source of entries (a memtable, a table, a level) implements
//! [`KvIterator`]: a cursor over internal keys in [`compare_keys`] order
//! (user key ascending, version descending). [`MergeIterator`] combines
//! sources given newest first; when two hold the same internal key, the
//! newer one wins and the other is skipped, as in Badger's `MergeIterator`.
//!
//! [`compare_keys`]: crate::format::compare_keys

mod merge;
mod vec_iter;
mod visible;

pub use merge::MergeIterator;
pub use vec_iter::VecIterator;
pub use visible::VisibleIterator;

use crate::error::Result;
use crate::format::ValueStruct;

/// A forward cursor over internal keys.
pub trait KvIterator {
    /// Positions at the first entry.
    fn seek_to_first(&mut self) -> Result<()>;
    /// Positions at the first entry whose internal key is ≥ `key`.
    fn seek(&mut self, key: &[u8]) -> Result<()>;
    /// Advances by one entry. Only valid while [`valid`](Self::valid).
    fn next(&mut self) -> Result<()>;
    /// Whether the cursor is on an entry.
    fn valid(&self) -> bool;
    /// The current internal key. Only while valid.
    fn key(&self) -> &[u8];
    /// The current value struct. Only while valid.
    fn value(&self) -> ValueStruct<'_>;
}

impl<I: KvIterator + ?Sized> KvIterator for Box<I> {
    fn seek_to_first(&mut self) -> Result<()> {
        (**self).seek_to_first()
    }
    fn seek(&mut self, key: &[u8]) -> Result<()> {
        (**self).seek(key)
    }
    fn next(&mut self) -> Result<()> {
        (**self).next()
    }
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> ValueStruct<'_> {
        (**self).value()
    }
}
