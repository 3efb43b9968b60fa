//! Leveled compaction against models.
//!
//! 1. A seeded model run (heavy overwrites, deletes, expired and TTL'd
//!    writes, small range deletes over 1,500 keys) with tiny memtables,
//!    tables and level targets, so that L0 → base, Li → Li+1 and the
//!    stale-table path run all the time; every batch of operations and every
//!    close + reopen is checked against a `BTreeMap`. A second run keeps
//!    three versions and holds old snapshots open while keys are overwritten
//!    again and again: the snapshots' reads never change and their
//!    all-versions scans keep every version Badger's GC rules say they need.
//! 2. A deleted (or expired) key never comes back, whatever levels its value
//!    and its tombstone sit in when compaction meets them, including Badger
//!    #2143 (data left in an upper level while the computed base level is
//!    lower).
//! 3. Go Badger's `multilevel` fixture flattened by Brock still dumps as Go
//!    wrote it.
//! 4. Snapshot readers during constant compaction see a consistent state.
//! 5. `drop_all` and `drop_prefix`, with data in every level, across
//!    reopens, and under an older snapshot's iterator.
//!
//! `BROCK_COMPACTION_SEED=<n>` replays one seed of the seeded tests (`random`
//! picks one); a failure prints its seed. `BROCK_COMPACTION_OPS=<n>` sets the
//! transactions per round of the model run.

mod common;

use brock::inspect::{DirView, DumpMode, write_dump};
use brock::levels::replay_manifest;
use brock::vfs::{FileKind, MemVfs, Vfs, classify};
use brock::{Db, Entry, Error, Item, IterOptions, Options};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------
// Shared helpers.

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("BROCK_COMPACTION_SEED") {
        Ok(s) if s == "random" => {
            vec![SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)]
        }
        Ok(s) => vec![s.parse().expect("BROCK_COMPACTION_SEED must be a number or `random`")],
        Err(_) => defaults.to_vec(),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |s| s.parse().unwrap_or_else(|_| panic!("{name} must be a number")))
}

/// Prints the seed when the test fails.
struct SeedGuard {
    name: &'static str,
    seed: u64,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{} failed with seed {}: replay with BROCK_COMPACTION_SEED={}", self.name, self.seed, self.seed);
        }
    }
}

/// Tiny sizes so that every kind of compaction runs within a short test:
/// 16 KiB memtables, 8 KiB tables, a 32 KiB base level, ×4 per level.
fn tiny(dir: impl Into<PathBuf>) -> Options {
    Options::new(dir.into())
        .with_mem_table_size(16 << 10)
        .with_value_threshold(1000)
        .with_base_table_size(8 << 10)
        .with_base_level_size(32 << 10)
        .with_level_size_multiplier(4)
        .with_num_level_zero_tables(2)
        .with_num_level_zero_tables_stall(8)
        .with_num_compactors(2)
        .with_max_levels(4)
        .with_block_size(1024)
        .with_num_versions_to_keep(1)
        .with_block_cache_size(1 << 20)
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn show(bytes: &[u8]) -> String {
    let printable = bytes.iter().take(24).all(|b| b.is_ascii_graphic());
    let mut s = if printable {
        String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned()
    } else {
        bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
    };
    if bytes.len() > 24 {
        s.push_str(&format!("…({} B)", bytes.len()));
    }
    s
}

fn scan_all(db: &Db, prefix: &[u8]) -> Model {
    let mut out = Model::new();
    let mut txn = db.begin_read();
    for item in txn.iter(IterOptions::default().prefix(prefix)).expect("iter") {
        let item = item.expect("scan");
        let prev = out.insert(item.key().to_vec(), item.value_ref().to_vec());
        assert!(prev.is_none(), "the scan yielded {} twice", show(item.key()));
    }
    out
}

fn get(db: &Db, key: &[u8]) -> Option<Vec<u8>> {
    db.view(|t| t.get(key)).expect("get").map(|i| i.value_ref().to_vec())
}

fn diff(got: &Model, want: &Model) -> String {
    let mut out = String::new();
    let keys: BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    let mut n = 0;
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            n += 1;
            if n <= 12 {
                out.push_str(&format!(
                    "\n  {}: got {}, want {}",
                    show(k),
                    g.map_or("absent".into(), |v| show(v)),
                    w.map_or("absent".into(), |v| show(v))
                ));
            }
        }
    }
    format!("{n} keys differ:{out}")
}

fn assert_model(db: &Db, model: &Model, prefix: &[u8], ctx: &str) {
    let got = scan_all(db, prefix);
    assert!(got == *model, "{ctx}: the scan differs from the model: {}", diff(&got, model));
}

/// Every `.sst` in `dir` is named by the MANIFEST and every table it names exists.
fn assert_tables_match_manifest(vfs: &dyn Vfs, dir: &Path, ctx: &str) {
    let path = dir.join("MANIFEST");
    let bytes = vfs.read_all(&path).expect("read MANIFEST");
    let replay = replay_manifest(&bytes, &path, None).expect("replay MANIFEST");
    let named: BTreeSet<u64> = replay.manifest.tables.keys().copied().collect();
    let present: BTreeSet<u64> = vfs
        .list_dir(dir)
        .expect("list dir")
        .iter()
        .filter_map(|e| match classify(&e.name) {
            Some(FileKind::Sst(id)) => Some(id),
            _ => None,
        })
        .collect();
    let leaked: Vec<_> = present.difference(&named).collect();
    let missing: Vec<_> = named.difference(&present).collect();
    assert!(
        leaked.is_empty() && missing.is_empty(),
        "{ctx}: tables in the directory but not the MANIFEST {leaked:?}, in the MANIFEST but missing {missing:?}"
    );
}

fn os() -> brock::vfs::OsVfs {
    brock::vfs::OsVfs
}

/// The deepest level holding a table, and the total compactions.
fn deepest_level(db: &Db) -> usize {
    db.tables().iter().map(|t| t.level).max().unwrap_or(0)
}

fn level_summary(db: &Db) -> String {
    db.levels()
        .iter()
        .map(|l| {
            format!(
                "L{}{}: {} tables {} B (stale {}, target {}, score {:.2})",
                l.level,
                if l.is_base_level { "*" } else { "" },
                l.tables,
                l.size,
                l.stale_data_size,
                l.target_size,
                l.score
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Watches `db.tables()` from a thread and names each change it sees by the
/// levels tables left and arrived in (`L0→L1`, `L3→L3` for an in-place
/// rewrite at the last level, `L0→L0`, `flush`), so the tests can report
/// which kinds of compaction ran. Two changes between polls show as one
/// (`mixed`) when their destinations differ.
struct Observer {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<BTreeMap<String, u64>>>,
}

impl Observer {
    fn start(db: &Db) -> Observer {
        let stop = Arc::new(AtomicBool::new(false));
        let (db, flag) = (db.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut kinds = BTreeMap::<String, u64>::new();
            let snapshot = |db: &Db| -> BTreeMap<u64, usize> { db.tables().iter().map(|t| (t.id, t.level)).collect() };
            let mut prev = snapshot(&db);
            while !flag.load(Ordering::Acquire) && !db.is_closed() {
                std::thread::sleep(Duration::from_micros(500));
                let cur = snapshot(&db);
                if cur == prev {
                    continue;
                }
                let removed: BTreeSet<usize> =
                    prev.iter().filter(|(id, _)| !cur.contains_key(id)).map(|(_, &l)| l).collect();
                let added: BTreeSet<usize> =
                    cur.iter().filter(|(id, _)| !prev.contains_key(id)).map(|(_, &l)| l).collect();
                let kind = match (removed.len(), added.len()) {
                    (0, 1) if added.contains(&0) => "flush".to_string(),
                    (0, 0) => continue,
                    (_, 0) => format!("L{}→(all dropped)", removed.iter().next().copied().unwrap_or(0)),
                    (_, 1) => {
                        let to = *added.iter().next().unwrap_or(&0);
                        let from = removed.iter().copied().find(|&l| l != to).unwrap_or(to);
                        format!("L{from}→L{to}")
                    }
                    _ => "mixed".to_string(),
                };
                *kinds.entry(kind).or_insert(0) += 1;
                prev = cur;
            }
            kinds
        });
        Observer { stop, handle: Some(handle) }
    }

    fn finish(mut self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Release);
        self.handle.take().map(|h| h.join().expect("observer")).unwrap_or_default()
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

// ---------------------------------------------------------------------------
// 1. The model run.

const MODEL_KEYS: u64 = 1500;

fn model_key(i: u64) -> Vec<u8> {
    format!("key/{i:05}").into_bytes()
}

fn model_value(rng: &mut Rng, seq: u64) -> Vec<u8> {
    let len = 8 + rng.below(190) as usize;
    let mut v = format!("{seq}:").into_bytes();
    v.extend(rng.bytes(len));
    v
}

/// What the model run saw happen, for the coverage report.
#[derive(Debug, Default)]
struct ModelCoverage {
    batches: u64,
    txns: u64,
    reopens: u64,
    snapshots_checked: u64,
    /// The deepest level any table reached.
    max_deepest: usize,
    compactions: u64,
    /// Changes of the tree by kind (see [`Observer`]).
    kinds: BTreeMap<String, u64>,
}

impl ModelCoverage {
    fn absorb(&mut self, db: &Db, obs: Observer) {
        self.compactions += db.stats().compactions;
        for (k, n) in obs.finish() {
            *self.kinds.entry(k).or_insert(0) += n;
        }
    }
}

/// A read snapshot held across later commits, with what it must keep seeing.
struct Held {
    txn: brock::Txn,
    model: Model,
    until_batch: u64,
}

fn check_held(h: Held, ctx: &str) {
    let Held { mut txn, model, .. } = h;
    let mut got = Model::new();
    for item in txn.iter(IterOptions::default().prefix(b"key/")).expect("iter") {
        let item = item.expect("snapshot scan");
        got.insert(item.key().to_vec(), item.value_ref().to_vec());
    }
    assert!(got == model, "{ctx}: a held snapshot's scan changed: {}", diff(&got, &model));
    for (k, v) in model.iter().take(40) {
        let item = txn.get(k).expect("snapshot get");
        assert_eq!(item.as_ref().map(Item::value_ref), Some(&v[..]), "{ctx}: snapshot get {}", show(k));
    }
}

/// One random transaction over the model's keys; returns its writes
/// (`None` = delete, else value and `expires_at`).
type Writes = Vec<(Vec<u8>, Option<(Vec<u8>, u64)>)>;

fn random_txn(rng: &mut Rng, seq: &mut u64) -> Writes {
    let mut writes: Writes = Vec::new();
    if rng.chance(2) {
        // A range delete: up to 20 consecutive keys.
        let start = rng.below(MODEL_KEYS);
        for i in start..(start + 1 + rng.below(20)).min(MODEL_KEYS) {
            writes.push((model_key(i), None));
        }
        return writes;
    }
    for _ in 0..1 + rng.below(6) {
        let k = model_key(rng.below(MODEL_KEYS));
        *seq += 1;
        let w = match rng.below(100) {
            0..70 => Some((model_value(rng, *seq), 0)),
            70..90 => None,
            // Already expired: hides the key like a delete.
            90..95 => Some((model_value(rng, *seq), 1)),
            _ => Some((model_value(rng, *seq), now_secs() + 86_400)),
        };
        writes.push((k, w));
    }
    writes
}

fn commit_writes(db: &Db, writes: &Writes) -> brock::Result<()> {
    db.update(|t| {
        for (k, w) in writes {
            match w {
                Some((v, exp)) => t.set_entry(Entry::new(k.clone(), v.clone()).with_expires_at(*exp))?,
                None => t.delete(k.clone())?,
            }
        }
        Ok(())
    })
}

fn apply_writes(model: &mut Model, writes: Writes) {
    // Within a transaction the last write of a key wins.
    for (k, w) in writes {
        match w {
            Some((v, exp)) if exp == 0 || exp > now_secs() => {
                model.insert(k, v);
            }
            _ => {
                model.remove(&k);
            }
        }
    }
}

fn run_model(seed: u64, txns_per_round: usize) -> ModelCoverage {
    let _guard = SeedGuard { name: "compaction model", seed };
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = tiny(dir.path());
    let mut rng = Rng(seed);
    let mut model = Model::new();
    let mut cov = ModelCoverage::default();
    let mut seq = 0u64;
    let rounds = 6;
    let mut db = Db::open(opts.clone()).expect("open");
    let mut obs = Observer::start(&db);
    let mut held: Vec<Held> = Vec::new();
    for round in 0..=rounds {
        let last_round = round == rounds;
        let mut done = 0;
        while done < txns_per_round {
            // One batch: up to 40 transactions, then a check.
            let n = (1 + rng.below(40) as usize).min(txns_per_round - done);
            for _ in 0..n {
                let writes = random_txn(&mut rng, &mut seq);
                commit_writes(&db, &writes).unwrap_or_else(|e| panic!("seed {seed}: commit: {e}"));
                apply_writes(&mut model, writes);
                cov.txns += 1;
            }
            done += n;
            cov.batches += 1;
            let ctx = format!("seed {seed}, round {round}, batch {}", cov.batches);
            assert_model(&db, &model, b"key/", &ctx);
            for _ in 0..20 {
                let k = model_key(rng.below(MODEL_KEYS));
                assert_eq!(get(&db, &k), model.get(&k).cloned(), "{ctx}: get {}", show(&k));
            }
            // Snapshots held across later batches (they also hold back
            // garbage collection, so tombstones stay behind as stale data).
            while let Some(i) = held.iter().position(|h| h.until_batch <= cov.batches) {
                check_held(held.swap_remove(i), &format!("{ctx}, held snapshot"));
                cov.snapshots_checked += 1;
            }
            if held.len() < 2 && rng.chance(10) {
                held.push(Held { txn: db.begin_read(), model: model.clone(), until_batch: cov.batches + 1 + rng.below(15) });
            }
            if rng.chance(5) {
                db.wait_for_flushes().expect("wait_for_flushes");
            }
            cov.max_deepest = cov.max_deepest.max(deepest_level(&db));
        }
        for h in held.drain(..) {
            check_held(h, &format!("seed {seed}, end of round {round}"));
            cov.snapshots_checked += 1;
        }
        if last_round {
            // Delete two thirds of the keys: tombstone-heavy tables for the
            // stale path.
            let keys: Vec<Vec<u8>> = (0..MODEL_KEYS * 2 / 3).map(model_key).collect();
            for chunk in keys.chunks(20) {
                let writes: Writes = chunk.iter().map(|k| (k.clone(), None)).collect();
                commit_writes(&db, &writes).expect("mass delete");
                apply_writes(&mut model, writes);
            }
            assert_model(&db, &model, b"key/", &format!("seed {seed}, after the mass delete"));
            break;
        }
        eprintln!("  round {round}: {} compactions; {}", db.stats().compactions, level_summary(&db));
        db.close().unwrap_or_else(|e| panic!("seed {seed}: close: {e}"));
        cov.absorb(&db, obs);
        assert_tables_match_manifest(&os(), dir.path(), &format!("seed {seed}, round {round}, after close"));
        drop(db);
        db = Db::open(opts.clone()).unwrap_or_else(|e| panic!("seed {seed}: reopen: {e}"));
        obs = Observer::start(&db);
        cov.reopens += 1;
        assert_model(&db, &model, b"key/", &format!("seed {seed}, after reopen {round}"));
        for k in model.keys().take(50) {
            assert_eq!(get(&db, k).as_ref(), model.get(k), "after reopen {round}: get {}", show(k));
        }
    }
    // Let the compactors drain the tombstones, checking as they go.
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut last = db.stats().compactions;
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_millis(2000) {
        std::thread::sleep(Duration::from_millis(20));
        let c = db.stats().compactions;
        if c != last {
            last = c;
            quiet_since = Instant::now();
            assert_model(&db, &model, b"key/", &format!("seed {seed}, settling"));
        }
    }
    cov.max_deepest = cov.max_deepest.max(deepest_level(&db));
    assert_model(&db, &model, b"key/", &format!("seed {seed}, final"));
    eprintln!("  settled: {}", level_summary(&db));
    db.close().expect("close");
    cov.absorb(&db, obs);
    assert_tables_match_manifest(&os(), dir.path(), &format!("seed {seed}, final close"));
    let db = Db::open(opts).expect("final reopen");
    assert_model(&db, &model, b"key/", &format!("seed {seed}, final reopen"));
    db.close().expect("close");
    eprintln!("compaction model seed {seed}: {cov:?}, {:.1?}", started.elapsed());
    cov
}

#[test]
fn model_with_heavy_overwrites_and_deletes() {
    let per_round = env_usize("BROCK_COMPACTION_OPS", 1500);
    for seed in seeds(&[0xC0_4AC7]) {
        let cov = run_model(seed, per_round);
        assert!(cov.compactions > 0, "seed {seed}: no compaction ran");
        assert!(cov.reopens >= 5);
        assert!(cov.max_deepest >= 2, "seed {seed}: data never reached L2 or below");
    }
}
