//! `brock bench`: Brock's write, random-read, scan and delete workloads.
//!
//! The keys, values and orders are `brock_bench::workload`'s, the ones the
//! `brock-bench` harness gives fjall and redb (and that the Go fixtures were
//! written with). One JSON line per workload goes to stdout; a progress bar
//! (when stderr is a terminal) and, without `--json`, a summary go to stderr.

use brock_bench::stores::brock::BrockStore;
use brock_bench::stores::brock::describe_levels;
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
    /// Bytes per value (below the value threshold, 1 MiB).
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Entries per write transaction (and gets per read transaction).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
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
    fn config(&self) -> Config {
        Config {
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
    let cfg = a.config();
    cfg.validate().map_err(to_brock)?;
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
    let mut store = BrockStore::open(&dir, a.sync).map_err(to_brock)?;
    let mut ops: Vec<Op> = match a.workload {
        Workload::Write => vec![Op::Write],
        Workload::Read => vec![Op::Read],
        Workload::Scan => vec![Op::Scan],
        Workload::Delete => vec![Op::Delete],
        Workload::All => Op::DEFAULT.to_vec(),
    };
    let fill_first = matches!(a.workload, Workload::Read | Workload::Scan | Workload::Delete)
        && store.is_empty().map_err(to_brock)?;
    if fill_first {
        ops.insert(0, Op::Write);
    }
    if !a.json {
        eprintln!(
            "brock bench: {} in {}{}: n={} value_size={} batch={} order={} sync={}",
            ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(", "),
            dir.display(),
            if a.dir.is_none() { " (temporary)" } else { "" },
            cfg.n,
            cfg.value_size,
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
    if !std::io::stderr().is_terminal() {
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
            batch: 250,
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
