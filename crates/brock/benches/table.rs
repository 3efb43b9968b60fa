//! Micro-benchmarks of the table read path: block seek and decode, table
//! point lookup (present and absent keys), full scans and table builds.
//!
//! Keys follow the project's benchmark generator: `key(i)` is `"k"` followed
//! by `i` as 15 zero-padded decimal digits (16 bytes), stored as the internal
//! key `key_with_version(key(i), 1)`. Values are 100 random-looking bytes from
//! a fixed-seed splitmix64, so every run reads and writes the same bytes.
//!
//! There is no block cache yet: every `Table::get` reads its block with a
//! positional read, decompresses it and validates it. These figures are the
//! baseline a cache is to be measured against.
//!
//! Run: `cargo bench -p brock --bench table`.

use brock::format::key::key_with_version;
use brock::format::{CompressionType, ValueStruct};
use brock::iterator::KvIterator;
use brock::table::block::{Block, BlockBuilder};
use brock::table::{BuilderOptions, Table, TableBuilder, TableIterator, TableOptions};
use brock::vfs::{OsVfs, Vfs};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

/// Entries in the table benchmarks.
const TABLE_ENTRIES: usize = 100_000;
/// Value length in bytes.
const VALUE_LEN: usize = 100;
/// Target block size, as `BuilderOptions::default()`.
const BLOCK_SIZE: usize = 4096;
/// Pre-generated random probes cycled through by the lookup benchmarks.
const PROBES: usize = 4096;

/// A fixed-seed splitmix64 generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The benchmark generator's user key: `"k"` + 15 zero-padded digits.
fn user_key(i: usize) -> Vec<u8> {
    format!("k{i:015}").into_bytes()
}

/// A user key that sorts between `user_key(i)` and `user_key(i + 1)` but is
/// in no table: the last digit replaced by `'x'`.
fn absent_user_key(i: usize) -> Vec<u8> {
    let mut k = user_key(i);
    if let Some(last) = k.last_mut() {
        *last = b'x';
    }
    k
}

/// 100 random-looking bytes, determined by `i`.
fn value(i: usize) -> Vec<u8> {
    let mut rng = SplitMix64(0xB10C_u64 ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut v = Vec::with_capacity(VALUE_LEN);
    while v.len() < VALUE_LEN {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(VALUE_LEN);
    v
}

fn vs(v: &[u8]) -> ValueStruct<'_> {
    ValueStruct {
        meta: 0,
        user_meta: 0,
        expires_at: 0,
        value: v,
    }
}

/// The `n` sorted internal keys (version 1) and their values.
fn dataset(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|i| (key_with_version(&user_key(i), 1), value(i)))
        .collect()
}

/// Builds one block of about `BLOCK_SIZE` bytes with the table builder's
/// size estimate; returns its bytes and the internal keys it holds.
fn build_block() -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut b = BlockBuilder::default();
    let mut keys = Vec::new();
    for (i, (key, val)) in dataset(1000).into_iter().enumerate() {
        let v = vs(&val);
        let trailer = (b.count() + 1) * 4 + 4 + 8 + 4;
        if i > 0 && b.entries_len() + 6 + key.len() + v.encoded_len() + trailer > BLOCK_SIZE {
            break;
        }
        b.add(&key, &v);
        keys.push(key);
    }
    (b.finish().0, keys)
}

fn bench_block(c: &mut Criterion) {
    let (bytes, keys) = build_block();
    let block = Block::decode(bytes.clone(), true).expect("block decodes");
    assert_eq!(block.len(), keys.len());
    eprintln!("block: {} bytes, {} entries", bytes.len(), keys.len());

    let mut rng = SplitMix64(42);
    let probes: Vec<(usize, Vec<u8>)> = (0..PROBES)
        .map(|_| {
            let j = rng.below(keys.len());
            (j, keys[j].clone())
        })
        .collect();
    for (j, k) in &probes {
        assert_eq!(block.seek(k), *j);
    }

    let mut g = c.benchmark_group("block_seek");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    g.throughput(Throughput::Elements(1));
    g.bench_function("seek_present", |b| {
        let mut n = 0usize;
        b.iter(|| {
            let (_, k) = &probes[n % PROBES];
            n = n.wrapping_add(1);
            black_box(block.seek(black_box(k)))
        });
    });
    g.finish();

    let mut g = c.benchmark_group("block_decode");
    g.measurement_time(Duration::from_secs(3)).sample_size(30);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    for (name, verify) in [("verify", true), ("no_verify", false)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || bytes.clone(),
                |data| black_box(Block::decode(data, verify).expect("block decodes")),
                BatchSize::SmallInput,
            );
        });
    }
    g.finish();
}

/// A built table on disk, kept alive by its temporary directory.
struct OpenTable {
    _dir: tempfile::TempDir,
    table: Table,
}

fn builder_options(compression: CompressionType) -> BuilderOptions {
    BuilderOptions {
        compression,
        ..BuilderOptions::default()
    }
}

fn build_table(data: &[(Vec<u8>, Vec<u8>)], compression: CompressionType) -> Vec<u8> {
    let mut b = TableBuilder::new(builder_options(compression));
    for (k, v) in data {
        b.add(k, &vs(v), 0);
    }
    b.finish()
}

fn open_table(data: &[(Vec<u8>, Vec<u8>)], compression: CompressionType) -> OpenTable {
    let bytes = build_table(data, compression);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("000001.sst");
    std::fs::write(&path, &bytes).expect("write table");
    let file = OsVfs.open_read(&path).expect("open table file");
    let table = Table::open(
        file,
        TableOptions {
            id: 1,
            compression,
            key_id: 0,
            verify_blocks: true,
        },
    )
    .expect("open table");
    eprintln!(
        "table {}: {} bytes on disk, {} blocks, {} bytes of blocks",
        compression.name(),
        bytes.len(),
        table.block_count(),
        table.data_size(),
    );
    OpenTable { _dir: dir, table }
}

const COMPRESSIONS: [CompressionType; 2] = [CompressionType::Snappy, CompressionType::None];

fn bench_table_lookup(c: &mut Criterion) {
    let data = dataset(TABLE_ENTRIES);
    let mut rng = SplitMix64(7);
    let present: Vec<Vec<u8>> = (0..PROBES)
        .map(|_| key_with_version(&user_key(rng.below(TABLE_ENTRIES)), u64::MAX))
        .collect();
    let absent: Vec<Vec<u8>> = (0..PROBES)
        .map(|_| key_with_version(&absent_user_key(rng.below(TABLE_ENTRIES)), u64::MAX))
        .collect();
    let blocks_to_read: Vec<usize> = (0..PROBES).map(|_| rng.next_u64() as usize).collect();

    for compression in COMPRESSIONS {
        let t = open_table(&data, compression);
        let table = &t.table;
        for k in &present {
            assert!(table.get(k).expect("get").is_some());
        }
        let false_positives = absent
            .iter()
            .filter(|k| !table.does_not_have(brock::format::user_key(k)))
            .count();
        for k in &absent {
            assert!(table.get(k).expect("get").is_none());
        }
        eprintln!(
            "table {}: bloom passes {false_positives}/{PROBES} absent keys",
            compression.name()
        );

        let mut g = c.benchmark_group(format!("table_point_lookup/{}", compression.name()));
        g.measurement_time(Duration::from_secs(3)).sample_size(30);
        g.throughput(Throughput::Elements(1));
        g.bench_function("get_present", |b| {
            let mut n = 0usize;
            b.iter(|| {
                let k = &present[n % PROBES];
                n = n.wrapping_add(1);
                black_box(table.get(black_box(k)).expect("get"))
            });
        });
        g.bench_function("get_absent", |b| {
            let mut n = 0usize;
            b.iter(|| {
                let k = &absent[n % PROBES];
                n = n.wrapping_add(1);
                black_box(table.get(black_box(k)).expect("get"))
            });
        });
        // The part of a get that a block cache would remove: pread +
        // decompress + checksum + validate of one block.
        g.bench_function("read_block", |b| {
            let mut n = 0usize;
            let blocks = table.block_count();
            b.iter(|| {
                let i = blocks_to_read[n % PROBES] % blocks;
                n = n.wrapping_add(1);
                black_box(table.block(black_box(i)).expect("block"))
            });
        });
        g.finish();

        let mut g = c.benchmark_group(format!("table_scan/{}", compression.name()));
        g.measurement_time(Duration::from_secs(4))
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Elements(TABLE_ENTRIES as u64));
        g.bench_function("full_scan", |b| {
            b.iter(|| {
                let mut it = TableIterator::new(table);
                it.seek_to_first().expect("seek");
                let mut n = 0usize;
                while it.valid() {
                    black_box(it.key());
                    black_box(it.value());
                    n += 1;
                    it.next().expect("next");
                }
                assert_eq!(n, TABLE_ENTRIES);
                n
            });
        });
        g.finish();
    }
}

fn bench_table_build(c: &mut Criterion) {
    let data = dataset(TABLE_ENTRIES);
    let input_bytes: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum();
    let mut g = c.benchmark_group("table_build");
    g.measurement_time(Duration::from_secs(5))
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat);
    g.throughput(Throughput::Bytes(input_bytes as u64));
    for compression in COMPRESSIONS {
        g.bench_function(compression.name(), |b| {
            b.iter(|| black_box(build_table(black_box(&data), compression)));
        });
    }
    g.finish();
}

criterion_group!(benches, bench_block, bench_table_lookup, bench_table_build);
criterion_main!(benches);
