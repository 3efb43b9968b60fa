//! Micro-benchmarks of the memtable: inserting keys in random order (what
//! the write thread does for every commit) and point lookups.
//!
//! Keys follow the project's benchmark generator (`"k"` and 15 zero-padded
//! digits, version 1), 100-byte values; the order is a fixed-seed shuffle.
//!
//! Run: `cargo bench -p brock --bench memtable`.

use brock::format::key::key_with_version;
use brock::memtable::{MemValue, Memtable};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// Entries per memtable in the benchmarks (about 30 MiB accounted).
const ENTRIES: u64 = 200_000;

fn keys() -> Vec<Vec<u8>> {
    // A Fisher-Yates shuffle driven by xorshift64.
    let mut order: Vec<u64> = (0..ENTRIES).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    order
        .into_iter()
        .map(|i| key_with_version(format!("k{i:015}").as_bytes(), 1))
        .collect()
}

fn value() -> MemValue {
    MemValue {
        value: Bytes::from(vec![7u8; 100]),
        ..MemValue::default()
    }
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let v = value();
    let mut g = c.benchmark_group("memtable");
    g.sample_size(10);
    g.throughput(Throughput::Elements(ENTRIES));
    g.bench_function("insert random order", |b| {
        b.iter_batched(
            || Memtable::new(0),
            |mt| {
                for k in &keys {
                    mt.put(k, v.clone());
                }
                mt
            },
            BatchSize::PerIteration,
        )
    });
    let mt = Memtable::new(0);
    for k in &keys {
        mt.put(k, v.clone());
    }
    g.bench_function("get present", |b| {
        b.iter(|| {
            for k in &keys {
                black_box(mt.get(k));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
