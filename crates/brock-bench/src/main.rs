//! `brock-bench`: the same workloads on Brock, fjall and redb.
//!
//! Each store runs in a child process of this binary (re-executed with
//! `--only STORE`), one after the other, each on its own fresh temporary
//! directory, so that each gets its own peak RSS and none inherits another's
//! page cache pressure or allocator state. The children print one JSON line
//! per workload; the parent prints them on stdout and, unless `--json`, a
//! summary, a brock/peer ratio table and the project's goals on stderr.
//!
//! `--rounds R` repeats the whole set R times, in reverse order every other
//! round, prints brock's per-round ratios with their medians, and shows each
//! store's median round in the tables: the stores run one after another, so
//! on a noisy machine a single round's ratio is weak evidence.
//!
//! `--batch` is lowered to what fits in one Brock transaction with the
//! default options ([`stores::brock::fitting_batch`]), for every store, so
//! that all run the same batches.

use brock_bench::stores;
use brock_bench::workload::{Config, Op, Order, Report, Result, Settle, run_op, summary_table, temp_dir};
use clap::Parser;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

/// mimalloc, as RocksDB ships with jemalloc: the engine allocates a node per
/// memtable entry and frees a memtable's worth at each flush, where glibc's
/// allocator showed up in profiles. Every store in a benchmark run uses it.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs write, read, scan (and overwrite, gc, delete) on each store with the same keys and values.
#[derive(Debug, Parser)]
#[command(name = "brock-bench", version, about)]
struct Args {
    /// Entries to write, and random lookups to make.
    #[arg(long, default_value_t = 1_000_000)]
    n: u64,
    /// Bytes per value.
    #[arg(long, default_value_t = 128)]
    value_size: usize,
    /// Entries per write transaction (and lookups per read transaction);
    /// lowered to the most that fits in one Brock transaction (Badger's
    /// limit, 15% of the 64 MiB memtable, counting each value whole).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Key-value separation: values of this many bytes or more go to
    /// Brock's value log (its `value_threshold`; default Badger's 1 MiB)
    /// and to fjall's blob files (key-value separation at this threshold;
    /// default none). redb has no separation and ignores it.
    #[arg(long)]
    value_threshold: Option<u64>,
    /// Workloads, comma-separated: write, read, scan, overwrite, gc, delete.
    /// They run in that order, after a fill if write is not among them.
    #[arg(long, value_delimiter = ',', default_value = "write,read,scan")]
    ops: Vec<Op>,
    /// After a fill or delete, a store counts as settled once its background
    /// work has been quiet this long (milliseconds).
    #[arg(long, default_value_t = 3000)]
    settle_quiet_ms: u64,
    /// And waiting for that gives up after this long (seconds).
    #[arg(long, default_value_t = 180)]
    settle_cap_secs: u64,
    /// Stores to run, comma-separated (default: every store this build has).
    #[arg(long, value_delimiter = ',')]
    stores: Option<Vec<String>>,
    /// Write keys in ascending order instead of the random permutation.
    #[arg(long)]
    seq: bool,
    /// Sync every commit (brock: sync_writes; fjall: PersistMode::SyncData;
    /// redb syncs every commit regardless).
    #[arg(long)]
    sync: bool,
    /// Print only the JSON lines.
    #[arg(long)]
    json: bool,
    /// Where to create the temporary directories (default: the system's).
    #[arg(long)]
    tmp: Option<PathBuf>,
    /// Run every store in this process (peak RSS is then the process's).
    #[arg(long)]
    in_process: bool,
    /// Run the whole set of stores this many times, in reverse order every
    /// other round, and judge on medians: each store runs after the others,
    /// so on a noisy machine one round's ratio is weak evidence.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Run one store in this process (what the parent asks its children).
    #[arg(long, hide = true)]
    only: Option<String>,
}

impl Args {
    /// The run's configuration, with `batch` lowered to what fits in one
    /// Brock transaction.
    fn config(&self) -> Result<Config> {
        let mut cfg = self.config_as_asked();
        let opts = stores::brock::options(Path::new("brock-bench"), &cfg);
        cfg.batch = cfg
            .batch
            .min(stores::brock::fitting_batch(&opts, cfg.value_size)?);
        Ok(cfg)
    }

    fn config_as_asked(&self) -> Config {
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
            value_threshold: self.value_threshold,
            generation: 0,
        }
    }

    fn ops(&self) -> Vec<Op> {
        Op::plan(&self.ops)
    }

    fn stores(&self) -> Vec<String> {
        self.stores
            .clone()
            .unwrap_or_else(|| stores::AVAILABLE.iter().map(|s| (*s).to_string()).collect())
    }

    /// The arguments a child gets to run `store`.
    fn child_args(&self, store: &str, cfg: &Config) -> Vec<String> {
        let mut a = vec![
            "--only".to_string(),
            store.to_string(),
            "--n".to_string(),
            self.n.to_string(),
            "--value-size".to_string(),
            self.value_size.to_string(),
            "--batch".to_string(),
            cfg.batch.to_string(),
            "--ops".to_string(),
            self.ops().iter().map(|o| o.name()).collect::<Vec<_>>().join(","),
            "--settle-quiet-ms".to_string(),
            self.settle_quiet_ms.to_string(),
            "--settle-cap-secs".to_string(),
            self.settle_cap_secs.to_string(),
        ];
        if let Some(t) = self.value_threshold {
            a.push("--value-threshold".into());
            a.push(t.to_string());
        }
        if self.seq {
            a.push("--seq".into());
        }
        if self.sync {
            a.push("--sync".into());
        }
        if let Some(t) = &self.tmp {
            a.push("--tmp".into());
            a.push(t.display().to_string());
        }
        a
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.only {
        Some(store) => run_store(&args, store, &mut |r| print_line(&r.to_json())).map(|_| true),
        None => run_all(&args),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("brock-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs the workloads on one store in this process.
fn run_store(args: &Args, store: &str, emit: &mut dyn FnMut(&Report)) -> Result<Vec<Report>> {
    let mut cfg = args.config()?;
    cfg.validate()?;
    let dir = temp_dir(args.tmp.as_deref())?;
    let mut s = stores::open(store, dir.path(), &cfg)?;
    let mut reports = Vec::new();
    for op in args.ops() {
        let r = run_op(s.as_mut(), op, &cfg, dir.path(), &mut |_| {})?;
        emit(&r);
        reports.push(r);
        cfg = cfg.after(op);
    }
    s.close()?;
    drop(dir);
    Ok(reports)
}

/// Runs every store, each in a child process (or in this one with
/// `--in-process`); returns whether all succeeded.
fn run_all(args: &Args) -> Result<bool> {
    let cfg = args.config()?;
    cfg.validate()?;
    if cfg.batch < args.batch {
        eprintln!(
            "brock-bench: batch {} lowered to {}, the most {}-byte values one Brock transaction holds",
            args.batch, cfg.batch, cfg.value_size
        );
    }
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    let mut rounds: Vec<Vec<Report>> = Vec::new();
    let mut failed = Vec::new();
    for round in 0..args.rounds {
        let mut stores = args.stores();
        if round % 2 == 1 {
            stores.reverse();
        }
        if args.rounds > 1 && !args.json {
            eprintln!(
                "brock-bench: round {} of {}: {}",
                round + 1,
                args.rounds,
                stores.join(", ")
            );
        }
        let mut reports = Vec::new();
        run_round(args, &cfg, &stores, &mut reports, &mut failed)?;
        rounds.push(reports);
    }
    if !args.json {
        let reports = if rounds.len() > 1 {
            eprintln!();
            eprint!("{}", rounds_table(&rounds));
            median_reports(&rounds)
        } else {
            rounds.concat()
        };
        eprintln!();
        eprint!("{}", summary_table(&reports));
        eprintln!();
        eprint!("{}", ratio_table(&reports));
    }
    if !failed.is_empty() {
        eprintln!("brock-bench: failed: {}", failed.join(", "));
    }
    Ok(failed.is_empty())
}

/// One round: each of `stores` in turn, its reports appended to `reports`
/// and its name to `failed` if it failed.
fn run_round(
    args: &Args,
    cfg: &Config,
    stores: &[String],
    reports: &mut Vec<Report>,
    failed: &mut Vec<String>,
) -> Result<()> {
    let exe = std::env::current_exe()?;
    for store in stores.iter().cloned() {
        if !args.json {
            eprintln!(
                "brock-bench: {store}: {} n={} value_size={} batch={} value_threshold={} order={} sync={}",
                args.ops().iter().map(|o| o.name()).collect::<Vec<_>>().join(","),
                args.n,
                args.value_size,
                cfg.batch,
                args.value_threshold
                    .map_or_else(|| "default".to_string(), |t| t.to_string()),
                if args.seq { "sequential" } else { "random" },
                args.sync
            );
        }
        if args.in_process {
            match run_store(args, &store, &mut |r| print_line(&r.to_json())) {
                Ok(rs) => reports.extend(rs),
                Err(e) => {
                    eprintln!("brock-bench: {store} failed: {e}");
                    failed.push(store);
                }
            }
            continue;
        }
        let mut child = Command::new(&exe)
            .args(args.child_args(&store, cfg))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout from the child")?;
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            match Report::from_json(&line) {
                Ok(r) => {
                    print_line(&line);
                    reports.push(r);
                }
                Err(_) => eprintln!("brock-bench: {store}: {line}"),
            }
        }
        let status = child.wait()?;
        if !status.success() {
            eprintln!("brock-bench: {store} failed ({status})");
            failed.push(store);
        }
    }
    Ok(())
}

/// The middle of `xs` (the mean of the two middles when even); `None` if empty.
fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// Brock's throughput ratio to each peer, per workload and round, with the
/// median over rounds (the ratio the goals should be read against).
fn rounds_table(rounds: &[Vec<Report>]) -> String {
    let all: Vec<&Report> = rounds.iter().flatten().collect();
    let mut s = String::new();
    let _ = writeln!(s, "brock's ratio per round (ops/s), and the median:");
    for op in Op::ALL.into_iter().filter(|o| *o != Op::Gc) {
        let mut peers: Vec<&str> = Vec::new();
        for r in all.iter().filter(|r| r.op == op && r.store != "brock") {
            if !peers.contains(&r.store.as_str()) {
                peers.push(&r.store);
            }
        }
        for p in peers {
            let ratios: Vec<f64> = rounds
                .iter()
                .filter_map(
                    |rs| match (ops_per_sec(rs, "brock", op), ops_per_sec(rs, p, op)) {
                        (Some(b), Some(v)) if v > 0.0 => Some(b / v),
                        _ => None,
                    },
                )
                .collect();
            let Some(m) = median(ratios.clone()) else {
                continue;
            };
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}x")).collect();
            let _ = writeln!(
                s,
                "{:<9} brock/{p:<6} {}  median {m:.2}x",
                op.name(),
                each.join(" ")
            );
        }
    }
    let _ = writeln!(
        s,
        "(the tables below show, per store and workload, the round with the median throughput)"
    );
    s
}

/// One report per store and workload: the round whose throughput is the
/// median (the lower middle when even), so the tables below show a run that
/// happened rather than a blend.
fn median_reports(rounds: &[Vec<Report>]) -> Vec<Report> {
    let mut out: Vec<Report> = Vec::new();
    for r in rounds.iter().flatten() {
        if out.iter().any(|o| o.store == r.store && o.op == r.op) {
            continue;
        }
        let mut same: Vec<&Report> = rounds
            .iter()
            .flatten()
            .filter(|x| x.store == r.store && x.op == r.op)
            .collect();
        same.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        out.push(same[(same.len() - 1) / 2].clone());
    }
    out
}

/// Operations per CPU second (every thread of the store's process).
fn ops_per_cpu_sec(reports: &[Report], store: &str, op: Op) -> Option<f64> {
    let r = reports.iter().find(|r| r.store == store && r.op == op)?;
    let cpu = r.cpu_secs.filter(|c| *c > 0.0)?;
    Some(r.ops_per_sec * r.secs / cpu)
}

fn ops_per_sec(reports: &[Report], store: &str, op: Op) -> Option<f64> {
    find(reports, store, op).map(|r| r.ops_per_sec)
}

fn find<'a>(reports: &'a [Report], store: &str, op: Op) -> Option<&'a Report> {
    reports.iter().find(|r| r.store == store && r.op == op)
}

/// A measure of one store's report for one workload, for the metric rows.
struct Metric {
    name: &'static str,
    op: Op,
    get: fn(&Report) -> Option<f64>,
    precision: usize,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Issue 5: random gets per second with values in the value log.
const GET_GOAL: f64 = 150_000.0;

/// Issue 5: the directory after value-log GC over the live data.
const GC_SPACE_AMP_GOAL: f64 = 1.3;

const METRICS: &[Metric] = &[
    Metric {
        name: "fill ops/s incl. settle",
        op: Op::Write,
        get: |r| Some(r.ops_per_sec_settled()),
        precision: 0,
    },
    Metric {
        name: "fill settle s",
        op: Op::Write,
        get: |r| Some(r.settle_secs),
        precision: 2,
    },
    Metric {
        name: "fill write amp (wchar)",
        op: Op::Write,
        get: |r| r.write_amp,
        precision: 2,
    },
    Metric {
        name: "fill write amp (write_bytes)",
        op: Op::Write,
        get: |r| Some(r.disk_write_bytes? as f64 / (r.mb_per_sec * r.secs * 1e6)),
        precision: 2,
    },
    // Bytes that reached (or will reach) the device: dirtied pages minus
    // those dropped before writeback (a WAL deleted after its flush). It
    // depends on writeback timing, so the goal stays on wchar; shown because
    // it is what wears an SSD.
    Metric {
        name: "fill write amp (to device)",
        op: Op::Write,
        get: |r| {
            let written = r.disk_write_bytes?.saturating_sub(r.cancelled_write_bytes?);
            Some(written as f64 / (r.mb_per_sec * r.secs * 1e6))
        },
        precision: 2,
    },
    Metric {
        name: "fill longest batch s",
        op: Op::Write,
        get: |r| r.max_batch_secs,
        precision: 3,
    },
    Metric {
        name: "fill du MiB",
        op: Op::Write,
        get: |r| Some(r.dir_alloc_bytes as f64 / MIB),
        precision: 1,
    },
    Metric {
        name: "fill peak RSS MiB",
        op: Op::Write,
        get: |r| Some(r.peak_rss_bytes? as f64 / MIB),
        precision: 0,
    },
    Metric {
        name: "fill MB/s",
        op: Op::Write,
        get: |r| Some(r.mb_per_sec),
        precision: 1,
    },
    Metric {
        name: "overwrite MB/s",
        op: Op::Overwrite,
        get: |r| Some(r.mb_per_sec),
        precision: 1,
    },
    Metric {
        name: "overwrite ops/s incl. settle",
        op: Op::Overwrite,
        get: |r| Some(r.ops_per_sec_settled()),
        precision: 0,
    },
    Metric {
        name: "overwrite write amp (wchar)",
        op: Op::Overwrite,
        get: |r| r.write_amp,
        precision: 2,
    },
    Metric {
        name: "overwrite longest batch s",
        op: Op::Overwrite,
        get: |r| r.max_batch_secs,
        precision: 3,
    },
    Metric {
        name: "live MiB",
        op: Op::Gc,
        get: |r| Some(r.live_bytes? as f64 / MIB),
        precision: 1,
    },
    Metric {
        name: "du MiB before gc",
        op: Op::Gc,
        get: |r| Some(r.gc_before_dir_alloc_bytes? as f64 / MIB),
        precision: 1,
    },
    Metric {
        name: "space amp before gc",
        op: Op::Gc,
        get: |r| r.gc_before_space_amp,
        precision: 2,
    },
    Metric {
        name: "gc s",
        op: Op::Gc,
        get: |r| Some(r.secs),
        precision: 2,
    },
    Metric {
        name: "gc files collected",
        op: Op::Gc,
        get: |r| Some(r.gc_files? as f64),
        precision: 0,
    },
    Metric {
        name: "gc MiB of files collected",
        op: Op::Gc,
        get: |r| Some(r.gc_file_bytes? as f64 / MIB),
        precision: 1,
    },
    Metric {
        name: "gc MB/s (files collected)",
        op: Op::Gc,
        get: |r| Some(r.mb_per_sec),
        precision: 1,
    },
    Metric {
        name: "gc settle s",
        op: Op::Gc,
        get: |r| Some(r.settle_secs),
        precision: 2,
    },
    Metric {
        name: "du MiB after gc",
        op: Op::Gc,
        get: |r| Some(r.dir_alloc_bytes as f64 / MIB),
        precision: 1,
    },
    Metric {
        name: "space amp after gc",
        op: Op::Gc,
        get: |r| r.space_amp,
        precision: 2,
    },
    Metric {
        name: "delete write amp (wchar)",
        op: Op::Delete,
        get: |r| r.write_amp,
        precision: 2,
    },
    Metric {
        name: "delete longest batch s",
        op: Op::Delete,
        get: |r| r.max_batch_secs,
        precision: 3,
    },
    Metric {
        name: "delete settle s",
        op: Op::Delete,
        get: |r| Some(r.settle_secs),
        precision: 2,
    },
    Metric {
        name: "space amp after delete",
        op: Op::Delete,
        get: |r| r.space_amp,
        precision: 2,
    },
    Metric {
        name: "space amp after full compact",
        op: Op::Delete,
        get: |r| r.compacted_space_amp,
        precision: 2,
    },
];

/// Operations per second per store and op, brock's ratio to each peer, the
/// other measures side by side, and the project's goals.
fn ratio_table(reports: &[Report]) -> String {
    let mut stores: Vec<&str> = Vec::new();
    for r in reports {
        if !stores.contains(&r.store.as_str()) {
            stores.push(&r.store);
        }
    }
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|o| reports.iter().any(|r| r.op == *o))
        .collect();
    // A GC's "operations" are files or compactions, not comparable between
    // stores: it appears in the measures below, not in the ops/s rows.
    let rate_ops: Vec<Op> = ops.iter().copied().filter(|o| *o != Op::Gc).collect();
    let peers: Vec<&str> = stores.iter().copied().filter(|s| *s != "brock").collect();
    let mut s = String::new();
    let _ = write!(s, "{:<9}", "op");
    for st in &stores {
        let _ = write!(s, " {:>13}", format!("{st} ops/s"));
    }
    for p in &peers {
        let _ = write!(s, " {:>12}", format!("brock/{p}"));
    }
    s.push('\n');
    for &op in &rate_ops {
        let _ = write!(s, "{:<9}", op.name());
        for st in &stores {
            match ops_per_sec(reports, st, op) {
                Some(v) => {
                    let _ = write!(s, " {v:>13.0}");
                }
                None => {
                    let _ = write!(s, " {:>13}", "-");
                }
            }
        }
        for p in &peers {
            match (ops_per_sec(reports, "brock", op), ops_per_sec(reports, p, op)) {
                (Some(b), Some(v)) if v > 0.0 => {
                    let _ = write!(s, " {:>11.2}x", b / v);
                }
                _ => {
                    let _ = write!(s, " {:>12}", "-");
                }
            }
        }
        s.push('\n');
    }
    // On a busy machine wall time swings with the neighbours; CPU time of
    // the store's process (background threads included) swings less.
    if !peers.is_empty() {
        let _ = write!(s, "{:<9}", "cpu");
        for p in &peers {
            let _ = write!(s, " {:>24}", format!("brock/{p} per cpu-second"));
        }
        s.push('\n');
        for &op in &rate_ops {
            let _ = write!(s, "{:<9}", op.name());
            for p in &peers {
                match (
                    ops_per_cpu_sec(reports, "brock", op),
                    ops_per_cpu_sec(reports, p, op),
                ) {
                    (Some(b), Some(v)) if v > 0.0 => {
                        let _ = write!(s, " {:>23.2}x", b / v);
                    }
                    _ => {
                        let _ = write!(s, " {:>24}", "-");
                    }
                }
            }
            s.push('\n');
        }
    }
    // Everything else, side by side.
    s.push('\n');
    let _ = write!(s, "{:<29}", "measure");
    for st in &stores {
        let _ = write!(s, " {st:>10}");
    }
    for p in &peers {
        let _ = write!(s, " {:>12}", format!("brock/{p}"));
    }
    s.push('\n');
    for m in METRICS.iter().filter(|m| ops.contains(&m.op)) {
        let value = |st: &str| find(reports, st, m.op).and_then(m.get);
        let _ = write!(s, "{:<29}", m.name);
        for st in &stores {
            match value(st) {
                Some(v) => {
                    let _ = write!(s, " {v:>10.prec$}", prec = m.precision);
                }
                None => {
                    let _ = write!(s, " {:>10}", "-");
                }
            }
        }
        for p in &peers {
            match (value("brock"), value(p)) {
                (Some(b), Some(v)) if v > 0.0 => {
                    let _ = write!(s, " {:>11.2}x", b / v);
                }
                _ => {
                    let _ = write!(s, " {:>12}", "-");
                }
            }
        }
        s.push('\n');
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    // A peer with key-value separation is named with its threshold.
    let label = |peer: &str, op: Op| match find(reports, peer, op).and_then(|r| r.value_threshold) {
        Some(t) if peer == "fjall" => format!("{peer} (kv-sep at {t} B)"),
        _ => peer.to_string(),
    };
    let goal = |s: &mut String, what: &str, op: Op, peer: &str, factor: f64| {
        if let (Some(b), Some(p)) = (ops_per_sec(reports, "brock", op), ops_per_sec(reports, peer, op)) {
            let ratio = b / p;
            let _ = writeln!(
                s,
                "goal: {what} >= {factor}x {}: {ratio:.2}x ({b:.0} vs {p:.0} ops/s): {}",
                label(peer, op),
                verdict(ratio >= factor)
            );
        }
    };
    s.push('\n');
    goal(&mut s, "fill", Op::Write, "fjall", 1.2);
    if let (Some(b), Some(p)) = (
        find(reports, "brock", Op::Write),
        find(reports, "fjall", Op::Write),
    ) {
        let (b, p) = (b.ops_per_sec_settled(), p.ops_per_sec_settled());
        let _ = writeln!(
            s,
            "      (counting the settle: {:.2}x, {b:.0} vs {p:.0} ops/s: {})",
            b / p,
            verdict(b / p >= 1.2)
        );
    }
    goal(&mut s, "random get", Op::Read, "redb", 1.0);
    // Issue 5's key-value-separation goals, when the run separated values.
    if let Some(r) = find(reports, "brock", Op::Read).filter(|r| r.value_threshold.is_some()) {
        let _ = writeln!(
            s,
            "goal: random get >= {GET_GOAL:.0}/s with values in the value log: {:.0}/s: {}",
            r.ops_per_sec,
            verdict(r.ops_per_sec >= GET_GOAL)
        );
    }
    if let Some(r) = find(reports, "brock", Op::Gc)
        && let Some(a) = r.space_amp
    {
        let _ = writeln!(
            s,
            "goal: space amp after gc <= {GC_SPACE_AMP_GOAL}: {a:.2} ({:.1} MiB for {:.1} MiB live; {:.1} MiB before gc){}: {}",
            r.dir_alloc_bytes as f64 / MIB,
            r.live_bytes.unwrap_or(0) as f64 / MIB,
            r.gc_before_dir_alloc_bytes.unwrap_or(0) as f64 / MIB,
            if r.settle_capped { ", settle capped" } else { "" },
            verdict(a <= GC_SPACE_AMP_GOAL)
        );
    }
    if let (Some(b), Some(p)) = (
        find(reports, "brock", Op::Write).and_then(|r| r.write_amp),
        find(reports, "fjall", Op::Write).and_then(|r| r.write_amp),
    ) {
        let _ = writeln!(
            s,
            "goal: fill write amp <= fjall's: {b:.2} vs {p:.2}: {}",
            verdict(b <= p)
        );
    }
    if let Some(r) = find(reports, "brock", Op::Delete) {
        if let Some(a) = r.space_amp {
            let _ = writeln!(
                s,
                "goal: space amp after deleting 90% <= 1.2: {a:.2} ({:.1} MiB for {:.1} MiB live){}: {}",
                r.dir_alloc_bytes as f64 / MIB,
                r.live_bytes.unwrap_or(0) as f64 / MIB,
                if r.settle_capped { ", settle capped" } else { "" },
                verdict(a <= 1.2)
            );
        }
        if let Some(a) = r.compacted_space_amp {
            let _ = writeln!(
                s,
                "      (after {}: {a:.2})",
                r.compact_call.as_deref().unwrap_or("a full compaction")
            );
        }
    }
    s
}
