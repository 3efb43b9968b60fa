//! Where a value lives must never change what a reader sees.
//!
//! Values of `value_threshold` bytes or more go to the value log and the tree
//! keeps a pointer; shorter ones stay in the tree. These tests check that
//! boundary and everything either side of it:
//! - a sweep of value sizes (0, 1, the threshold and its neighbours, powers
//!   of two, the largest allowed) for thresholds 0, 1 KiB and 1 MiB, each
//!   value read back after its commit, after a flush, after a reopen and
//!   through an iterator, with its placement (log or tree) checked against
//!   the growth of the `.vlog` files, and one byte over the limit refused;
//! - a metamorphic test (house style rule 9): one seeded random log of sets,
//!   overwrites, deletes, flushes, reopens and GC runs, replayed under
//!   thresholds 0, 1 KiB and 1 MiB (and with tiny memtables), must give the
//!   same full scan and the same point reads after every flush, GC and
//!   reopen and at the end, and agree with a `BTreeMap` model (within one
//!   snapshot the scan and the point reads must also agree on versions;
//!   versions are not compared across runs, since which tombstones
//!   compaction has dropped, and so the version a reopen resumes from, is
//!   timing);
//! - value-log rotation by size and by entry count: several `.vlog` files
//!   appear and every value still reads, before and after a reopen.
//!
//! Environment: `BROCK_VLOG_META_SEED=<u64>` replays one metamorphic seed
//! (printed on failure); `BROCK_SOAK=1` runs more seeds and a longer log.
//! The default run takes a few seconds.

mod common;

use common::Rng;

use brock::options::MAX_VALUE_THRESHOLD;
use brock::{Db, Error, IterOptions, Options};
use std::collections::BTreeMap;
use std::path::Path;

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;

fn soak() -> bool {
    std::env::var("BROCK_SOAK").is_ok_and(|v| v == "1")
}

/// `len` pseudo-random bytes determined by `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed ^ (len as u64).rotate_left(17));
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Options that accept a value of `MAX_VALUE_THRESHOLD` bytes in the tree:
/// the threshold may not exceed 15% of the memtable size.
fn base_opts(dir: &Path, threshold: u64) -> Options {
    Options::new(dir)
        .with_value_threshold(threshold)
        .with_mem_table_size(8 * MIB)
        .with_value_log_file_size(2 * MIB)
}

/// The largest value `opts` accepts (a value-log file's size).
fn max_value(opts: &Options) -> u64 {
    opts.validate().expect("valid options").max_value_size
}

fn short(v: &[u8]) -> String {
    format!("{} bytes", v.len())
}

// ---------------------------------------------------------------------------
// The size sweep.

/// Sizes around `threshold` and up to `max`, without duplicates.
fn sweep_sizes(threshold: u64, max: u64) -> Vec<u64> {
    let mut sizes = vec![0, 1, max - 1, max];
    for s in [threshold.wrapping_sub(1), threshold, threshold + 1] {
        if s <= max {
            sizes.push(s);
        }
    }
    let mut p = 2;
    while p <= max {
        sizes.extend([p - 1, p]);
        p <<= 1;
    }
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

fn sweep_key(size: u64) -> Vec<u8> {
    format!("size/{size:09}").into_bytes()
}

fn sweep_value(size: u64) -> Vec<u8> {
    pattern(0xC0FFEE ^ size, size as usize)
}

#[track_caller]
fn check_sweep(db: &Db, sizes: &[u64], when: &str) {
    db.view(|t| {
        for &s in sizes {
            let got = t
                .get(&sweep_key(s))?
                .unwrap_or_else(|| panic!("{when}: size {s} missing"));
            let v = got.value()?;
            assert!(
                v.as_ref() == sweep_value(s).as_slice(),
                "{when}: size {s} read back wrong ({})",
                short(&v)
            );
        }
        Ok(())
    })
    .unwrap();
    let scanned: Vec<(Vec<u8>, Vec<u8>)> = db
        .view(|t| {
            t.iter(IterOptions::default())?
                .map(|i| i.map(|i| (i.key().to_vec(), i.value_ref().to_vec())))
                .collect()
        })
        .unwrap_or_else(|e| panic!("{when}: scan: {e}"));
    let want: Vec<(Vec<u8>, Vec<u8>)> = sizes.iter().map(|&s| (sweep_key(s), sweep_value(s))).collect();
    assert_eq!(scanned.len(), want.len(), "{when}: scan length");
    for ((gk, gv), (wk, wv)) in scanned.iter().zip(&want) {
        assert_eq!(gk, wk, "{when}: scan keys");
        assert!(gv == wv, "{when}: scan value of {}", String::from_utf8_lossy(gk));
    }
}

fn size_sweep(threshold: u64) {
    let dir = tempfile::tempdir().unwrap();
    let opts = base_opts(dir.path(), threshold);
    let max = max_value(&opts);
    assert!(max > threshold, "the sweep needs values above the threshold");
    let sizes = sweep_sizes(threshold, max);
    let db = Db::open(opts.clone()).unwrap();
    for &s in &sizes {
        let before = common::vlog_bytes(dir.path());
        db.update(|t| t.set(sweep_key(s), sweep_value(s)))
            .unwrap_or_else(|e| panic!("threshold {threshold}: committing a value of {s} bytes: {e}"));
        let grew = common::vlog_bytes(dir.path()) - before;
        if s >= threshold {
            assert!(
                grew > s,
                "threshold {threshold}: a {s}-byte value should go to the value log (grew {grew})"
            );
        } else {
            assert_eq!(
                grew, 0,
                "threshold {threshold}: a {s}-byte value should stay in the tree"
            );
        }
        let got = db
            .view(|t| t.get(&sweep_key(s)))
            .unwrap()
            .expect("just committed");
        assert!(
            got.value_ref() == sweep_value(s).as_slice(),
            "threshold {threshold}: size {s} right after commit"
        );
    }
    // One byte over the limit is refused, and changes nothing.
    let err = db
        .update(|t| t.set(b"too-big".to_vec(), vec![7u8; max as usize + 1]))
        .unwrap_err();
    assert!(
        matches!(err, Error::ValueTooLarge { len, limit } if len == max + 1 && limit == max),
        "{err:?}"
    );
    check_sweep(&db, &sizes, &format!("threshold {threshold}, before flush"));
    db.flush().unwrap();
    check_sweep(&db, &sizes, &format!("threshold {threshold}, after flush"));
    db.close().unwrap();
    let db = Db::open(opts.clone()).unwrap();
    check_sweep(&db, &sizes, &format!("threshold {threshold}, after reopen"));
    db.flatten(2).unwrap();
    check_sweep(&db, &sizes, &format!("threshold {threshold}, after flatten"));
    db.close().unwrap();
    let db = Db::open(opts.with_read_only(true)).unwrap();
    check_sweep(&db, &sizes, &format!("threshold {threshold}, read-only"));
    db.close().unwrap();
}

#[test]
fn size_sweep_threshold_0() {
    size_sweep(0);
}

#[test]
fn size_sweep_threshold_1_kib() {
    size_sweep(KIB);
}

#[test]
fn size_sweep_threshold_1_mib() {
    size_sweep(MAX_VALUE_THRESHOLD);
}

/// The option limits around the threshold: 1 MiB is the largest threshold,
/// and the threshold may not exceed 15% of the memtable.
#[test]
fn threshold_limits_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let named = |o: Options| match o.validate() {
        Err(Error::InvalidOption { name, .. }) => name,
        other => panic!("expected InvalidOption, got {other:?}"),
    };
    assert_eq!(
        named(base_opts(dir.path(), MAX_VALUE_THRESHOLD + 1)),
        "value_threshold"
    );
    assert_eq!(
        named(base_opts(dir.path(), 2 * KIB).with_mem_table_size(8 * KIB)),
        "value_threshold"
    );
    base_opts(dir.path(), 0).validate().unwrap();
    base_opts(dir.path(), MAX_VALUE_THRESHOLD).validate().unwrap();
}

/// An in-memory database has no value log, so its largest value is one byte
/// under the threshold; a threshold of 0 must be refused (or handled), not
/// underflow while the limits are derived.
#[test]
fn in_memory_threshold_zero_is_not_an_underflow() {
    let opts = Options::in_memory().with_value_threshold(0);
    let validated = std::panic::catch_unwind(|| opts.validate());
    let validated = validated.expect("Options::validate panicked for an in-memory threshold of 0");
    match validated {
        Err(Error::InvalidOption { name, .. }) => assert_eq!(name, "value_threshold"),
        Ok(limits) => assert!(
            limits.max_value_size < 1 << 40,
            "max value size {} wrapped around",
            limits.max_value_size
        ),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

// ---------------------------------------------------------------------------
// Rotation.

fn vlog_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".vlog")
        })
        .count()
}

fn rotation(opts: Options, n: u64, len: usize, min_files: usize) {
    let dir = opts.dir.clone();
    let key = |i: u64| format!("r/{i:05}").into_bytes();
    let val = |i: u64| pattern(i.wrapping_mul(31), len + (i % 7) as usize);
    let db = Db::open(opts.clone()).unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        db.update(|t| {
            for &i in chunk {
                t.set(key(i), val(i))?;
            }
            Ok(())
        })
        .unwrap();
    }
    let files = vlog_files(&dir);
    assert!(
        files >= min_files,
        "{files} value-log files, expected at least {min_files}"
    );
    let check = |db: &Db, when: &str| {
        db.view(|t| {
            for i in 0..n {
                let got = t.get(&key(i))?.unwrap_or_else(|| panic!("{when}: r/{i} missing"));
                assert!(got.value_ref() == val(i).as_slice(), "{when}: r/{i}");
            }
            Ok(())
        })
        .unwrap();
        let mut count = 0;
        for item in db.begin_read().iter(IterOptions::default()).unwrap() {
            let item = item.unwrap_or_else(|e| panic!("{when}: scan: {e}"));
            let i: u64 = std::str::from_utf8(&item.key()[2..]).unwrap().parse().unwrap();
            assert!(item.value_ref() == val(i).as_slice(), "{when}: scan r/{i}");
            count += 1;
        }
        assert_eq!(count, n, "{when}: scan count");
    };
    check(&db, "open");
    db.flush().unwrap();
    check(&db, "flushed");
    db.close().unwrap();
    let db = Db::open(opts).unwrap();
    assert!(vlog_files(&dir) >= files, "reopen kept the value-log files");
    check(&db, "reopened");
    db.close().unwrap();
}

#[test]
fn value_log_rotates_by_size_and_every_value_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path())
        .with_value_threshold(KIB)
        .with_mem_table_size(MIB)
        .with_value_log_file_size(MIB);
    // 320 values of ~16 KiB: five MiB over 1 MiB files.
    rotation(opts, 320, 16 << 10, 5);
}

#[test]
fn value_log_rotates_by_entry_count_and_every_value_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::new(dir.path())
        .with_value_threshold(64)
        .with_mem_table_size(256 * KIB)
        .with_value_log_max_entries(16)
        .with_value_log_file_size(MIB);
    // Rotation happens between commits (of 8 values) once 16 entries are in.
    rotation(opts, 400, 200, 12);
}

// ---------------------------------------------------------------------------
// The metamorphic test.

#[derive(Debug, Clone)]
enum Op {
    /// One transaction: (key index, value length, value seed), `None` = delete.
    Txn(Vec<(u64, Option<(u64, u64)>)>),
    Flush,
    Reopen,
    Gc,
}

const META_KEYS: u64 = 48;

fn meta_key(i: u64) -> Vec<u8> {
    format!("key/{i:03}").into_bytes()
}

/// Value lengths chosen to straddle both thresholds under test. Values near
/// 1 MiB come only in single-write transactions (`alone`): under the 1 MiB
/// threshold they stay in the tree and count fully against the transaction
/// size limit (15% of 8 MiB).
fn meta_len(rng: &mut Rng, alone: bool) -> u64 {
    match rng.below(100) {
        0..=29 => rng.below(65),
        30..=49 => rng.range(KIB - 24, KIB + 24),
        50..=84 => rng.range(2 * KIB, 48 * KIB),
        85..=94 => rng.range(100 * KIB, 300 * KIB),
        _ if alone => rng.range(MIB - 3, MIB + 3),
        _ => rng.range(2 * KIB, 48 * KIB),
    }
}

fn meta_log(seed: u64, ops: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    (0..ops)
        .map(|_| match rng.below(100) {
            0..=3 => Op::Flush,
            4..=5 => Op::Reopen,
            6..=8 => Op::Gc,
            _ => {
                let n = 1 + rng.below(3);
                Op::Txn(
                    (0..n)
                        .map(|_| {
                            let k = rng.below(META_KEYS);
                            if rng.below(5) == 0 {
                                (k, None)
                            } else {
                                let len = meta_len(&mut rng, n == 1);
                                (k, Some((len, rng.next())))
                            }
                        })
                        .collect(),
                )
            }
        })
        .collect()
}

/// What a reader sees: key → value.
type Seen = BTreeMap<Vec<u8>, Vec<u8>>;
/// The same with each key's version.
type Versioned = BTreeMap<Vec<u8>, (u64, Vec<u8>)>;

/// One read snapshot, scanned and probed key by key: both must agree,
/// versions included, and no version may exceed the newest commit.
fn observe(db: &Db) -> std::result::Result<Seen, String> {
    let max = db.max_version();
    let mut txn = db.begin_read();
    let mut scanned = Versioned::new();
    for item in txn
        .iter(IterOptions::default())
        .map_err(|e| format!("iter: {e}"))?
    {
        let item = item.map_err(|e| format!("scan: {e}"))?;
        let prev = scanned.insert(item.key().to_vec(), (item.version(), item.value_ref().to_vec()));
        if prev.is_some() {
            return Err(format!("the scan yielded {:?} twice", item.key()));
        }
    }
    let mut probed = Versioned::new();
    for i in 0..META_KEYS {
        if let Some(item) = txn.get(&meta_key(i)).map_err(|e| format!("get: {e}"))? {
            let value = item.value().map_err(|e| format!("value: {e}"))?;
            probed.insert(meta_key(i), (item.version(), value.to_vec()));
        }
    }
    if scanned != probed {
        let strip = |m: &Versioned| -> Seen { m.iter().map(|(k, (_, v))| (k.clone(), v.clone())).collect() };
        let versions: Vec<_> = scanned
            .iter()
            .filter(|(k, (v, _))| probed.get(*k).is_some_and(|(pv, _)| pv != v))
            .map(|(k, (v, _))| format!("{} scan v{v} get v{}", String::from_utf8_lossy(k), probed[k].0))
            .take(5)
            .collect();
        return Err(format!(
            "the scan and point reads disagree: {} {versions:?}",
            diff(&strip(&scanned), &strip(&probed))
        ));
    }
    if let Some((k, (v, _))) = scanned.iter().find(|(_, (v, _))| *v > max) {
        return Err(format!(
            "{} has version {v} above max_version {max}",
            String::from_utf8_lossy(k)
        ));
    }
    Ok(scanned.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

/// Differences between two observations, for a failure message.
fn diff(a: &Seen, b: &Seen) -> String {
    let mut out = Vec::new();
    for k in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let show = |v: Option<&Vec<u8>>| v.map_or("absent".to_string(), |val| short(val));
        if a.get(k) != b.get(k) {
            out.push(format!(
                "{}: {} vs {}",
                String::from_utf8_lossy(k),
                show(a.get(k)),
                show(b.get(k))
            ));
        }
    }
    out.truncate(10);
    out.join("; ")
}

/// Runs `log` under `opts` and returns what was seen at every reopen and at
/// the end (scan and point reads, which must agree with each other and with
/// the model).
fn run_log(opts: &Options, log: &[Op], label: &str) -> (Vec<Seen>, u64) {
    let mut model = Seen::new();
    let mut db = Db::open(opts.clone()).unwrap();
    let mut snapshots = Vec::new();
    let mut collected = 0;
    let observe = |db: &Db, model: &Seen, at: usize| -> Seen {
        let seen = observe(db).unwrap_or_else(|e| panic!("{label}, op {at}: {e}"));
        assert!(
            &seen == model,
            "{label}, op {at}: the database and the model disagree: {}",
            diff(&seen, model)
        );
        seen
    };
    for (at, op) in log.iter().enumerate() {
        match op {
            Op::Txn(writes) => {
                db.update(|t| {
                    for &(k, w) in writes {
                        match w {
                            Some((len, seed)) => t.set(meta_key(k), pattern(seed, len as usize))?,
                            None => t.delete(meta_key(k))?,
                        }
                    }
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("{label}, op {at}: commit: {e}"));
                for &(k, w) in writes {
                    match w {
                        Some((len, seed)) => {
                            model.insert(meta_key(k), pattern(seed, len as usize));
                        }
                        None => {
                            model.remove(&meta_key(k));
                        }
                    }
                }
            }
            Op::Flush => {
                db.flush()
                    .unwrap_or_else(|e| panic!("{label}, op {at}: flush: {e}"));
                snapshots.push(observe(&db, &model, at));
            }
            Op::Gc => {
                loop {
                    match db.run_value_log_gc(0.3) {
                        Ok(_) => collected += 1,
                        Err(Error::NoRewrite) => break,
                        Err(e) => panic!("{label}, op {at}: gc: {e}"),
                    }
                }
                snapshots.push(observe(&db, &model, at));
            }
            Op::Reopen => {
                db.close()
                    .unwrap_or_else(|e| panic!("{label}, op {at}: close: {e}"));
                db = Db::open(opts.clone()).unwrap_or_else(|e| panic!("{label}, op {at}: reopen: {e}"));
                snapshots.push(observe(&db, &model, at));
            }
        }
    }
    snapshots.push(observe(&db, &model, log.len()));
    db.close().unwrap();
    let db = Db::open(opts.clone()).unwrap();
    snapshots.push(observe(&db, &model, log.len() + 1));
    db.flatten(2).unwrap();
    while db.run_value_log_gc(0.01).is_ok() {}
    snapshots.push(observe(&db, &model, log.len() + 2));
    db.close().unwrap();
    (snapshots, collected)
}

fn metamorphic(seed: u64, ops: usize) {
    let log = meta_log(seed, ops);
    // (threshold, memtable size): the tiny memtables flush and compact on their own.
    let configs: [(u64, u64); 5] = [
        (0, 8 * MIB),
        (KIB, 8 * MIB),
        (MAX_VALUE_THRESHOLD, 8 * MIB),
        (0, 64 * KIB),
        (KIB, 64 * KIB),
    ];
    let mut first: Option<(String, Vec<Seen>)> = None;
    for (threshold, mem) in configs {
        let dir = tempfile::tempdir().unwrap();
        let opts = Options::new(dir.path())
            .with_value_threshold(threshold)
            .with_mem_table_size(mem)
            .with_value_log_file_size(2 * MIB)
            .with_base_table_size(64 * KIB)
            .with_base_level_size(256 * KIB);
        let label =
            format!("seed {seed} (BROCK_VLOG_META_SEED={seed}), threshold {threshold}, memtable {mem}");
        let (seen, collected) = run_log(&opts, &log, &label);
        eprintln!(
            "{label}: {} observations, {collected} files collected by GC",
            seen.len()
        );
        if threshold == 0 {
            assert!(
                collected > 0,
                "{label}: GC never collected a file, so it was not tested"
            );
        }
        match &first {
            None => first = Some((label, seen)),
            Some((l0, s0)) => {
                assert_eq!(s0.len(), seen.len(), "{label}: observations");
                for (i, (a, b)) in s0.iter().zip(&seen).enumerate() {
                    assert!(
                        a == b,
                        "{label} and {l0} disagree at observation {i}: {}",
                        diff(a, b)
                    );
                }
            }
        }
    }
}

#[test]
fn the_same_log_gives_the_same_answers_under_every_threshold() {
    let (seeds, ops): (Vec<u64>, usize) = match std::env::var("BROCK_VLOG_META_SEED") {
        Ok(s) => (
            vec![s.trim().parse().expect("BROCK_VLOG_META_SEED is a u64")],
            300,
        ),
        Err(_) if soak() => ((1..=8).collect(), 800),
        Err(_) => ((1..=4).collect(), 300),
    };
    for seed in seeds {
        metamorphic(seed, ops);
    }
}
