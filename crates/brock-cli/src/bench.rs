//! `brock bench`: Brock's write, random-read, scan, overwrite, value-log
//! GC and delete workloads.
//!
//! The keys, values and orders are `brock_bench::workload`'s, the ones the
//! `brock-bench` harness gives fjall and redb (and that the Go fixtures were
//! written with). One JSON line per workload goes to stdout; a progress bar
//! (when stderr is a terminal) and, without `--json`, a summary go to stderr.
//!
//! A directory given with `--dir` is assumed to hold the fill's values
//! (generation 0): reads after an earlier run's overwrite report the
//! values as wrong.

use brock_bench::stores::brock::{self as brock_store, BrockStore, describe_levels};
use brock_bench::workload::{self, Config, Op, Order, Report, Settle, Store, run_op, summary_table};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Which workloads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Fill: `n` entries, `batch` per transaction.
    Write,
    /// `n` random gets (after a fill, if the directory is empty).
    Read,
    /// Iterate everything (after a fill, if the directory is empty).
    Scan,
    /// Write every key again with new values (after a fill, if the
    /// directory is empty).
    Overwrite,
    /// Overwrite every key, then run value-log GC until it has nothing to
    /// rewrite and compare the directory before and after with the live
    /// data (after a fill, if the directory is empty).
    Gc,
    /// Delete 90% of the keys (after a fill, if the directory is empty),
    /// wait for compaction, compare the directory with the live data; then
    /// `Db::flatten` and compare again.
    Delete,
    /// Write, then read, then scan.
    All,
}

/// Arguments of `brock bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The workload.
    #[arg(value_enum, default_value_t = Workload::All)]
    workload: Workload,
    /// The database directory (default: a fresh temporary one, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Entries to write, and random gets to make.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Values of this many bytes or more go to the value log
    /// (`value_threshold`; default Badger's 1 MiB).
    #[arg(long)]
    value_threshold: Option<u64>,
    /// Entries per write transaction (and gets per read transaction);
    /// lowered to the most that fits in one transaction, counting each
    /// value whole.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Instead of the positional workload: these, comma-separated (write,
    /// read, scan, overwrite, gc, delete), in that order, after a fill if
    /// write is not among them and the directory is empty.
    #[arg(long, value_delimiter = ',')]
    ops: Option<Vec<Op>>,
    /// Write keys in ascending order instead of the random permutation.
    #[arg(long)]
    seq: bool,
    /// Sync the WAL on every commit (`sync_writes`).
    #[arg(long)]
    sync: bool,
    /// After a fill or delete, the store counts as settled once flushes
    /// and compactions have been quiet this long (milliseconds).
    #[arg(long, default_value_t = 3000)]
    settle_quiet_ms: u64,
    /// And waiting for that gives up after this long (seconds).
    #[arg(long, default_value_t = 180)]
    settle_cap_secs: u64,
    /// Print only the JSON lines (no summary on stderr).
    #[arg(long)]
    json: bool,
}

impl BenchArgs {
    /// The configuration, with `batch` lowered to what fits in one
    /// transaction.
    fn config(&self, dir: &std::path::Path) -> brock::Result<Config> {
        let mut cfg = Config {
            n: self.n,
            value_size: self.value_size,
            batch: self.batch,
            order: if self.seq {
                Order::Sequential
            } else {
                Order::Random
            },
            sync: self.sync,
            settle: Settle {
                quiet: Duration::from_millis(self.settle_quiet_ms),
                cap: Duration::from_secs(self.settle_cap_secs),
            },
            value_threshold: self.value_threshold,
            generation: 0,
        };
        let opts = brock_store::options(dir, &cfg);
        cfg.batch = cfg
            .batch
            .min(brock_store::fitting_batch(&opts, cfg.value_size).map_err(to_brock)?);
        Ok(cfg)
    }

    /// The workloads asked for, before any fill an empty directory needs.
    fn ops(&self) -> Vec<Op> {
        if let Some(ops) = &self.ops {
            return Op::ALL.into_iter().filter(|o| ops.contains(o)).collect();
        }
        match self.workload {
            Workload::Write => vec![Op::Write],
            Workload::Read => vec![Op::Read],
            Workload::Scan => vec![Op::Scan],
            Workload::Overwrite => vec![Op::Overwrite],
            Workload::Gc => vec![Op::Overwrite, Op::Gc],
            Workload::Delete => vec![Op::Delete],
            Workload::All => Op::DEFAULT.to_vec(),
        }
    }
}

/// Runs the command.
pub fn run(a: &BenchArgs) -> brock::Result<()> {
    run_to(a, &mut std::io::stdout().lock())
}

fn to_brock(e: workload::Error) -> brock::Error {
    match e.downcast::<brock::Error>() {
        Ok(b) => *b,
        Err(e) => match e.downcast::<std::io::Error>() {
            Ok(io) => brock::Error::io("<bench>", *io),
            Err(e) => brock::Error::io("<bench>", std::io::Error::other(e)),
        },
    }
}

/// Runs the workloads, writing the JSON lines to `out`.
fn run_to(a: &BenchArgs, out: &mut dyn Write) -> brock::Result<()> {
    let temp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| brock::Error::io(d, e))?;
            d.clone()
        }
        None => {
            temp = workload::temp_dir(None).map_err(to_brock)?;
            temp.path().to_path_buf()
        }
    };
    let mut cfg = a.config(&dir)?;
    cfg.validate().map_err(to_brock)?;
    if cfg.batch < a.batch && !a.json {
        eprintln!(
            "brock bench: batch {} lowered to {}, the most {}-byte values one transaction holds",
            a.batch, cfg.batch, cfg.value_size
        );
    }
    let mut store = BrockStore::open_with(brock_store::options(&dir, &cfg)).map_err(to_brock)?;
    let mut ops = a.ops();
    let fill_first = ops.first().is_some_and(|o| *o != Op::Write) && store.is_empty().map_err(to_brock)?;
    if fill_first {
        ops.insert(0, Op::Write);
    }
    if !a.json {
        eprintln!(
            "brock bench: {} in {}{}: n={} value_size={} value_threshold={} batch={} order={} sync={}",
            ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
            dir.display(),
            if a.dir.is_none() { " (temporary)" } else { "" },
            cfg.n,
            cfg.value_size,
            cfg.value_threshold
                .map_or_else(|| "default".to_string(), |t| t.to_string()),
            cfg.batch,
            if a.seq { "sequential" } else { "random" },
            cfg.sync,
        );
    }
    let mut reports: Vec<Report> = Vec::new();
    for op in ops {
        let bar = progress_bar(op, cfg.n);
        let r = run_op(&mut store, op, &cfg, &dir, &mut |done| bar.set_position(done)).map_err(to_brock)?;
        bar.finish_and_clear();
        cfg = cfg.after(op);
        writeln!(out, "{}", r.to_json())
            .and_then(|()| out.flush())
            .map_err(|e| brock::Error::io("<stdout>", e))?;
        if op == Op::Read && r.items < r.n && !a.json {
            eprintln!(
                "brock bench: {} of {} gets found nothing (was the directory filled with a smaller --n?)",
                r.n - r.items,
                r.n
            );
        }
        reports.push(r);
    }
    let stats = store.db().stats();
    let levels_now = describe_levels(store.db());
    Box::new(store).close().map_err(to_brock)?;
    if !a.json {
        eprintln!();
        eprint!("{}", summary_table(&reports));
        let levels: Vec<String> = stats
            .tables_per_level
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(l, n)| format!("L{l}: {n}"))
            .collect();
        eprintln!(
            "brock: {} commits, {} memtable flushes, {} compactions, tables {}, write stalls {:.2} s (longest {:.3} s), \
             written {:.1} MiB for {:.1} MiB of keys and values",
            stats.commits,
            stats.flushes,
            stats.compactions,
            if levels.is_empty() {
                "none".to_string()
            } else {
                levels.join(", ")
            },
            stats.stall_nanos as f64 / 1e9,
            stats.max_stall_nanos as f64 / 1e9,
            stats.bytes_written as f64 / (1024.0 * 1024.0),
            stats.user_bytes as f64 / (1024.0 * 1024.0),
        );
        eprintln!("brock: levels at close: {levels_now}");
    }
    Ok(())
}

fn progress_bar(op: Op, total: u64) -> ProgressBar {
    // GC reports no progress of its own.
    if op == Op::Gc || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix:>6} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::new(total).with_style(style).with_prefix(op.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(workload: Workload, dir: Option<PathBuf>) -> BenchArgs {
        BenchArgs {
            workload,
            dir,
            n: 2000,
            value_size: 64,
            value_threshold: None,
            batch: 250,
            ops: None,
            seq: false,
            sync: false,
            settle_quiet_ms: 100,
            settle_cap_secs: 30,
            json: true,
        }
    }

    fn lines(a: &BenchArgs) -> Vec<Report> {
        let mut out = Vec::new();
        run_to(a, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| Report::from_json(l).unwrap())
            .collect()
    }

    #[test]
    fn all_on_a_temporary_directory() {
        let rs = lines(&args(Workload::All, None));
        let ops: Vec<Op> = rs.iter().map(|r| r.op).collect();
        assert_eq!(ops, Op::DEFAULT);
        for r in &rs {
            assert_eq!(
                (r.store.as_str(), r.n, r.items, r.value_size, r.batch),
                ("brock", 2000, 2000, 64, 250),
                "{r:?}"
            );
            assert!(r.dir_bytes > 0 && r.ops_per_sec > 0.0);
        }
    }

    #[test]
    fn read_fills_an_empty_directory_first_and_only_then() {
        let dir = tempfile::tempdir().unwrap();
        let a = args(Workload::Read, Some(dir.path().join("db")));
        let first: Vec<Op> = lines(&a).iter().map(|r| r.op).collect();
        assert_eq!(first, [Op::Write, Op::Read]);
        let again = lines(&a);
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].op, again[0].items), (Op::Read, 2000));
        let scan = lines(&args(Workload::Scan, Some(dir.path().join("db"))));
        assert_eq!(scan.len(), 1);
        assert_eq!((scan[0].op, scan[0].items), (Op::Scan, 2000));
    }

    #[test]
    fn gc_fills_overwrites_and_collects_the_old_values() {
        let a = BenchArgs {
            n: 300,
            value_size: 4096,
            value_threshold: Some(1024),
            batch: 100,
            ..args(Workload::Gc, None)
        };
        let rs = lines(&a);
        let ops: Vec<Op> = rs.iter().map(|r| r.op).collect();
        assert_eq!(ops, [Op::Write, Op::Overwrite, Op::Gc]);
        let g = &rs[2];
        assert_eq!((g.remaining, g.value_threshold), (Some(300), Some(1024)), "{g:?}");
        assert!(g.gc_files.is_some_and(|f| f >= 1), "{g:?}");
        let before = g.gc_before_dir_alloc_bytes.unwrap();
        assert!(
            g.dir_alloc_bytes < before,
            "GC reclaimed nothing: {before} -> {}",
            g.dir_alloc_bytes
        );
        // The same through --ops, which overrides the positional workload.
        let b = BenchArgs {
            ops: Some(vec![Op::Gc, Op::Write, Op::Overwrite]),
            ..a
        };
        let ops: Vec<Op> = lines(&b).iter().map(|r| r.op).collect();
        assert_eq!(ops, [Op::Write, Op::Overwrite, Op::Gc]);
    }

    #[test]
    fn delete_fills_first_then_deletes_nine_tenths_and_flattens() {
        let rs = lines(&args(Workload::Delete, None));
        let ops: Vec<Op> = rs.iter().map(|r| r.op).collect();
        assert_eq!(ops, [Op::Write, Op::Delete]);
        let d = &rs[1];
        assert_eq!((d.items, d.remaining), (1800, Some(200)));
        assert_eq!(d.live_bytes, Some(200 * (16 + 64)));
        assert!(d.space_amp.is_some_and(|a| a > 0.0), "{d:?}");
        assert_eq!(d.compact_call.as_deref(), Some("brock Db::flatten(2)"));
        assert!(d.compacted_space_amp.is_some() && d.levels.is_some() && d.max_batch_secs.is_some());
    }
}
