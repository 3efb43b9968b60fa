//! Internal keys: a user key followed by its version.
//!
//! Badger's `y.KeyWithTs`: `user_key ‖ u64 BE (u64::MAX - version)`, so plain
//! bytewise order puts the versions of one key newest first. Keys of 8 bytes or
//! fewer have no version part (parse gives version 0), as in Badger.
//! Byte layout: `docs/format.md` §"Internal key".

use std::cmp::Ordering;

/// Bytes of the version suffix.
pub const VERSION_LEN: usize = 8;

/// The prefix reserved for Badger's own keys (`!badger!txn`, `!badger!banned`).
pub const INTERNAL_PREFIX: &[u8] = b"!badger!";

/// The key of the transaction-finish marker in logs (before its version).
pub const TXN_KEY: &[u8] = b"!badger!txn";

/// The longest user key Badger accepts.
pub const MAX_KEY_SIZE: usize = 65_000;

/// Appends `key ‖ version` to `out`.
pub fn append_key_with_version(out: &mut Vec<u8>, key: &[u8], version: u64) {
    out.extend_from_slice(key);
    out.extend_from_slice(&(u64::MAX - version).to_be_bytes());
}

/// `key ‖ version` as a new vector.
pub fn key_with_version(key: &[u8], version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + VERSION_LEN);
    append_key_with_version(&mut out, key, version);
    out
}

/// Calls `f` with `key ‖ version`, built on the stack when short (a point
/// lookup's probe, made once per get).
pub fn with_version<R>(key: &[u8], version: u64, f: impl FnOnce(&[u8]) -> R) -> R {
    const ON_STACK: usize = 64;
    let n = key.len() + VERSION_LEN;
    if n <= ON_STACK {
        let mut buf = [0u8; ON_STACK];
        buf[..key.len()].copy_from_slice(key);
        buf[key.len()..n].copy_from_slice(&(u64::MAX - version).to_be_bytes());
        f(&buf[..n])
    } else {
        f(&key_with_version(key, version))
    }
}

/// The user-key part of an internal key.
pub fn user_key(key: &[u8]) -> &[u8] {
    if key.len() < VERSION_LEN {
        return key;
    }
    &key[..key.len() - VERSION_LEN]
}

/// The version of an internal key; 0 when the key is too short to carry one.
pub fn version(key: &[u8]) -> u64 {
    if key.len() <= VERSION_LEN {
        return 0;
    }
    let mut b = [0u8; VERSION_LEN];
    b.copy_from_slice(&key[key.len() - VERSION_LEN..]);
    u64::MAX - u64::from_be_bytes(b)
}

/// Slices up to this long are compared inline, eight bytes at a time.
const INLINE_COMPARE_UP_TO: usize = 64;

/// Bytewise order of two slices, as `a.cmp(b)`.
///
/// Keys are short, and the library `memcmp` behind `<[u8]>::cmp` costs a
/// call and a length dispatch per comparison; searches make dozens of
/// comparisons per lookup (a fifth of a random get's time went to the call).
/// Long slices still go to `memcmp`, which is faster there.
#[inline]
pub fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    if n > INLINE_COMPARE_UP_TO {
        return a.cmp(b);
    }
    let mut i = 0;
    while i + 8 <= n {
        let (mut x, mut y) = ([0u8; 8], [0u8; 8]);
        x.copy_from_slice(&a[i..i + 8]);
        y.copy_from_slice(&b[i..i + 8]);
        if x != y {
            return u64::from_be_bytes(x).cmp(&u64::from_be_bytes(y));
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

/// `a == b` without the library `memcmp` call for short slices (see
/// [`compare_bytes`]).
#[inline]
pub fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && compare_bytes(a, b) == Ordering::Equal
}

/// Orders internal keys: user key ascending, then version descending.
#[inline]
pub fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    // Equal lengths mean equal user-key lengths, and then the bytewise order
    // of the whole keys is the order of (user key, version suffix).
    if a.len() == b.len() && a.len() >= VERSION_LEN {
        return compare_bytes(a, b);
    }
    compare_bytes(user_key(a), user_key(b))
        .then_with(|| compare_bytes(&a[user_key(a).len()..], &b[user_key(b).len()..]))
}

/// [`compare_keys`] of `a ‖ b` (an entry's key stored as a shared prefix and
/// its own suffix) against `key`, without assembling it.
pub fn compare_split_key(a: &[u8], b: &[u8], key: &[u8]) -> Ordering {
    let len = a.len() + b.len();
    if len < VERSION_LEN || key.len() < VERSION_LEN {
        let mut whole = Vec::with_capacity(len);
        whole.extend_from_slice(a);
        whole.extend_from_slice(b);
        return compare_keys(&whole, key);
    }
    let (ul, kl) = (len - VERSION_LEN, key.len() - VERSION_LEN);
    // User keys: the common length first, piece by piece.
    let common = ul.min(kl);
    let in_a = a.len().min(common);
    let ord = compare_bytes(&a[..in_a], &key[..in_a])
        .then_with(|| compare_bytes(&b[..common - in_a], &key[in_a..common]));
    if ord != Ordering::Equal {
        return ord;
    }
    if ul != kl {
        return ul.cmp(&kl);
    }
    // Same user key: compare the 8 version bytes.
    let mut ver = [0u8; VERSION_LEN];
    for (j, v) in ver.iter_mut().enumerate() {
        let at = ul + j;
        *v = if at < a.len() { a[at] } else { b[at - a.len()] };
    }
    compare_bytes(&ver, &key[kl..])
}

/// True when both internal keys have the same user key.
pub fn same_user_key(a: &[u8], b: &[u8]) -> bool {
    bytes_equal(user_key(a), user_key(b))
}

/// 8-byte, order-keeping summaries of sorted keys that share a prefix.
///
/// Every user key of a sorted run (a table's block base keys, a block's
/// entries) begins with the run's common prefix, so the 8 user-key bytes after
/// it, big-endian and zero-padded, never decrease along the run. A search
/// over those summaries touches a few contiguous cache lines instead of a
/// key (and its header) per step; only keys whose summary ties with the
/// probe's need a full comparison. The prefix and the summaries share one
/// buffer, and a run longer than two groups also keeps every
/// [`GROUP`]-th summary in a small array, so a search reads that array
/// (warm when the run is searched often) and then one group.
/// Built in memory when a table or block is opened; nothing is stored on disk.
#[derive(Debug, Clone, Default)]
pub struct KeySummaries {
    /// Length of the user-key prefix every key of the run shares.
    common_len: usize,
    /// Bytes per key: a summary, and a `u32` the owner keeps with it when 12.
    stride: usize,
    /// The common prefix, then one record per key, in order: its big-endian
    /// summary and, when kept, its `u32` (little-endian).
    bytes: Vec<u8>,
    /// Every `GROUP`-th summary, when the run is longer than two groups.
    coarse: Vec<u64>,
}

/// Summaries per group of a long run.
pub const GROUP: usize = 16;

/// The summary of a user key whose first `skip` bytes are the common prefix.
pub fn summary_of(user_key: &[u8], skip: usize) -> u64 {
    let rest = user_key.get(skip..).unwrap_or_default();
    let mut b = [0u8; 8];
    let n = rest.len().min(8);
    b[..n].copy_from_slice(&rest[..n]);
    u64::from_be_bytes(b)
}

impl KeySummaries {
    /// An empty set for a run of internal keys from `first` to `last`;
    /// [`push`](Self::push) then adds the run's keys in ascending order and
    /// [`finish`](Self::finish) seals it.
    pub fn with_bounds(first: &[u8], last: &[u8], capacity: usize) -> Self {
        Self::new(first, last, capacity, 8)
    }

    /// As [`with_bounds`](Self::with_bounds), keeping a `u32` with each key
    /// (added by [`push_with`](Self::push_with), read by [`extra`](Self::extra)):
    /// a block keeps its entries' offsets there, so the offset of the entry a
    /// search lands on shares the search's cache line.
    pub fn with_bounds_and_extra(first: &[u8], last: &[u8], capacity: usize) -> Self {
        Self::new(first, last, capacity, 12)
    }

    fn new(first: &[u8], last: &[u8], capacity: usize, stride: usize) -> Self {
        let a = user_key(first);
        let n = common_prefix_len(first, last);
        let mut bytes = Vec::with_capacity(n + stride * capacity);
        bytes.extend_from_slice(&a[..n]);
        KeySummaries {
            common_len: n,
            stride,
            bytes,
            coarse: Vec::new(),
        }
    }

    /// Adds the next key of the run (to a set made by `with_bounds`).
    pub fn push(&mut self, key: &[u8]) {
        debug_assert_eq!(self.stride, 8);
        let s = summary_of(user_key(key), self.common_len);
        self.bytes.extend_from_slice(&s.to_be_bytes());
    }

    /// Adds the next key of the run and its `u32` (to a set made by
    /// `with_bounds_and_extra`).
    pub fn push_with(&mut self, key: &[u8], extra: u32) {
        debug_assert_eq!(self.stride, 12);
        let s = summary_of(user_key(key), self.common_len);
        self.bytes.extend_from_slice(&s.to_be_bytes());
        self.bytes.extend_from_slice(&extra.to_le_bytes());
    }

    /// The `u32` kept with key `i`.
    ///
    /// # Panics
    /// If `i` is out of range or the set keeps no `u32`s.
    pub fn extra(&self, i: usize) -> u32 {
        let at = self.common_len + self.stride * i + 8;
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.bytes[at..at + 4]);
        u32::from_le_bytes(b)
    }

    /// Seals the run: builds the group index of a long run.
    pub fn finish(&mut self) {
        let n = self.len();
        if n > 2 * GROUP {
            self.coarse = (0..n).step_by(GROUP).map(|i| self.summary(i)).collect();
        }
        self.bytes.shrink_to_fit();
    }

    /// The number of keys summarised.
    pub fn len(&self) -> usize {
        (self.bytes.len() - self.common_len)
            .checked_div(self.stride)
            .unwrap_or(0)
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held, for cache accounting.
    pub fn size_in_memory(&self) -> usize {
        self.bytes.len() + 8 * self.coarse.len()
    }

    fn summary(&self, i: usize) -> u64 {
        let at = self.common_len + self.stride * i;
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_be_bytes(b)
    }

    /// How many summaries are below `p`.
    fn count_below(&self, p: u64) -> usize {
        let (start, end) = if self.coarse.is_empty() {
            (0, self.len())
        } else {
            // coarse[j] is summary j·GROUP: the count lies in the group
            // before the first coarse entry that is not below p.
            let c = self.coarse.partition_point(|&x| x < p);
            if c == 0 {
                return 0;
            }
            ((c - 1) * GROUP, (c * GROUP).min(self.len()))
        };
        // A branch-free count over a group's two cache lines.
        start
            + (start..end)
                .map(|i| usize::from(self.summary(i) < p))
                .sum::<usize>()
    }

    /// The number of leading keys for which `before(i)` holds, where `before`
    /// compares key `i` with `key` and holds for a prefix of the run (keys
    /// below `key`, or keys not above it). Only keys whose summary equals
    /// `key`'s are passed to `before`; every other key is placed by its
    /// summary, which requires `before` to hold for every key whose user key
    /// sorts below `key`'s and for none whose user key sorts above.
    pub fn partition_point(&self, key: &[u8], before: impl FnMut(usize) -> bool) -> usize {
        summary_partition(
            &self.bytes[..self.common_len],
            self.len(),
            |p| self.count_below(p),
            |i| self.summary(i),
            key,
            before,
        )
    }
}

/// The length of the user-key prefix two internal keys share: every key
/// sorted between them shares it too.
pub fn common_prefix_len(first: &[u8], last: &[u8]) -> usize {
    let (a, b) = (user_key(first), user_key(last));
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The search behind [`KeySummaries::partition_point`], over any store of
/// summaries: `len` keys sharing the user-key prefix `common`, summary `i`
/// from `summary`, and `count_below(p)` the number of summaries below `p`.
pub fn summary_partition(
    common: &[u8],
    len: usize,
    count_below: impl FnOnce(u64) -> usize,
    summary: impl Fn(usize) -> u64,
    key: &[u8],
    mut before: impl FnMut(usize) -> bool,
) -> usize {
    let uk = user_key(key);
    // Inline 8-byte compares rather than `starts_with` (a libc call).
    let head = &uk[..uk.len().min(common.len())];
    match compare_bytes(head, common) {
        Ordering::Equal if head.len() == common.len() => {}
        // Every key of the run starts with `common`: the probe sorts
        // before all of them (it is below the prefix, or a proper prefix of
        // it) or after all of them.
        Ordering::Less | Ordering::Equal => return 0,
        Ordering::Greater => return len,
    }
    let p = summary_of(uk, common.len());
    let mut lo = count_below(p);
    let mut hi = lo;
    while hi < len && summary(hi) == p {
        hi += 1;
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if before(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes() {
        assert_eq!(
            key_with_version(b"ab", 1),
            [b'a', b'b', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(key_with_version(b"", u64::MAX), [0u8; 8]);
    }

    #[test]
    fn parse_round_trip() {
        let k = key_with_version(b"hello", 42);
        assert_eq!(user_key(&k), b"hello");
        assert_eq!(version(&k), 42);
        assert_eq!(version(b"short"), 0);
        assert_eq!(version(&[0u8; 8]), 0);
    }

    #[test]
    fn split_compare_matches_whole_compare() {
        let keys: Vec<Vec<u8>> = [&b"a"[..], b"ab", b"abc", b"b", b"", b"abcdefghij"]
            .iter()
            .flat_map(|k| [1u64, 7, u64::MAX].map(|v| key_with_version(k, v)))
            .collect();
        for e in &keys {
            for cut in 0..=e.len() {
                for k in &keys {
                    assert_eq!(
                        compare_split_key(&e[..cut], &e[cut..], k),
                        compare_keys(e, k),
                        "{e:?} at {cut} vs {k:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// The inline comparison is the library's, at every length around
        /// the eight-byte steps and the memcmp cut-over, on a small alphabet
        /// so long equal runs are common.
        #[test]
        fn compare_bytes_is_slice_order(
            a in proptest::collection::vec(0u8..3, 0..80),
            b in proptest::collection::vec(0u8..3, 0..80),
        ) {
            proptest::prop_assert_eq!(compare_bytes(&a, &b), a.cmp(&b));
            let mut c = a.clone();
            c.extend_from_slice(&b);
            proptest::prop_assert_eq!(compare_bytes(&a, &c), a.cmp(&c));
            proptest::prop_assert_eq!(compare_bytes(&c, &a), c.cmp(&a));
        }

        /// A summary search places every probe where a plain search over
        /// the keys does, for "below the probe" and "not above it": runs of
        /// one key and of many (with the group index), user keys of mixed
        /// lengths over a long shared prefix (so summaries tie and zero
        /// padding matters), several versions per key, and probes inside,
        /// before and after the run.
        #[test]
        fn key_summaries_search_as_a_plain_search(
            keys in proptest::collection::vec(
                (proptest::collection::vec(0u8..3, 0..14), 0u64..4), 1..120),
            probes in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 0..16), 0u64..5), 1..40),
            prefix_len in 0usize..12,
        ) {
            let prefix = vec![1u8; prefix_len];
            let mut run: Vec<Vec<u8>> = keys
                .iter()
                .map(|(k, v)| key_with_version(&[prefix.as_slice(), k].concat(), *v))
                .collect();
            run.sort_by(|a, b| compare_keys(a, b));
            run.dedup();
            let mut sums = KeySummaries::with_bounds(&run[0], &run[run.len() - 1], run.len());
            for k in &run {
                sums.push(k);
            }
            sums.finish();
            proptest::prop_assert_eq!(sums.len(), run.len());
            for (k, v) in probes {
                // Half the probes share the run's prefix.
                let uk = if v % 2 == 0 { [prefix.as_slice(), &k].concat() } else { k };
                let probe = key_with_version(&uk, v);
                let below = |i: usize| compare_keys(&run[i], &probe) == Ordering::Less;
                let not_above = |i: usize| compare_keys(&run[i], &probe) != Ordering::Greater;
                proptest::prop_assert_eq!(
                    sums.partition_point(&probe, below),
                    run.partition_point(|k| compare_keys(k, &probe) == Ordering::Less)
                );
                proptest::prop_assert_eq!(
                    sums.partition_point(&probe, not_above),
                    run.partition_point(|k| compare_keys(k, &probe) != Ordering::Greater)
                );
            }
        }
    }

    #[test]
    fn newer_versions_sort_first() {
        let new = key_with_version(b"k", 9);
        let old = key_with_version(b"k", 3);
        assert_eq!(compare_keys(&new, &old), Ordering::Less);
        assert!(new < old, "bytewise order must agree");
        let other = key_with_version(b"k\0", 100);
        assert_eq!(compare_keys(&old, &other), Ordering::Less);
    }
}
