//! Where Brock's time goes, through the public API only.
//!
//! `cargo run --release -p brock-bench --example brock_phases -- [N]`
//!
//! Fill: time building the batches, `Txn::set` and `Txn::commit` apart.
//! Reads: the same random gets (a) with every entry in the memtable (a
//! memtable large enough that nothing is flushed) and (b) with every entry
//! in L0 tables (the same directory closed and reopened), so the memtable's
//! and the tables' lookup costs show separately.

use brock::{Db, Options};
use brock_bench::workload::{KEY_LEN, fill_value, key, permutation, process_cpu_secs, read_order, temp_dir};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let (value_size, batch) = (128usize, 1000usize);
    for (label, mem_table_size) in [
        ("default 64 MiB memtables", 64u64 << 20),
        ("one 1 GiB memtable", 1 << 30),
    ] {
        let dir = temp_dir(None)?;
        let db = Db::open(Options::new(dir.path()).with_mem_table_size(mem_table_size))?;
        let order = permutation(n);
        let (mut build, mut set, mut commit) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let cpu0 = process_cpu_secs();
        let all = Instant::now();
        for chunk in order.chunks(batch) {
            let t = Instant::now();
            let entries: Vec<(Vec<u8>, Vec<u8>)> = chunk
                .iter()
                .map(|&i| {
                    let mut v = Vec::with_capacity(value_size);
                    fill_value(i, value_size, &mut v);
                    (key(i).to_vec(), v)
                })
                .collect();
            build += t.elapsed();
            let t = Instant::now();
            let mut txn = db.begin_write();
            for (k, v) in entries {
                txn.set(k, v)?;
            }
            set += t.elapsed();
            let t = Instant::now();
            txn.commit()?;
            commit += t.elapsed();
        }
        let total = all.elapsed();
        let cpu = process_cpu_secs().zip(cpu0).map(|(b, a)| b - a);
        println!(
            "{label}: fill of {n}: {:.2} s ({:.0}/s), cpu {cpu:.2?} s",
            total.as_secs_f64(),
            n as f64 / total.as_secs_f64()
        );
        println!(
            "  build batches {:.2} s, Txn::set {:.2} s, Txn::commit {:.2} s (per entry: {:.2} / {:.2} / {:.2} us)",
            build.as_secs_f64(),
            set.as_secs_f64(),
            commit.as_secs_f64(),
            build.as_secs_f64() * 1e6 / n as f64,
            set.as_secs_f64() * 1e6 / n as f64,
            commit.as_secs_f64() * 1e6 / n as f64
        );
        let t = Instant::now();
        db.wait_for_flushes()?;
        println!(
            "  wait_for_flushes {:.2} s; stats {:?}",
            t.elapsed().as_secs_f64(),
            db.stats()
        );
        reads(&db, n, batch, "  gets, as filled")?;
        db.close()?;
        let db = Db::open(Options::new(dir.path()).with_mem_table_size(mem_table_size))?;
        println!("  reopened: stats {:?}", db.stats());
        reads(&db, n, batch, "  gets, every entry in L0 tables")?;
        db.close()?;
    }
    Ok(())
}

fn reads(db: &Db, n: u64, batch: usize, label: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut order = read_order(n);
    let mut keys: Vec<[u8; KEY_LEN]> = Vec::with_capacity(batch);
    let mut found = 0u64;
    let cpu0 = process_cpu_secs();
    let t = Instant::now();
    let mut done = 0u64;
    while done < n {
        keys.clear();
        keys.extend(order.by_ref().take(batch).map(key));
        let mut txn = db.begin_read();
        for k in &keys {
            found += u64::from(txn.get(k)?.is_some());
        }
        done += batch as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = process_cpu_secs().zip(cpu0).map(|(b, a)| b - a);
    println!(
        "{label}: {done} in {secs:.2} s ({:.0}/s, {:.2} us each), found {found}, cpu {cpu:.2?} s",
        done as f64 / secs,
        secs * 1e6 / done as f64
    );
    Ok(())
}
