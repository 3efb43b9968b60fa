//! K-way merge of sorted sources, newest source first.
//!
//! Badger's `table/merge_iterator.go` (a tree of two-way merges). Ours keeps
//! the valid sources in a binary min-heap ordered by (current key, source
//! index), so each step costs O(log n) however many L0 tables there are.
//! Invariant: the heap's top is the source with the smallest key, ties going
//! to the lowest index (the newest data); after `next`, every source that was
//! on the key just returned has been advanced past it, so duplicates of one
//! internal key surface once.

use super::KvIterator;
use crate::error::Result;
use crate::format::value_pointer::copy_rank;
use crate::format::{ValueStruct, compare_keys};
use std::cmp::Ordering;

/// Merges sources given newest first.
pub struct MergeIterator<I: KvIterator> {
    sources: Vec<I>,
    /// Indices of valid sources, a min-heap by (key, index).
    heap: Vec<usize>,
    key: Vec<u8>,
}

impl<I: KvIterator> MergeIterator<I> {
    /// A merge over `sources`, newest first. Call a seek before reading.
    pub fn new(sources: Vec<I>) -> Self {
        MergeIterator {
            sources,
            heap: Vec::new(),
            key: Vec::new(),
        }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        match compare_keys(self.sources[a].key(), self.sources[b].key()) {
            Ordering::Less => true,
            Ordering::Greater => false,
            // The same internal key in two sources: a GC-rewritten copy
            // beats the pointer it replaced, whatever the source order.
            Ordering::Equal => {
                let (va, vb) = (self.sources[a].value(), self.sources[b].value());
                match copy_rank(va.meta, va.value).cmp(&copy_rank(vb.meta, vb.value)) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal => a < b,
                }
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.less(self.heap[l], self.heap[m]) {
                m = l;
            }
            if r < n && self.less(self.heap[r], self.heap[m]) {
                m = r;
            }
            if m == i {
                return;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }

    fn rebuild(&mut self) {
        self.heap = (0..self.sources.len())
            .filter(|&i| self.sources[i].valid())
            .collect();
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    /// Advances the top source and restores the heap.
    fn advance_top(&mut self) -> Result<()> {
        let top = self.heap[0];
        self.sources[top].next()?;
        if self.sources[top].valid() {
            self.sift_down(0);
        } else {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
            self.sift_down(0);
        }
        Ok(())
    }
}

impl<I: KvIterator> KvIterator for MergeIterator<I> {
    fn seek_to_first(&mut self) -> Result<()> {
        for s in &mut self.sources {
            s.seek_to_first()?;
        }
        self.rebuild();
        Ok(())
    }

    fn seek(&mut self, key: &[u8]) -> Result<()> {
        for s in &mut self.sources {
            s.seek(key)?;
        }
        self.rebuild();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        self.key.clear();
        self.key.extend_from_slice(self.sources[top].key());
        self.advance_top()?;
        // Older sources holding the same internal key are skipped.
        while let Some(&t) = self.heap.first() {
            if compare_keys(self.sources[t].key(), &self.key) != Ordering::Equal {
                break;
            }
            self.advance_top()?;
        }
        Ok(())
    }

    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn key(&self) -> &[u8] {
        let top = *self.heap.first().expect("key() on an invalid MergeIterator");
        self.sources[top].key()
    }

    fn value(&self) -> ValueStruct<'_> {
        let top = *self.heap.first().expect("value() on an invalid MergeIterator");
        self.sources[top].value()
    }
}

#[cfg(test)]
mod tests {
    use super::super::VecIterator;
    use super::*;
    use crate::format::key_with_version;
    use crate::table::OwnedValue;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

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

    proptest! {
        /// Against a model: the first source holding an internal key wins.
        #[test]
        fn matches_a_model(sources in proptest::collection::vec(
            proptest::collection::vec((0u8..20, 1u64..5, 0u32..1000), 0..30), 1..12)) {
            let mut model: BTreeMap<Vec<u8>, String> = BTreeMap::new();
            let mut its = Vec::new();
            for (si, s) in sources.iter().enumerate() {
                let mut entries = Vec::new();
                for &(k, v, val) in s {
                    let key = key_with_version(&[b'k', k], v);
                    let value = format!("{si}:{val}");
                    entries.push((key.clone(), OwnedValue { value: value.clone().into_bytes(), ..Default::default() }));
                }
                let it = VecIterator::new(entries);
                // VecIterator keeps the last duplicate within one source.
                let mut probe = it.clone();
                probe.seek_to_first().unwrap();
                while probe.valid() {
                    let v = String::from_utf8(probe.value().value.to_vec()).unwrap();
                    model.entry(probe.key().to_vec()).or_insert(v);
                    probe.next().unwrap();
                }
                its.push(it);
            }
            let mut m = MergeIterator::new(its);
            m.seek_to_first().unwrap();
            let mut got = Vec::new();
            while m.valid() {
                got.push((m.key().to_vec(), String::from_utf8(m.value().value.to_vec()).unwrap()));
                m.next().unwrap();
            }
            let mut want: Vec<(Vec<u8>, String)> = model.into_iter().collect();
            want.sort_by(|a, b| compare_keys(&a.0, &b.0));
            prop_assert_eq!(got, want);
        }
    }
}
