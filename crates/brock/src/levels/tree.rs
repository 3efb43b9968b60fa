//! The tables of every level at one moment: an immutable snapshot.
//!
//! Badger's `levelsController` read side (`levels.go` `get`,
//! `appendIterators`, `level_handler.go`). L0 tables may overlap and are
//! kept newest first (by version, then id); every deeper level is sorted by
//! smallest key and its tables may not overlap, which [`Tree::new`] checks.
//! A `Tree` is shared through `Arc`; edits build a new one. L0 is ordered by
//! the versions its tables hold (see [`sort_l0`]).

use crate::error::{CorruptionKind, Error, Result};
use crate::format::value_pointer::copy_rank;
use crate::format::{compare_keys, user_key};
use crate::iterator::KvIterator;
use crate::table::{ConcatIterator, Found, Table, TableIterator};
use std::cmp::Ordering;
use std::sync::Arc;

/// Orders L0 newest first by the data it holds: highest version, then
/// highest id. Flushes make both agree; a table rewritten in place
/// (drop-prefix) or an L0→L0 output keeps its versions but gets a new id, so
/// ordering by id alone would place older data above newer.
fn sort_l0(tables: &mut [Arc<Table>]) {
    tables.sort_by_key(|t| std::cmp::Reverse((t.index().max_version, t.id())));
}

/// Tables per level.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    levels: Vec<Vec<Arc<Table>>>,
}

impl Tree {
    /// Arranges tables per level (L0 newest first, others by key) and checks
    /// that no two tables of a level ≥ 1 overlap.
    pub fn new(mut levels: Vec<Vec<Arc<Table>>>) -> Result<Self> {
        for (level, tables) in levels.iter_mut().enumerate() {
            if level == 0 {
                sort_l0(tables);
                continue;
            }
            tables.sort_by(|a, b| compare_keys(a.smallest(), b.smallest()));
            for pair in tables.windows(2) {
                if compare_keys(pair[0].biggest(), pair[1].smallest()) != Ordering::Less {
                    return Err(Error::corruption(
                        pair[1].path(),
                        0,
                        CorruptionKind::Inconsistent {
                            detail: format!(
                                "tables {} and {} overlap at level {level}",
                                pair[0].id(),
                                pair[1].id()
                            ),
                        },
                    ));
                }
            }
        }
        Ok(Tree { levels })
    }

    /// An empty tree with `n` levels.
    pub fn empty(n: usize) -> Self {
        Tree {
            levels: vec![Vec::new(); n],
        }
    }

    /// Tables per level.
    pub fn levels(&self) -> &[Vec<Arc<Table>>] {
        &self.levels
    }

    /// Tables in L0.
    pub fn l0_count(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The highest version in any table.
    pub fn max_version(&self) -> u64 {
        self.levels
            .iter()
            .flatten()
            .map(|t| t.index().max_version)
            .max()
            .unwrap_or(0)
    }

    /// A new tree with `remove` (ids) taken out of level `from` and `to`,
    /// and `add` put into level `to`, each level kept in order.
    pub fn with_edit(&self, from: usize, to: usize, remove: &[u64], add: Vec<Arc<Table>>) -> Result<Tree> {
        let mut levels = self.levels.clone();
        let need = from.max(to) + 1;
        if levels.len() < need {
            levels.resize_with(need, Vec::new);
        }
        for l in [from, to] {
            levels[l].retain(|t| !remove.contains(&t.id()));
        }
        levels[to].extend(add);
        Tree::new(levels)
    }

    /// A new tree with `table` added as the newest L0 table.
    pub fn with_l0_table(&self, table: Arc<Table>) -> Tree {
        let mut levels = self.levels.clone();
        if levels.is_empty() {
            levels.push(Vec::new());
        }
        levels[0].insert(0, table);
        sort_l0(&mut levels[0]);
        Tree { levels }
    }

    /// The newest entry of the user key in `key` with version ≤ the version
    /// in `key`, across every table that may hold it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Found>> {
        self.get_newer_than(key, None)
    }

    /// As [`Tree::get`], but only a version above `floor` counts (the best
    /// a newer source already found); tables whose highest version is not
    /// above it are skipped without reading.
    pub fn get_newer_than(&self, key: &[u8], floor: Option<u64>) -> Result<Option<Found>> {
        let uk = user_key(key);
        // One filter hash for every table (Badger's filters all use it).
        let hash = crate::format::bloom::hash(uk);
        let mut best: Option<Found> = None;
        // A table can only improve on `best` with a newer version, or with
        // a newer copy of the same version (a value-log GC rewrite: see
        // `copy_rank`), so only tables whose newest version is older are
        // skipped, and a hit at exactly the probe's version does not end the
        // search.
        let rank = |f: &Found| copy_rank(f.meta, &f.value);
        let consider = |t: &Arc<Table>, best: &mut Option<Found>| -> Result<()> {
            let max = t.index().max_version;
            match best.as_ref() {
                Some(b) if max < b.version => return Ok(()),
                None if floor.is_some_and(|f| max <= f) => return Ok(()),
                _ => {}
            }
            if let Some(hit) = t.get_hashed(key, hash)? {
                let better = match best.as_ref() {
                    Some(b) => hit.version > b.version || (hit.version == b.version && rank(&hit) > rank(b)),
                    None => floor.is_none_or(|f| hit.version > f),
                };
                if better {
                    *best = Some(hit);
                }
            }
            Ok(())
        };
        for (level, tables) in self.levels.iter().enumerate() {
            if level == 0 {
                // L0 tables overlap, and an L0→L0 compaction's output (a new,
                // higher id) can hold older versions than a table it left out.
                for t in tables {
                    consider(t, &mut best)?;
                }
                continue;
            }
            let i = tables.partition_point(|t| compare_keys(t.biggest(), key) == Ordering::Less);
            if let Some(t) = tables.get(i)
                && user_key(t.smallest()) <= uk
            {
                consider(t, &mut best)?;
            }
        }
        Ok(best)
    }

    /// One iterator per L0 table (newest first) and one per deeper level.
    pub fn iterators(&self) -> Vec<Box<dyn KvIterator + Send>> {
        let mut out: Vec<Box<dyn KvIterator + Send>> = Vec::new();
        for (level, tables) in self.levels.iter().enumerate() {
            if level == 0 {
                for t in tables {
                    out.push(Box::new(TableIterator::new(t.clone())));
                }
            } else if !tables.is_empty() {
                out.push(Box::new(ConcatIterator::new(tables.clone())));
            }
        }
        out
    }
}
