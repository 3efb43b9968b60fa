//! Which key ranges and tables running compactions hold.
//!
//! Badger's `compactStatus` (`compaction.go`). Before a compaction starts it
//! registers the range it reads on its source level and the range it writes
//! on its target level; a second compaction whose ranges overlap a
//! registered one on either level is refused, so concurrent compactions never
//! touch the same keys or tables. `compacting_size` per level (Badger's
//! `delSize`) keeps scores from counting bytes already on their way out.
//!
//! Locking: one mutex (in the caller) guards a `CompactStatus`.

use super::key_range::KeyRange;
use std::collections::HashSet;

/// A registered compaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Source level.
    pub this_level: usize,
    /// Target level.
    pub next_level: usize,
    /// Range read from the source level.
    pub this_range: KeyRange,
    /// Range written on the target level.
    pub next_range: KeyRange,
    /// Bytes leaving the source level.
    pub this_size: u64,
    /// Ids of every table taking part.
    pub tables: Vec<u64>,
}

#[derive(Debug, Default, Clone)]
struct LevelStatus {
    ranges: Vec<KeyRange>,
    compacting_size: u64,
}

/// Compactions in flight.
#[derive(Debug, Default, Clone)]
pub struct CompactStatus {
    levels: Vec<LevelStatus>,
    tables: HashSet<u64>,
}

impl CompactStatus {
    /// Status for `n` levels.
    pub fn new(n: usize) -> Self {
        CompactStatus {
            levels: vec![LevelStatus::default(); n],
            tables: HashSet::new(),
        }
    }

    /// Whether `range` overlaps a range in flight on `level`.
    pub fn overlaps(&self, level: usize, range: &KeyRange) -> bool {
        self.levels
            .get(level)
            .is_some_and(|l| l.ranges.iter().any(|r| r.overlaps(range)))
    }

    /// Whether the table is taking part in a compaction.
    pub fn is_compacting(&self, table: u64) -> bool {
        self.tables.contains(&table)
    }

    /// Bytes of `level` on their way out.
    pub fn compacting_size(&self, level: usize) -> u64 {
        self.levels.get(level).map_or(0, |l| l.compacting_size)
    }

    /// Registers `c` unless it overlaps something in flight (Badger's `compareAndAdd`).
    pub fn try_claim(&mut self, c: &Claim) -> bool {
        if self.overlaps(c.this_level, &c.this_range) || self.overlaps(c.next_level, &c.next_range) {
            return false;
        }
        if c.tables.iter().any(|t| self.tables.contains(t)) {
            return false;
        }
        let this = &mut self.levels[c.this_level];
        this.ranges.push(c.this_range.clone());
        this.compacting_size += c.this_size;
        // An L0→L0 compaction has no target range of its own.
        if !c.next_range.is_empty() {
            self.levels[c.next_level].ranges.push(c.next_range.clone());
        }
        self.tables.extend(c.tables.iter().copied());
        true
    }

    /// Forgets a finished (or failed) compaction.
    pub fn release(&mut self, c: &Claim) {
        let this = &mut self.levels[c.this_level];
        if let Some(i) = this.ranges.iter().position(|r| *r == c.this_range) {
            this.ranges.remove(i);
        }
        this.compacting_size = this.compacting_size.saturating_sub(c.this_size);
        let next = &mut self.levels[c.next_level];
        if !c.next_range.is_empty()
            && let Some(i) = next.ranges.iter().position(|r| *r == c.next_range)
        {
            next.ranges.remove(i);
        }
        for t in &c.tables {
            self.tables.remove(t);
        }
    }

    /// True when nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.tables.is_empty() && self.levels.iter().all(|l| l.ranges.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::key_with_version;

    fn range(a: &str, b: &str) -> KeyRange {
        KeyRange::of_keys(
            &key_with_version(a.as_bytes(), 1),
            &key_with_version(b.as_bytes(), 1),
        )
    }

    fn claim(l: usize, a: &str, b: &str, tables: &[u64]) -> Claim {
        Claim {
            this_level: l,
            next_level: l + 1,
            this_range: range(a, b),
            next_range: range(a, b),
            this_size: 10,
            tables: tables.to_vec(),
        }
    }

    #[test]
    fn overlapping_claims_are_refused_until_released() {
        let mut s = CompactStatus::new(7);
        let c1 = claim(1, "a", "f", &[1, 2]);
        assert!(s.try_claim(&c1));
        assert_eq!(s.compacting_size(1), 10);
        assert!(!s.try_claim(&claim(1, "e", "g", &[3])), "same level, overlapping");
        assert!(
            !s.try_claim(&claim(2, "b", "c", &[4])),
            "its source range is c1's target range"
        );
        assert!(s.try_claim(&claim(1, "h", "k", &[5])));
        assert!(!s.try_claim(&claim(3, "x", "y", &[2])), "table 2 is busy");
        s.release(&c1);
        assert!(s.try_claim(&claim(2, "b", "c", &[4])));
        assert_eq!(s.compacting_size(1), 10);
    }
}
