//! Read-path A/B: fill Brock as the harness does, then time random-read rounds.
//!
//! `cargo run --release -p brock-bench --example read_rounds -- [ROUNDS] [BARRIER_DIR]`
//!
//! Fills 1M entries (128-byte values, batches of 1000, random order), then
//! runs ROUNDS (default 5) rounds of 1M random gets on the same open store
//! (a quarter of the keys still in the memtable, as in the harness's read),
//! printing `round ops/s` per line. With BARRIER_DIR, each round starts only
//! once two processes have reached it there, so two builds run each round at
//! the same time and share the machine's noise; pin them to different cores
//! and compare round by round (see `crates/brock-bench/README.md`).

use brock_bench::stores;
use brock_bench::workload::{Config, Op, run_op, temp_dir};
use std::path::Path;
use std::time::Duration;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Waits until `peers` processes have entered `round` under `dir`.
fn barrier(dir: &Path, round: usize, peers: usize) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("round-{round}.{}", std::process::id())), b"")?;
    let prefix = format!("round-{round}.");
    loop {
        let arrived = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .count();
        if arrived >= peers {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let sync_dir = args.next().map(std::path::PathBuf::from);
    // The harness's defaults: 1M entries, 128-byte values, batches of
    // 1000, random order.
    let mut cfg = Config::default();
    let dir = temp_dir(None)?;
    let mut store = stores::open("brock", dir.path(), &cfg)?;
    let fill = run_op(store.as_mut(), Op::Write, &cfg, dir.path(), &mut |_| {})?;
    eprintln!("fill {:.0} ops/s", fill.ops_per_sec);
    cfg = cfg.after(Op::Write);
    for round in 0..rounds {
        if let Some(d) = &sync_dir {
            barrier(d, round, 2)?;
        }
        let r = run_op(store.as_mut(), Op::Read, &cfg, dir.path(), &mut |_| {})?;
        println!("{round} {:.0}", r.ops_per_sec);
    }
    store.close()?;
    Ok(())
}
