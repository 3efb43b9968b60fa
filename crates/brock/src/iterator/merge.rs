//! K-way merge of sorted sources, newest source first.
//!
//! Badger's `table/merge_iterator.go` uses a tree of two-way merges; we keep a
//! small linear scan over the sources' current keys, which for the handful of
//! sources an LSM read merges (memtables, L0 tables, one per level) is as fast
//! and far simpler. Invariant: `current` is the index of the source with the
//! smallest key, ties going to the lowest index (the newest data); after
//! `next`, every source positioned on the key just returned is advanced past
//! it, so duplicates of one internal key surface once.

use super::KvIterator;
use crate::error::Result;
use crate::format::{ValueStruct, compare_keys};
use std::cmp::Ordering;

/// Merges sources given newest first.
pub struct MergeIterator<I: KvIterator> {
    sources: Vec<I>,
    current: Option<usize>,
}

impl<I: KvIterator> MergeIterator<I> {
    /// A merge over `sources`, newest first. Call a seek before reading.
    pub fn new(sources: Vec<I>) -> Self {
        MergeIterator {
            sources,
            current: None,
        }
    }

    fn pick(&mut self) {
        let mut best: Option<usize> = None;
        for (i, s) in self.sources.iter().enumerate() {
            if !s.valid() {
                continue;
            }
            best = match best {
                Some(b) if compare_keys(self.sources[b].key(), s.key()) != Ordering::Greater => Some(b),
                _ => Some(i),
            };
        }
        self.current = best;
    }
}

impl<I: KvIterator> KvIterator for MergeIterator<I> {
    fn seek_to_first(&mut self) -> Result<()> {
        for s in &mut self.sources {
            s.seek_to_first()?;
        }
        self.pick();
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        for s in &mut self.sources {
            s.seek(key)?;
        }
        self.pick();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some(cur) = self.current else { return Ok(()) };
        let key = self.sources[cur].key().to_vec();
        for s in &mut self.sources {
            if s.valid() && compare_keys(s.key(), &key) == Ordering::Equal {
                s.next()?;
            }
        }
        self.pick();
        Ok(())
    }

    fn valid(&self) -> bool {
        self.current.is_some()
    }

    fn key(&self) -> &[u8] {
        let cur = self.current.expect("key() on an invalid MergeIterator");
        self.sources[cur].key()
    }

    fn value(&self) -> ValueStruct<'_> {
        let cur = self.current.expect("value() on an invalid MergeIterator");
        self.sources[cur].value()
    }
}

#[cfg(test)]
mod tests {
    use super::super::VecIterator;
    use super::*;
    use crate::format::key_with_version;
    use crate::table::OwnedValue;

    fn src(items: &[(&str, u64, &str)]) -> VecIterator {
        VecIterator::new(
            items
                .iter()
                .map(|(k, v, val)| {
                    (
                        key_with_version(k.as_bytes(), *v),
                        OwnedValue {
                            value: val.as_bytes().to_vec(),
                            ..Default::default()
                        },
                    )
                })
                .collect(),
        )
    }

    fn collect(it: &mut impl KvIterator) -> Vec<(String, u64, String)> {
        let mut out = Vec::new();
        while it.valid() {
            let k = it.key();
            out.push((
                String::from_utf8(crate::format::user_key(k).to_vec()).unwrap(),
                crate::format::version(k),
                String::from_utf8(it.value().value.to_vec()).unwrap(),
            ));
            it.next().unwrap();
        }
        out
    }

    #[test]
    fn newest_source_wins_on_equal_keys() {
        let newer = src(&[("a", 2, "new"), ("c", 1, "c1")]);
        let older = src(&[("a", 2, "old"), ("a", 1, "a1"), ("b", 5, "b5")]);
        let mut m = MergeIterator::new(vec![newer, older]);
        m.seek_to_first().unwrap();
        assert_eq!(
            collect(&mut m),
            vec![
                ("a".into(), 2, "new".into()),
                ("a".into(), 1, "a1".into()),
                ("b".into(), 5, "b5".into()),
                ("c".into(), 1, "c1".into()),
            ]
        );
        m.seek(&key_with_version(b"a", 1)).unwrap();
        assert_eq!(collect(&mut m).len(), 3);
    }

    #[test]
    fn empty_sources() {
        let mut m = MergeIterator::new(vec![src(&[]), src(&[])]);
        m.seek_to_first().unwrap();
        assert!(!m.valid());
    }
}
