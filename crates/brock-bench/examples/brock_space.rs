//! Where Brock's writes and space go in the compaction workloads, through
//! the public API only.
//!
//! `cargo run --release -p brock-bench --example brock_space -- [N]`
//!
//! 1. The fill (random order, 128-byte values, batches of 1000) with
//!    compaction off (`num_compactors = 0`): the bytes Brock writes are then
//!    only the WAL and the L0 flushes, so the fill's write amplification
//!    with compaction on (the harness's) splits into WAL + flush and
//!    compaction. (Up to `num_level_zero_tables_stall` flushes, the fill
//!    does not stall: N = 5M makes about a dozen.)
//! 2. With compaction on: the fill, then the delete of 90% of the keys, each
//!    settled as in the harness; then what each of these reaches, measured
//!    as `du` against the live data: `Db::flatten(2)`; closing and reopening
//!    (closing flushes the active memtable, whose tombstones otherwise stay
//!    in memory and in its WAL) and settling; `Db::flatten(2)` again.

use brock::Options;
use brock_bench::stores::brock::{BrockStore, describe_levels};
use brock_bench::workload::{Config, Op, Report, Store, dir_usage, run_op, temp_dir};
use std::path::Path;
use std::time::Instant;

/// The allocator of the harness and of `brock`, so the timings compare.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5_000_000);
    let cfg = Config {
        n,
        ..Config::default()
    };
    let user = (n * (16 + cfg.value_size as u64)) as f64;
    let live = cfg.live_bytes_after_delete() as f64;

    // 1. Compaction off.
    {
        let dir = temp_dir(None)?;
        let mut s = BrockStore::open_with(Options::new(dir.path()).with_num_compactors(0))?;
        let w = run_op(&mut s, Op::Write, &cfg, dir.path(), &mut |_| {})?;
        let st = s.db().stats();
        println!(
            "compaction off: fill {:.1} s ({:.0} ops/s, {:.1} cpu s), stalls {:.2} s; written {:.1} MiB = {:.2}x user \
             ({} flushes, {:.1} MiB of L0 tables = {:.2}x, so the WAL {:.2}x); du {:.1} MiB {:?}",
            w.secs,
            w.ops_per_sec,
            w.cpu_secs.unwrap_or(0.0),
            st.stall_nanos as f64 / 1e9,
            st.bytes_written as f64 / MIB,
            st.bytes_written as f64 / user,
            st.flushes,
            st.bytes_per_level[0] as f64 / MIB,
            st.bytes_per_level[0] as f64 / user,
            (st.bytes_written - st.bytes_per_level[0]) as f64 / user,
            w.dir_alloc_bytes as f64 / MIB,
            w.dir_files,
        );
        Box::new(s).close()?;
    }

    // 2. Compaction on: fill, delete, then the steps.
    let dir = temp_dir(None)?;
    let mut s = BrockStore::open(dir.path(), false)?;
    let w = run_op(&mut s, Op::Write, &cfg, dir.path(), &mut |_| {})?;
    line("fill", &w, user, live, dir.path(), &s)?;
    let d = run_op(&mut s, Op::Delete, &cfg, dir.path(), &mut |_| {})?;
    println!(
        "delete: {:.1} s, written {:.1} MiB, {} compactions",
        d.secs,
        d.write_syscall_bytes.unwrap_or(0) as f64 / MIB,
        d.compactions.unwrap_or(0)
    );
    // run_op measured after the settle, then ran flatten; both are in `d`.
    println!(
        "after the delete, settled: du {:.1} MiB = {:.2}x live; levels: {}",
        d.dir_alloc_bytes as f64 / MIB,
        d.space_amp.unwrap_or(0.0),
        d.levels.as_deref().unwrap_or("")
    );
    step("then Db::flatten(2)", dir.path(), live, &s)?;
    let t = Instant::now();
    Box::new(s).close()?;
    let mut s = BrockStore::open(dir.path(), false)?;
    let settled = s.settle(&cfg.settle)?;
    println!(
        "close (flushes the memtable) and reopen: {:.1} s, settle {:.1} s{}",
        t.elapsed().as_secs_f64(),
        settled.secs,
        if settled.capped { " (capped)" } else { "" }
    );
    step("after close, reopen, settle", dir.path(), live, &s)?;
    let t = Instant::now();
    s.db().flatten(2)?;
    s.settle(&cfg.settle)?;
    println!("flatten again: {:.1} s", t.elapsed().as_secs_f64());
    step("then Db::flatten(2)", dir.path(), live, &s)?;
    Box::new(s).close()?;
    step_closed("closed", dir.path(), live)?;
    Ok(())
}

fn line(what: &str, r: &Report, user: f64, live: f64, dir: &Path, s: &BrockStore) -> Result<()> {
    println!(
        "{what}: {:.1} s ({:.0} ops/s), settle {:.1} s, written {:.1} MiB = {:.2}x user, {} compactions",
        r.secs,
        r.ops_per_sec,
        r.settle_secs,
        r.write_syscall_bytes.unwrap_or(0) as f64 / MIB,
        r.write_syscall_bytes.unwrap_or(0) as f64 / user,
        r.compactions.unwrap_or(0)
    );
    step(what, dir, live, s)
}

fn step(what: &str, dir: &Path, live: f64, s: &BrockStore) -> Result<()> {
    let u = dir_usage(dir)?;
    let (lsm, vlog) = s.db().size();
    println!(
        "  {what}: du {:.1} MiB = {:.2}x live ({:.1} MiB); tables {:.1} MiB, vlog {:.1} MiB; files {:?}\n    levels: {}",
        u.allocated as f64 / MIB,
        u.allocated as f64 / live,
        live / MIB,
        lsm as f64 / MIB,
        vlog as f64 / MIB,
        u.by_kind,
        describe_levels(s.db())
    );
    Ok(())
}

fn step_closed(what: &str, dir: &Path, live: f64) -> Result<()> {
    let u = dir_usage(dir)?;
    println!(
        "  {what}: du {:.1} MiB = {:.2}x live; files {:?}",
        u.allocated as f64 / MIB,
        u.allocated as f64 / live,
        u.by_kind
    );
    Ok(())
}
