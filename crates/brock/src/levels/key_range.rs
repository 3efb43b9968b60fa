//! Key ranges of tables and compactions.
//!
//! Badger's `keyRange` (`compaction.go`). A range covers whole user keys:
//! `left` is the smallest user key at the newest possible version and
//! `right` the biggest at the oldest, so every version of a boundary key is
//! inside. An empty range overlaps everything (Badger's convention for "the
//! whole level"); `inf` is the explicit infinite range of an L0→L0
//! compaction.

use crate::format::{compare_keys, key_with_version, user_key};
use crate::table::Table;
use std::cmp::Ordering;
use std::sync::Arc;

/// An inclusive range of internal keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyRange {
    /// Smallest key (user key at version `u64::MAX`).
    pub left: Vec<u8>,
    /// Biggest key (user key at version 0).
    pub right: Vec<u8>,
    /// Covers everything.
    pub inf: bool,
}

impl KeyRange {
    /// The infinite range.
    pub fn infinite() -> Self {
        KeyRange {
            inf: true,
            ..KeyRange::default()
        }
    }

    /// The range of user keys `smallest..=biggest` (internal keys given).
    pub fn of_keys(smallest: &[u8], biggest: &[u8]) -> Self {
        KeyRange {
            left: key_with_version(user_key(smallest), u64::MAX),
            right: key_with_version(user_key(biggest), 0),
            inf: false,
        }
    }

    /// The range spanning `tables` (empty for none).
    pub fn of_tables(tables: &[Arc<Table>]) -> Self {
        let Some(first) = tables.first() else {
            return KeyRange::default();
        };
        let mut smallest = first.smallest();
        let mut biggest = first.biggest();
        for t in &tables[1..] {
            if compare_keys(t.smallest(), smallest) == Ordering::Less {
                smallest = t.smallest();
            }
            if compare_keys(t.biggest(), biggest) == Ordering::Greater {
                biggest = t.biggest();
            }
        }
        KeyRange::of_keys(smallest, biggest)
    }

    /// No bounds and not infinite.
    pub fn is_empty(&self) -> bool {
        self.left.is_empty() && self.right.is_empty() && !self.inf
    }

    /// Grows to cover `other` too.
    pub fn extend(&mut self, other: &KeyRange) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other.clone();
            return;
        }
        if self.left.is_empty() || compare_keys(&other.left, &self.left) == Ordering::Less {
            self.left = other.left.clone();
        }
        if self.right.is_empty() || compare_keys(&other.right, &self.right) == Ordering::Greater {
            self.right = other.right.clone();
        }
        self.inf |= other.inf;
    }

    /// Badger's `overlapsWith`: an empty `self` overlaps everything; an empty
    /// `other` nothing.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        if self.is_empty() {
            return true;
        }
        if other.is_empty() {
            return false;
        }
        if self.inf || other.inf {
            return true;
        }
        compare_keys(&self.left, &other.right) != Ordering::Greater
            && compare_keys(&self.right, &other.left) != Ordering::Less
    }

    /// Indices `[lo, hi)` of the tables of a sorted, non-overlapping level
    /// that overlap this range.
    pub fn overlapping(&self, level: &[Arc<Table>]) -> (usize, usize) {
        if self.inf || self.is_empty() {
            return (0, level.len());
        }
        let lo = level.partition_point(|t| compare_keys(t.biggest(), &self.left) == Ordering::Less);
        let hi = level.partition_point(|t| compare_keys(t.smallest(), &self.right) != Ordering::Greater);
        (lo, hi.max(lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: &str, b: &str) -> KeyRange {
        KeyRange::of_keys(
            &key_with_version(a.as_bytes(), 5),
            &key_with_version(b.as_bytes(), 5),
        )
    }

    #[test]
    fn overlap_rules() {
        assert!(
            r("a", "c").overlaps(&r("c", "d")),
            "a shared boundary key overlaps"
        );
        assert!(!r("a", "b").overlaps(&r("c", "d")));
        assert!(r("b", "c").overlaps(&r("a", "z")));
        assert!(KeyRange::default().overlaps(&r("a", "b")));
        assert!(!r("a", "b").overlaps(&KeyRange::default()));
        assert!(KeyRange::infinite().overlaps(&r("a", "b")));
        let mut x = r("c", "d");
        x.extend(&r("a", "b"));
        assert_eq!(x, r("a", "d"));
    }
}
