//! Compaction policy: level targets, scores and priorities. Pure functions.
//!
//! Badger's `levels.go` `levelTargets` and `pickCompactLevels` (the v4.9.2
//! routing; see `docs/decisions/` for where Brock departs). Inputs are plain
//! numbers per level, outputs plain decisions, so table-driven tests pin them
//! and the simulator (`levels::sim`) can drive them without data.
//!
//! - Targets: the last level's size, divided by `level_size_multiplier` per
//!   level going up, floored at `base_level_size`. The base level is the
//!   first level (from the top) whose target is at most `base_level_size`,
//!   pushed down through empty levels, and one further if it is empty and
//!   the next level is under its target; never 0.
//! - File sizes: L0 = `mem_table_size`; levels up to the base level use
//!   `base_table_size`; each level below multiplies by
//!   `table_size_multiplier`.
//! - Scores: L0 = tables / `num_level_zero_tables`; Li = (size − bytes being
//!   compacted) / target. From the base level down, a level whose adjusted
//!   score is ≥ 1 is divided by the next level's score (floor 0.01), so a
//!   level whose children are already over target waits for them.
//!   Candidates are the levels except the last with score ≥ 1, by adjusted
//!   score, highest first.

/// Tuning knobs the policy reads from the options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyOptions {
    /// Badger `BaseLevelSize`.
    pub base_level_size: u64,
    /// Badger `LevelSizeMultiplier`.
    pub level_size_multiplier: u64,
    /// Badger `BaseTableSize`.
    pub base_table_size: u64,
    /// Badger `TableSizeMultiplier`.
    pub table_size_multiplier: u64,
    /// Badger `MemTableSize` (L0 file size).
    pub mem_table_size: u64,
    /// Badger `NumLevelZeroTables`.
    pub num_level_zero_tables: u64,
}

impl PolicyOptions {
    /// From the database options.
    pub fn from_options(o: &crate::options::Options) -> Self {
        PolicyOptions {
            base_level_size: o.base_level_size,
            level_size_multiplier: u64::from(o.level_size_multiplier),
            base_table_size: o.base_table_size,
            table_size_multiplier: u64::from(o.table_size_multiplier),
            mem_table_size: o.mem_table_size,
            num_level_zero_tables: u64::from(o.num_level_zero_tables),
        }
    }
}

/// One level as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelState {
    /// Tables in the level.
    pub tables: usize,
    /// Their total size in bytes.
    pub size: u64,
    /// Bytes of this level's tables taking part in running compactions.
    pub compacting_size: u64,
}

/// Where data should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The level L0 compacts into.
    pub base_level: usize,
    /// Target size per level.
    pub target_size: Vec<u64>,
    /// Target table size per level.
    pub file_size: Vec<u64>,
}

/// Badger's `levelTargets`.
pub fn level_targets(levels: &[LevelState], o: &PolicyOptions) -> Targets {
    let n = levels.len();
    let mut t = Targets {
        base_level: 0,
        target_size: vec![0; n],
        file_size: vec![0; n],
    };
    if n == 0 {
        return t;
    }
    let mut db_size = levels[n - 1].size;
    for i in (1..n).rev() {
        let target = db_size.max(o.base_level_size);
        t.target_size[i] = target;
        if t.base_level == 0 && target <= o.base_level_size {
            t.base_level = i;
        }
        db_size /= o.level_size_multiplier.max(1);
    }
    let mut table_size = o.base_table_size;
    for i in 0..n {
        t.file_size[i] = if i == 0 {
            o.mem_table_size
        } else if i <= t.base_level {
            table_size
        } else {
            table_size = table_size.saturating_mul(o.table_size_multiplier);
            table_size
        };
    }
    // Push the base level down through empty levels.
    for (i, l) in levels
        .iter()
        .enumerate()
        .take(n.saturating_sub(1))
        .skip(t.base_level + 1)
    {
        if l.size > 0 {
            break;
        }
        t.base_level = i;
    }
    let b = t.base_level;
    if b + 1 < n && levels[b].size == 0 && levels[b + 1].size < t.target_size[b + 1] {
        t.base_level += 1;
    }
    if t.base_level == 0 {
        t.base_level = 1;
    }
    // Better than Badger (its #2143): L0 must never compact into a level
    // below one that holds data, or a tombstone could land under an older
    // live version it has to hide, and the key would come back.
    if let Some(first) = (1..n).find(|&i| levels[i].size > 0)
        && first < t.base_level
    {
        t.base_level = first;
    }
    t
}

/// A level that needs compacting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Priority {
    /// The level to compact from.
    pub level: usize,
    /// Its raw score.
    pub score: f64,
    /// Its score adjusted for the level below.
    pub adjusted: f64,
}

/// Badger's `pickCompactLevels`: candidates, most urgent first.
pub fn pick_compact_levels(levels: &[LevelState], t: &Targets, o: &PolicyOptions) -> Vec<Priority> {
    let n = levels.len();
    if n == 0 {
        return Vec::new();
    }
    let mut prios: Vec<Priority> = Vec::with_capacity(n);
    let l0 = levels[0].tables as f64 / o.num_level_zero_tables.max(1) as f64;
    prios.push(Priority {
        level: 0,
        score: l0,
        adjusted: l0,
    });
    for (i, l) in levels.iter().enumerate().skip(1) {
        let size = l.size.saturating_sub(l.compacting_size);
        let score = size as f64 / t.target_size[i].max(1) as f64;
        prios.push(Priority {
            level: i,
            score,
            adjusted: score,
        });
    }
    let mut prev = 0;
    for level in t.base_level..n {
        if prios[prev].adjusted >= 1.0 {
            const MIN_SCORE: f64 = 0.01;
            let divisor = if prios[level].score >= MIN_SCORE {
                prios[level].adjusted
            } else {
                MIN_SCORE
            };
            prios[prev].adjusted /= divisor;
        }
        prev = level;
    }
    let mut out: Vec<Priority> = prios[..n - 1]
        .iter()
        .copied()
        .filter(|p| p.score >= 1.0)
        .collect();
    out.sort_by(|a, b| b.adjusted.total_cmp(&a.adjusted));
    out
}

/// A table of Li that an Li → Li+1 compaction could take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopCandidate {
    /// Its size.
    pub size: u64,
    /// Bytes of the Li+1 tables its key range overlaps (rewritten with it).
    pub under: u64,
    /// Its newest version (Badger's order: oldest data first).
    pub max_version: u64,
}

/// The order in which an Li → Li+1 compaction tries its candidates (the
/// first one whose tables can be claimed wins): smallest overlap in Li+1
/// relative to the table's own size first (RocksDB's "min overlapping
/// ratio": bytes rewritten per byte moved down), oldest data first among
/// equal ratios. Badger orders by age alone.
pub fn top_table_order(cands: &[TopCandidate]) -> Vec<usize> {
    let ratio = |c: &TopCandidate| c.under.saturating_mul(1024) / c.size.max(1);
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by_key(|&i| (ratio(&cands[i]), cands[i].max_version, i));
    order
}

/// The level an L0 compaction of `l0_bytes` goes to: Badger's base level,
/// except when that level is empty, the L0 data is more than four times its
/// target (most of it would overflow and move on down at once), and the
/// first level below with data holds at most twice the L0 data: then
/// straight there.
/// Going through the base level writes the L0 data twice (into the base
/// level, then down) plus the level below; going straight writes it once
/// plus the level below, and the "at most twice" bound keeps one such
/// compaction to three times the L0 data. No level with data is skipped.
pub fn l0_target(levels: &[LevelState], t: &Targets, l0_bytes: u64) -> usize {
    let base = t.base_level;
    let empty = |l: usize| levels.get(l).is_none_or(|s| s.size == 0);
    let target = t.target_size.get(base).copied().unwrap_or(0);
    if base == 0 || !empty(base) || l0_bytes <= target.saturating_mul(4) {
        return base;
    }
    match (base + 1..levels.len()).find(|&l| !empty(l)) {
        Some(below) if levels[below].size <= l0_bytes.saturating_mul(2) => below,
        _ => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn opts() -> PolicyOptions {
        PolicyOptions {
            base_level_size: 10 * MB,
            level_size_multiplier: 10,
            base_table_size: 2 * MB,
            table_size_multiplier: 2,
            mem_table_size: 64 * MB,
            num_level_zero_tables: 5,
        }
    }

    fn levels(sizes: &[u64]) -> Vec<LevelState> {
        sizes
            .iter()
            .map(|&s| LevelState {
                tables: (s / (2 * MB)) as usize,
                size: s,
                compacting_size: 0,
            })
            .collect()
    }

    #[test]
    fn empty_tree_targets_the_last_level() {
        let t = level_targets(&levels(&[0; 7]), &opts());
        assert_eq!(t.base_level, 6);
        assert_eq!(
            t.target_size,
            vec![0, 10 * MB, 10 * MB, 10 * MB, 10 * MB, 10 * MB, 10 * MB]
        );
        assert_eq!(
            t.file_size,
            vec![64 * MB, 2 * MB, 2 * MB, 2 * MB, 2 * MB, 2 * MB, 2 * MB]
        );
    }

    /// Table-driven: (sizes of L0..L6 in MiB) → (base level, targets in MiB, file sizes in MiB).
    #[test]
    fn targets_table() {
        type Case = (&'static [u64], usize, &'static [u64], &'static [u64]);
        let cases: [Case; 4] = [
            // 1 GiB in L6: targets L6 1000, L5 100, L4 10 (the first at the
            // floor, so base 4 for file sizes), then the base is pushed down
            // through the empty L5.
            (
                &[0, 0, 0, 0, 0, 0, 1000],
                5,
                &[0, 10, 10, 10, 10, 100, 1000],
                &[64, 2, 2, 2, 2, 4, 8],
            ),
            // 100 GiB in L6: the first floored target is L1, so table sizes
            // double from L2 on; empty L2..L5 push the base down to L5.
            (
                &[0, 0, 0, 0, 0, 0, 102_400],
                5,
                &[0, 10, 10, 102, 1024, 10240, 102_400],
                &[64, 2, 4, 8, 16, 32, 64],
            ),
            // 50 MiB in L6: base L5; L6 is not under its own target, so it stays.
            (
                &[0, 0, 0, 0, 0, 0, 50],
                5,
                &[0, 10, 10, 10, 10, 10, 50],
                &[64, 2, 2, 2, 2, 2, 4],
            ),
            // Data in L5 and L6 keeps the base at L5.
            (
                &[0, 0, 0, 0, 0, 5, 50],
                5,
                &[0, 10, 10, 10, 10, 10, 50],
                &[64, 2, 2, 2, 2, 2, 4],
            ),
        ];
        for (sizes, base, targets, files) in cases {
            let ls: Vec<u64> = sizes.iter().map(|s| s * MB).collect();
            let t = level_targets(&levels(&ls), &opts());
            assert_eq!(t.base_level, base, "{sizes:?}");
            assert_eq!(
                t.target_size.iter().map(|x| x / MB).collect::<Vec<_>>(),
                targets,
                "{sizes:?}"
            );
            assert_eq!(
                t.file_size.iter().map(|x| x / MB).collect::<Vec<_>>(),
                files,
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn priorities_prefer_l0_when_full_and_wait_for_overfull_children() {
        let mut ls = levels(&[0, 0, 0, 0, 30 * MB, 100 * MB, 1000 * MB]);
        ls[0].tables = 10;
        let t = level_targets(&ls, &opts());
        assert_eq!(t.base_level, 4);
        let p = pick_compact_levels(&ls, &t, &opts());
        // Scores: L0 10/5 = 2, L4 30/10 = 3, L5 100/100 = 1, L6 1. Adjusted:
        // L0 2/3 (L4 is over target), L4 3/1, L5 1/1. L6 is never a candidate.
        assert_eq!(p.iter().map(|x| x.level).collect::<Vec<_>>(), vec![4, 5, 0]);
        assert!((p[0].adjusted - 3.0).abs() < 1e-9);
        assert!((p[2].adjusted - 2.0 / 3.0).abs() < 1e-9);
        // Bytes being compacted do not count.
        ls[4].compacting_size = 25 * MB;
        let p = pick_compact_levels(&ls, &targets_of(&ls), &opts());
        assert!(p.iter().all(|x| x.level != 4));
    }

    fn targets_of(ls: &[LevelState]) -> Targets {
        level_targets(ls, &opts())
    }

    /// Regression for Badger #2143: with data left in L2 and the computed
    /// base level at L5, L0 went to L5, below L2's older versions.
    #[test]
    fn regression_base_level_never_skips_a_level_with_data() {
        let ls = levels(&[0, 0, MB, 0, 0, 0, 50 * MB]);
        assert_eq!(level_targets(&ls, &opts()).base_level, 2);
    }

    #[test]
    fn top_tables_go_by_overlap_ratio_then_age() {
        let c = |size: u64, under: u64, max_version: u64| TopCandidate {
            size,
            under,
            max_version,
        };
        let table: &[(&[TopCandidate], &[usize])] = &[
            (&[], &[]),
            // Badger's order when overlaps are equal: oldest first.
            (&[c(4, 8, 30), c(4, 8, 10), c(4, 8, 20)], &[1, 2, 0]),
            // A smaller overlap wins over age.
            (&[c(4, 16, 1), c(4, 8, 9)], &[1, 0]),
            // The ratio, not the overlap in bytes: 8 over 8 beats 6 over 4.
            (&[c(4, 6, 1), c(8, 8, 2)], &[1, 0]),
            // No overlap at all first; a zero-size table does not divide by zero.
            (&[c(4, 8, 1), c(0, 0, 5), c(4, 0, 3)], &[2, 1, 0]),
        ];
        for (cands, want) in table {
            assert_eq!(top_table_order(cands), *want, "{cands:?}");
        }
    }

    #[test]
    fn l0_goes_past_an_empty_base_level_only_when_that_saves_writes() {
        let t = |base_level: usize| Targets {
            base_level,
            target_size: vec![0, 0, 0, 0, 0, 27 * MB, 274 * MB],
            file_size: vec![2 * MB; 7],
        };
        let table: &[(&[u64], usize, u64, usize)] = &[
            // (level sizes, base level, L0 bytes, target)
            // An empty base level, L0 over 4x its target, L6 small: straight down.
            (&[274 * MB, 0, 0, 0, 0, 0, 274 * MB], 5, 274 * MB, 6),
            (&[274 * MB, 0, 0, 0, 0, 0, 548 * MB], 5, 274 * MB, 6),
            // L6 more than twice L0: through the base level, as Badger.
            (&[274 * MB, 0, 0, 0, 0, 0, 549 * MB], 5, 274 * MB, 5),
            // The base level has data: as Badger.
            (&[274 * MB, 0, 0, 0, 0, MB, 274 * MB], 5, 274 * MB, 5),
            // L0 within four times the base level's target: as Badger.
            (&[20 * MB, 0, 0, 0, 0, 0, 274 * MB], 5, 20 * MB, 5),
            (&[108 * MB, 0, 0, 0, 0, 0, 200 * MB], 5, 108 * MB, 5),
            (&[109 * MB, 0, 0, 0, 0, 0, 200 * MB], 5, 109 * MB, 6),
            // Nothing below: the base level.
            (&[274 * MB, 0, 0, 0, 0, 0, 0], 5, 274 * MB, 5),
        ];
        for &(sizes, base, l0, want) in table {
            assert_eq!(
                l0_target(&levels(sizes), &t(base), l0),
                want,
                "{sizes:?} base {base}"
            );
        }
    }

    #[test]
    fn the_last_level_is_never_a_candidate() {
        let ls = levels(&[0, 0, 0, 0, 0, 0, 5000 * MB]);
        assert!(pick_compact_levels(&ls, &targets_of(&ls), &opts()).is_empty());
    }
}
