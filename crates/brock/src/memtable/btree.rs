//! The memtable's sorted map: a B+tree with one writer and concurrent readers.
//!
//! A skiplist insert of a random key chases a pointer per level through
//! nodes scattered over the whole memtable, each a cache miss; here the
//! upper levels are a few hundred small nodes that stay in cache, and an
//! insert touches one leaf of contiguous keys.
//!
//! # Concurrency
//!
//! Every node sits behind its own `RwLock`, and everyone locks top-down:
//! readers hold a node's read lock while they lock the child they descend
//! into (and keep the path until they return); the single writer inserts
//! into a leaf under the leaf's write lock, and splits a full node by
//! write-locking its parent first and then the node. Because a reader can
//! only reach a node through its locked parent, it never sees a node
//! half-split, and an in-place replacement of an entry is atomic for it.
//! Locks are only ever taken parent before child, so no cycle can form.
//!
//! Splits happen on the way down (a full child is split before the writer
//! enters it), so an insert never has to walk back up.
//!
//! # Searching a node
//!
//! A node's keys are ~48 bytes each, so a binary search over 64 or 128 of them
//! misses the cache at nearly every step. Each node also keeps the 8-byte
//! summaries of its keys (`format::key::summary_of`, after the prefix its
//! first and last keys share): a search counts the summaries below the
//! probe's (8 contiguous lines, loaded in parallel) and compares whole keys
//! only where summaries tie. An insert between the first and last key adds
//! one summary; one at either end changes the shared prefix and recomputes
//! the node's summaries (128 at most).

use super::{MemKey, MemValue};
use crate::format::compare_keys;
use crate::format::key::{common_prefix_len, summary_of, summary_partition, user_key};
use parking_lot::{Mutex, RwLock};
use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

/// Most entries in a leaf.
const LEAF_MAX: usize = 128;
/// Most children of an inner node.
const INNER_MAX: usize = 64;

type NodeRef = Arc<RwLock<Node>>;

#[derive(Debug)]
enum Node {
    Leaf {
        keys: Vec<MemKey>,
        values: Vec<MemValue>,
        sums: Summaries,
    },
    Inner {
        /// `seps[i]` is the smallest key of `children[i + 1]`'s subtree (a
        /// memtable never removes entries, so it stays exactly that).
        seps: Vec<MemKey>,
        children: Vec<NodeRef>,
        sums: Summaries,
    },
}

/// A node's key summaries: the shared user-key prefix length of its first
/// and last keys, and each key's 8 bytes after it.
#[derive(Debug, Default)]
struct Summaries {
    skip: usize,
    sums: Vec<u64>,
}

impl Summaries {
    /// The summaries of a new node's keys, with room for `capacity`.
    fn of(keys: &[MemKey], capacity: usize) -> Self {
        let mut s = Summaries {
            skip: 0,
            sums: Vec::with_capacity(capacity),
        };
        s.rebuild(keys);
        s
    }

    fn rebuild(&mut self, keys: &[MemKey]) {
        self.sums.clear();
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            self.skip = 0;
            return;
        };
        self.skip = common_prefix_len(first.as_bytes(), last.as_bytes());
        let skip = self.skip;
        self.sums
            .extend(keys.iter().map(|k| summary_of(user_key(k.as_bytes()), skip)));
    }

    /// Follows `keys.insert(at, _)`.
    fn inserted(&mut self, keys: &[MemKey], at: usize) {
        if at == 0 || at + 1 == keys.len() {
            self.rebuild(keys);
        } else {
            self.sums
                .insert(at, summary_of(user_key(keys[at].as_bytes()), self.skip));
        }
    }

    /// How many of `keys` come before `key`, where `before(k)` holds for a
    /// prefix of them (see `format::key::summary_partition`).
    fn search(&self, keys: &[MemKey], key: &[u8], before: impl Fn(&[u8]) -> bool) -> usize {
        let Some(first) = keys.first() else { return 0 };
        let sums = &self.sums;
        summary_partition(
            &user_key(first.as_bytes())[..self.skip],
            keys.len(),
            |p| count_below(sums, p),
            |i| sums[i],
            key,
            |i| before(keys[i].as_bytes()),
        )
    }
}

impl Node {
    fn is_full(&self) -> bool {
        match self {
            Node::Leaf { keys, .. } => keys.len() >= LEAF_MAX,
            Node::Inner { children, .. } => children.len() >= INNER_MAX,
        }
    }

    /// Moves the upper half into a new node; returns it with its smallest key.
    fn split(&mut self) -> (MemKey, Node) {
        match self {
            Node::Leaf { keys, values, sums } => {
                let at = keys.len() / 2;
                let right_keys = keys.split_off(at);
                let right_values = values.split_off(at);
                let sep = right_keys[0].clone();
                sums.rebuild(keys);
                (
                    sep,
                    Node::Leaf {
                        sums: Summaries::of(&right_keys, LEAF_MAX),
                        keys: right_keys,
                        values: right_values,
                    },
                )
            }
            Node::Inner { seps, children, sums } => {
                // children[..at] stay; seps[at - 1] moves up as the new separator.
                let at = children.len() / 2;
                let right_children = children.split_off(at);
                let right_seps = seps.split_off(at);
                let sep = seps.pop().expect(
                    "a full inner node has INNER_MAX - 1 separators, so its left half keeps one to move up",
                );
                sums.rebuild(seps);
                (
                    sep,
                    Node::Inner {
                        sums: Summaries::of(&right_seps, INNER_MAX),
                        seps: right_seps,
                        children: right_children,
                    },
                )
            }
        }
    }
}

/// How many of a node's (non-decreasing) summaries are below `p`: first
/// the head of each 8-summary line, then the one line the answer falls in.
/// Branch-free, so the lines load in parallel when the node is cold.
fn count_below(sums: &[u64], p: u64) -> usize {
    const LINE: usize = 8;
    let heads: usize = sums
        .iter()
        .step_by(LINE)
        .skip(1)
        .map(|&s| usize::from(s < p))
        .sum();
    let start = heads * LINE;
    let line = &sums[start..(start + LINE).min(sums.len())];
    start + line.iter().map(|&s| usize::from(s < p)).sum::<usize>()
}

/// The child of an inner node whose subtree covers `key`.
fn child_for(seps: &[MemKey], sums: &Summaries, key: &[u8]) -> usize {
    sums.search(seps, key, |s| compare_keys(s, key) != Ordering::Greater)
}

/// A sorted map from internal keys to values: one writer, many readers.
#[derive(Debug)]
pub(super) struct BTree {
    root: RwLock<NodeRef>,
    len: AtomicUsize,
    /// Held by an insert: the split-on-the-way-down logic assumes that no
    /// other insert changes the tree under it.
    writer: Mutex<()>,
}

impl Default for BTree {
    fn default() -> Self {
        BTree {
            root: RwLock::new(Arc::new(RwLock::new(Node::Leaf {
                keys: Vec::new(),
                values: Vec::new(),
                sums: Summaries::default(),
            }))),
            len: AtomicUsize::new(0),
            writer: Mutex::new(()),
        }
    }
}

impl BTree {
    /// Entries held.
    pub fn len(&self) -> usize {
        self.len.load(AtomicOrdering::Acquire)
    }

    /// Inserts, replacing an entry with an equal key. Inserts are
    /// serialised (there is one writer; the lock costs it one uncontended
    /// atomic).
    pub fn insert(&self, key: MemKey, value: MemValue) {
        let _writer = self.writer.lock();
        {
            let root = self.root.read().clone();
            if root.read().is_full() {
                let mut slot = self.root.write();
                let mut old = slot.write();
                let (sep, right) = old.split();
                drop(old);
                let left = slot.clone();
                let seps = vec![sep];
                *slot = Arc::new(RwLock::new(Node::Inner {
                    sums: Summaries::of(&seps, INNER_MAX),
                    seps,
                    children: vec![left, Arc::new(RwLock::new(right))],
                }));
            }
        }
        let mut node = self.root.read().clone();
        loop {
            let next = {
                let g = node.read();
                match &*g {
                    Node::Leaf { .. } => None,
                    Node::Inner { seps, children, sums } => {
                        let i = child_for(seps, sums, key.as_bytes());
                        Some((i, children[i].clone()))
                    }
                }
            };
            let Some((i, child)) = next else { break };
            if child.read().is_full() {
                let mut parent = node.write();
                let mut c = child.write();
                let (sep, right) = c.split();
                let goes_right = compare_keys(key.as_bytes(), sep.as_bytes()) != Ordering::Less;
                let right = Arc::new(RwLock::new(right));
                if let Node::Inner { seps, children, sums } = &mut *parent {
                    seps.insert(i, sep);
                    sums.inserted(seps, i);
                    children.insert(i + 1, right.clone());
                }
                drop(c);
                drop(parent);
                node = if goes_right { right } else { child };
            } else {
                node = child;
            }
        }
        let mut leaf = node.write();
        if let Node::Leaf { keys, values, sums } = &mut *leaf {
            let k = key.as_bytes();
            let i = sums.search(keys, k, |e| compare_keys(e, k) == Ordering::Less);
            if keys.get(i).is_some_and(|e| e.as_bytes() == k) {
                values[i] = value;
            } else {
                keys.insert(i, key);
                values.insert(i, value);
                sums.inserted(keys, i);
                self.len.fetch_add(1, AtomicOrdering::Release);
            }
        }
    }

    /// Calls `f` with the leaf that would hold `key` and the position of the
    /// first entry ≥ `key` (`exclusive`: > `key`) in it, under the leaf's
    /// read lock; also passes the smallest key of the next leaf.
    pub fn with_leaf<T>(
        &self,
        key: Option<&[u8]>,
        exclusive: bool,
        f: impl FnOnce(&[MemKey], &[MemValue], usize, Option<&MemKey>) -> T,
    ) -> T {
        let root = self.root.read();
        descend(&root, key, exclusive, None, f)
    }
}

fn descend<T>(
    node: &RwLock<Node>,
    key: Option<&[u8]>,
    exclusive: bool,
    next: Option<&MemKey>,
    f: impl FnOnce(&[MemKey], &[MemValue], usize, Option<&MemKey>) -> T,
) -> T {
    let g = node.read();
    match &*g {
        Node::Leaf { keys, values, sums } => {
            let at = match key {
                None => 0,
                Some(k) => sums.search(keys, k, |e| match compare_keys(e, k) {
                    Ordering::Less => true,
                    Ordering::Equal => exclusive,
                    Ordering::Greater => false,
                }),
            };
            f(keys, values, at, next)
        }
        Node::Inner { seps, children, sums } => {
            let i = match key {
                None => 0,
                Some(k) => child_for(seps, sums, k),
            };
            descend(&children[i], key, exclusive, seps.get(i).or(next), f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key_with_version;
    use std::collections::BTreeMap;

    fn collect(t: &BTree) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut from: Option<Vec<u8>> = None;
        let mut exclusive = false;
        loop {
            let (keys, next) = t.with_leaf(from.as_deref(), exclusive, |ks, _, at, next| {
                (
                    ks[at..].iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>(),
                    next.map(|k| k.as_bytes().to_vec()),
                )
            });
            out.extend(keys);
            match next {
                Some(n) => {
                    from = Some(n);
                    exclusive = false;
                }
                None => return out,
            }
        }
    }

    proptest::proptest! {
        /// Random inserts (with repeats) give the same sorted contents and
        /// lower bounds as a `BTreeMap` ordered the same way.
        #[test]
        fn matches_a_sorted_map(
            ops in proptest::collection::vec((0u16..3000, 0u64..4, 0u8..255), 1..3000),
            probes in proptest::collection::vec((0u16..3100, 0u64..5), 1..50),
            long_prefix in proptest::bool::ANY,
        ) {
            // Keys of mixed lengths, optionally behind a prefix longer than a
            // summary, so node summaries tie and only whole keys decide.
            let pre = if long_prefix { "tenant/0000000042/" } else { "" };
            let t = BTree::default();
            let mut model: BTreeMap<Vec<u8>, u8> = BTreeMap::new();
            for (k, v, x) in ops {
                let key = key_with_version(format!("{pre}{k}").as_bytes(), v);
                t.insert(MemKey::new(&key), MemValue { user_meta: x, ..MemValue::default() });
                model.insert(key, x);
            }
            let mut want: Vec<Vec<u8>> = model.keys().cloned().collect();
            want.sort_by(|a, b| compare_keys(a, b));
            proptest::prop_assert_eq!(t.len(), want.len());
            proptest::prop_assert_eq!(collect(&t), want.clone());
            for (i, (k, v)) in probes.into_iter().enumerate() {
                // Probes with and without the prefix (those without sort
                // before or after every key).
                let p = if i % 3 == 0 { "" } else { pre };
                let probe = key_with_version(format!("{p}{k}").as_bytes(), v);
                let first = want.iter().find(|w| compare_keys(w, &probe) != Ordering::Less);
                let got = t.with_leaf(Some(&probe), false, |ks, vs, at, next| {
                    ks.get(at).map(|k| (k.as_bytes().to_vec(), vs[at].user_meta)).ok_or(next.map(|n| n.as_bytes().to_vec()))
                });
                match got {
                    Ok((k, um)) => {
                        proptest::prop_assert_eq!(Some(&k), first);
                        proptest::prop_assert_eq!(model[&k], um);
                    }
                    // The leaf ended: the answer is the next leaf's first key.
                    Err(next) => proptest::prop_assert_eq!(next.as_ref(), first),
                }
            }
        }
    }

    /// A walk leaf by leaf (as memtable iterators do) while the writer splits
    /// leaves and inner nodes sees keys strictly ascending and every key
    /// inserted before the walk began.
    #[test]
    fn walks_racing_splits_are_ordered_and_complete() {
        let t = Arc::new(BTree::default());
        let done = Arc::new(AtomicUsize::new(0));
        let n = 30_000usize;
        let key = |i: usize| key_with_version(format!("{:08}", (i * 7919) % n).as_bytes(), 1);
        std::thread::scope(|s| {
            let (t2, done2) = (t.clone(), done.clone());
            s.spawn(move || {
                let mut walks = 0;
                while done2.load(AtomicOrdering::Acquire) < n || walks == 0 {
                    let before = done2.load(AtomicOrdering::Acquire);
                    let seen = collect(&t2);
                    assert!(
                        seen.windows(2)
                            .all(|w| compare_keys(&w[0], &w[1]) == Ordering::Less)
                    );
                    let set: std::collections::HashSet<&Vec<u8>> = seen.iter().collect();
                    for i in 0..before {
                        assert!(set.contains(&key(i)), "key {i} of {before} missing from a walk");
                    }
                    walks += 1;
                }
            });
            for i in 0..n {
                t.insert(MemKey::new(&key(i)), MemValue::default());
                done.store(i + 1, AtomicOrdering::Release);
            }
        });
    }

    /// Readers racing the writer always find every key inserted before they
    /// looked, with its value.
    #[test]
    fn readers_see_every_finished_insert() {
        let t = Arc::new(BTree::default());
        let done = Arc::new(AtomicUsize::new(0));
        let n = 20_000usize;
        let key = |i: usize| key_with_version(format!("{:08}", (i * 7919) % n).as_bytes(), 1);
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (t, done) = (t.clone(), done.clone());
                s.spawn(move || {
                    let mut x = 1u64;
                    while done.load(AtomicOrdering::Acquire) < n {
                        let upto = done.load(AtomicOrdering::Acquire);
                        if upto == 0 {
                            continue;
                        }
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        let i = (x >> 33) as usize % upto;
                        let k = key(i);
                        let found = t.with_leaf(Some(&k), false, |ks, vs, at, _| {
                            ks.get(at)
                                .filter(|e| e.as_bytes() == k.as_slice())
                                .map(|_| vs[at].user_meta)
                        });
                        assert_eq!(found, Some((i % 251) as u8), "key {i} of {upto} missing");
                    }
                });
            }
            for i in 0..n {
                t.insert(
                    MemKey::new(&key(i)),
                    MemValue {
                        user_meta: (i % 251) as u8,
                        ..MemValue::default()
                    },
                );
                done.store(i + 1, AtomicOrdering::Release);
            }
        });
    }
}
