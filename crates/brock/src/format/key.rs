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
    user_key(a) == user_key(b)
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
