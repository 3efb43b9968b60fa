//! A data-free simulator of the compaction policy: write amplification and
//! files per level for a synthetic workload.
//!
//! Tables are sizes only. Each flush adds an L0 table of `mem_table_size`.
//! The policy (`levels::policy`) picks as the compactors would; a compaction
//! from L0 takes every L0 table and the whole base level (random keys make
//! every L0 table span the key space); from Li it takes one target-size
//! table and the share of Li+1 its key range covers (Li+1's size × the
//! table's share of Li). Output size equals input size (no garbage), written
//! as tables of the level's target file size. It answers "how does the
//! policy shape the tree and what does it cost", not "how long".

use super::policy::{LevelState, PolicyOptions, level_targets, pick_compact_levels};

/// What a simulation ends with.
#[derive(Debug, Clone, PartialEq)]
pub struct SimReport {
    /// Bytes written by users.
    pub user_bytes: u64,
    /// Bytes written to tables (flushes and compactions).
    pub table_bytes: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Bytes per level at the end.
    pub level_bytes: Vec<u64>,
    /// Tables per level at the end.
    pub level_tables: Vec<usize>,
}

impl SimReport {
    /// Table bytes written per user byte (the WAL adds one more).
    pub fn write_amplification(&self) -> f64 {
        self.table_bytes as f64 / self.user_bytes.max(1) as f64
    }
}

/// Simulates writing `total_bytes` with `levels` levels.
pub fn simulate(o: &PolicyOptions, levels: usize, total_bytes: u64) -> SimReport {
    let mut sizes: Vec<Vec<u64>> = vec![Vec::new(); levels];
    let (mut written, mut table_bytes, mut compactions) = (0u64, 0u64, 0u64);
    let state = |sizes: &Vec<Vec<u64>>| -> Vec<LevelState> {
        sizes
            .iter()
            .map(|l| LevelState {
                tables: l.len(),
                size: l.iter().sum(),
                compacting_size: 0,
            })
            .collect()
    };
    while written < total_bytes {
        let flush = o.mem_table_size.min(total_bytes - written);
        sizes[0].push(flush);
        written += flush;
        table_bytes += flush;
        // Compact until nothing is over target (bounded, as real workers are).
        for _ in 0..64 {
            let st = state(&sizes);
            let t = level_targets(&st, o);
            let prios = pick_compact_levels(&st, &t, o);
            let Some(p) = prios.first() else { break };
            if p.adjusted < 1.0 && p.level != 0 {
                break;
            }
            let (from, to) = if p.level == 0 {
                (0, t.base_level)
            } else {
                (p.level, p.level + 1)
            };
            let (top, bot) = if from == 0 {
                let top: u64 = sizes[0].drain(..).sum();
                let bot: u64 = sizes[to].drain(..).sum();
                (top, bot)
            } else {
                let this_total: u64 = sizes[from].iter().sum();
                let top = sizes[from].pop().unwrap_or(0);
                let next_total: u64 = sizes[to].iter().sum();
                let share = if this_total == 0 {
                    0.0
                } else {
                    top as f64 / this_total as f64
                };
                let mut bot = (next_total as f64 * share) as u64;
                // Take the bottom bytes out of the next level's tables.
                let mut left = bot;
                while left > 0 {
                    match sizes[to].pop() {
                        Some(s) if s <= left => left -= s,
                        Some(s) => {
                            sizes[to].push(s - left);
                            left = 0;
                        }
                        None => {
                            bot -= left;
                            left = 0;
                        }
                    }
                }
                (top, bot)
            };
            let out = top + bot;
            let fs = t.file_size[to].max(1);
            let mut rest = out;
            while rest > 0 {
                let s = rest.min(fs);
                sizes[to].push(s);
                rest -= s;
            }
            table_bytes += out;
            compactions += 1;
        }
    }
    SimReport {
        user_bytes: written,
        table_bytes,
        compactions,
        level_bytes: sizes.iter().map(|l| l.iter().sum()).collect(),
        level_tables: sizes.iter().map(Vec::len).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badger_defaults_give_a_shallow_tree_and_bounded_write_amplification() {
        let o = PolicyOptions {
            base_level_size: 10 << 20,
            level_size_multiplier: 10,
            base_table_size: 2 << 20,
            table_size_multiplier: 2,
            mem_table_size: 64 << 20,
            num_level_zero_tables: 5,
        };
        let r = simulate(&o, 7, 20 << 30);
        let wa = r.write_amplification();
        assert!((2.0..30.0).contains(&wa), "write amplification {wa}");
        // Most data ends at the last level; L0 stays under its compaction trigger.
        assert!(
            r.level_bytes[6] as f64 > 0.8 * r.user_bytes as f64,
            "{:?}",
            r.level_bytes
        );
        assert!(r.level_tables[0] < 5, "{:?}", r.level_tables);
        assert_eq!(r.level_bytes.iter().sum::<u64>(), r.user_bytes, "no bytes lost");
    }
}
