//! Where a random get's time goes, by where its key sits.
//!
//! `cargo run --release -p brock-bench --example hit_costs -- [STORE]`
//!
//! Fills STORE (default `brock`; also `fjall`, `redb`) as the harness does
//! (1M entries, 128-byte values, batches of 1000, random order), then times
//! 500,000 random gets, three rounds each, from three key sets: the first 60%
//! written (for Brock, in its tables), the last 20% written (for Brock,
//! mostly still in the mutable memtable) and all keys. Round 0 includes the
//! first reads of each table block (Brock reads and caches blocks on first
//! use). Prints nanoseconds per get.

use brock_bench::stores;
use brock_bench::workload::{Config, Op, Order, SplitMix64, key, run_op, temp_dir, write_order};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let store_name = std::env::args().nth(1).unwrap_or_else(|| "brock".into());
    // The harness's defaults: 1M entries, 128-byte values, batches of
    // 1000, random order.
    let cfg = Config::default();
    let dir = temp_dir(None)?;
    let mut store = stores::open(&store_name, dir.path(), &cfg)?;
    run_op(store.as_mut(), Op::Write, &cfg, dir.path(), &mut |_| {})?;
    let order = write_order(cfg.n, Order::Random);
    let n = order.len();
    let sets: [(&str, &[u64]); 3] = [
        ("first 60% written", &order[..n * 6 / 10]),
        ("last 20% written", &order[n * 8 / 10..]),
        ("all", &order[..]),
    ];
    for round in 0..3 {
        for (name, set) in sets {
            let mut rng = SplitMix64::new(0xBEEF + round);
            let keys: Vec<_> = (0..500_000)
                .map(|_| key(set[(rng.next_u64() % set.len() as u64) as usize]))
                .collect();
            let started = Instant::now();
            let mut found = 0u64;
            for chunk in keys.chunks(1000) {
                store.read_batch(chunk, &mut |_, _| found += 1)?;
            }
            if found != keys.len() as u64 {
                return Err(format!("{store_name}: {found} of {} keys found", keys.len()).into());
            }
            let ns = started.elapsed().as_nanos() as f64 / keys.len() as f64;
            println!("{store_name} round {round} {name}: {ns:.0} ns/get");
        }
    }
    Ok(())
}
