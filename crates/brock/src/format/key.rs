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

/// Orders internal keys: user key ascending, then version descending.
pub fn compare_keys(a: &[u8], b: &[u8]) -> Ordering {
    user_key(a)
        .cmp(user_key(b))
        .then_with(|| a[user_key(a).len()..].cmp(&b[user_key(b).len()..]))
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
    fn newer_versions_sort_first() {
        let new = key_with_version(b"k", 9);
        let old = key_with_version(b"k", 3);
        assert_eq!(compare_keys(&new, &old), Ordering::Less);
        assert!(new < old, "bytewise order must agree");
        let other = key_with_version(b"k\0", 100);
        assert_eq!(compare_keys(&old, &other), Ordering::Less);
    }
}
