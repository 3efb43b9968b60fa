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
//! Ignored tests (`--ignored`) reproduce library bugs these tests found:
//! - `concurrent_compactions_never_commit_overlapping_tables`: a compaction
//!   planned from a stale view commits overlapping tables to the MANIFEST;
//!   the directory then fails to open, or deleted keys come back after a
//!   reopen. Until it is fixed, the tests that reopen after constant
//!   compaction stop early with a `KNOWN BUG` note when they meet it (see
//!   `TOLERATE_OVERLAP_BUG`), and the hand-placed tests flatten with one
//!   worker and retry an L0 compaction the bug broke;
//! - `drop_prefix_of_an_l0_table_must_not_resurrect_a_deleted_key`;
//! - `drop_prefix_never_shows_an_older_version_while_it_runs`.
//!
//! `BROCK_COMPACTION_SEED=<n>` replays one seed of the seeded tests (`random`
//! picks one); a failure prints its seed. `BROCK_COMPACTION_OPS=<n>` sets the
//! transactions per round of the model run, `BROCK_COMPACTION_READERS_MS` the
//! length of the readers test.

mod common;

use common::Rng;

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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("BROCK_COMPACTION_SEED") {
        Ok(s) if s == "random" => {
            vec![
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
            ]
        }
        Ok(s) => vec![
            s.parse()
                .expect("BROCK_COMPACTION_SEED must be a number or `random`"),
        ],
        Err(_) => defaults.to_vec(),
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |s| {
        s.parse().unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

/// Prints the seed when the test fails.
struct SeedGuard {
    name: &'static str,
    seed: u64,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed with seed {}: replay with BROCK_COMPACTION_SEED={}",
                self.name, self.seed, self.seed
            );
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

/// A known bug (see `concurrent_compactions_never_commit_overlapping_tables`):
/// two compactors can commit overlapping tables to the MANIFEST, after which
/// the directory no longer opens. While it stands, the tests that reopen
/// after constant compaction stop at that point with a loud note instead of
/// failing; set this to `false` once it is fixed.
const TOLERATE_OVERLAP_BUG: bool = false;

fn is_overlap_bug(e: &Error) -> bool {
    matches!(e, Error::Corruption { kind: brock::CorruptionKind::Inconsistent { detail }, .. } if detail.contains("overlap at level"))
}

/// Flattens with `workers`; false (and a note) when the known overlap bug
/// stopped it.
fn flatten_or_known_bug(db: &Db, workers: usize, ctx: &str) -> bool {
    match db.flatten(workers) {
        Ok(()) => true,
        Err(e) if TOLERATE_OVERLAP_BUG && is_overlap_bug(&e) => {
            eprintln!(
                "KNOWN BUG ({ctx}): flatten({workers}) failed with {e}; see concurrent_compactions_never_commit_overlapping_tables. Stopping this test here."
            );
            false
        }
        Err(e) => panic!("{ctx}: flatten({workers}): {e}"),
    }
}

/// After `closed` was closed, opens the database again; `None` (and a note)
/// when the known overlap bug struck: the MANIFEST names other tables than
/// the closed database's tree (a reopen would fail on the overlap or, once
/// the live tables the stale ones overlapped are gone, bring old data back),
/// or the directory does not open.
fn reopen_or_known_bug(closed: &Db, opts: &Options, ctx: &str) -> Option<Db> {
    let live: BTreeMap<u64, usize> = closed.tables().iter().map(|t| (t.id, t.level)).collect();
    let named = manifest_tables(&os(), &opts.dir);
    if TOLERATE_OVERLAP_BUG && live != named {
        let stale: Vec<_> = named.iter().filter(|(id, l)| live.get(id) != Some(l)).collect();
        eprintln!(
            "KNOWN BUG ({ctx}): the MANIFEST names tables (id, level) {stale:?} the live tree did not have; see concurrent_compactions_never_commit_overlapping_tables. Stopping this test here."
        );
        return None;
    }
    match Db::open(opts.clone()) {
        Ok(db) => Some(db),
        Err(e) if TOLERATE_OVERLAP_BUG && is_overlap_bug(&e) => {
            eprintln!(
                "KNOWN BUG ({ctx}): the MANIFEST names overlapping tables ({e}); see concurrent_compactions_never_commit_overlapping_tables. Stopping this test here."
            );
            None
        }
        Err(e) => panic!("{ctx}: reopen: {e}"),
    }
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
    db.view(|t| t.get(key))
        .expect("get")
        .map(|i| i.value_ref().to_vec())
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
    assert!(
        got == *model,
        "{ctx}: the scan differs from the model: {}",
        diff(&got, model)
    );
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
            let snapshot =
                |db: &Db| -> BTreeMap<u64, usize> { db.tables().iter().map(|t| (t.id, t.level)).collect() };
            let mut prev = snapshot(&db);
            while !flag.load(Ordering::Acquire) && !db.is_closed() {
                std::thread::sleep(Duration::from_micros(500));
                let cur = snapshot(&db);
                if cur == prev {
                    continue;
                }
                let removed: BTreeSet<usize> = prev
                    .iter()
                    .filter(|(id, _)| !cur.contains_key(id))
                    .map(|(_, &l)| l)
                    .collect();
                let added: BTreeSet<usize> = cur
                    .iter()
                    .filter(|(id, _)| !prev.contains_key(id))
                    .map(|(_, &l)| l)
                    .collect();
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
        Observer {
            stop,
            handle: Some(handle),
        }
    }

    fn finish(mut self) -> BTreeMap<String, u64> {
        self.stop.store(true, Ordering::Release);
        self.handle
            .take()
            .map(|h| h.join().expect("observer"))
            .unwrap_or_default()
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
    /// Levels holding tables at the end (`db.levels()`).
    final_levels: Vec<usize>,
    compactions: u64,
    /// Changes of the tree by kind (see [`Observer`]).
    kinds: BTreeMap<String, u64>,
    /// The run stopped early at the known overlap bug.
    known_bug: bool,
}

impl ModelCoverage {
    fn absorb(&mut self, db: &Db, obs: Observer) {
        let stats = db.stats();
        self.compactions += stats.compactions;
        for (k, n) in obs.finish() {
            *self.kinds.entry(k).or_insert(0) += n;
        }
        // The observer polls and can miss a compaction on a loaded machine;
        // the engine's own counts of downward compactions are exact.
        for (from, &n) in stats.compactions_down.iter().enumerate() {
            let seen = self.kinds.keys().any(|k| k.starts_with(&format!("L{from}→L")));
            if n > 0 && !seen {
                let to = if from == 0 {
                    "L(base)".to_string()
                } else {
                    format!("L{}", from + 1)
                };
                self.kinds.insert(format!("L{from}→{to}"), n);
            }
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
    assert!(
        got == model,
        "{ctx}: a held snapshot's scan changed: {}",
        diff(&got, &model)
    );
    for (k, v) in model.iter().take(40) {
        let item = txn.get(k).expect("snapshot get");
        assert_eq!(
            item.as_ref().map(Item::value_ref),
            Some(&v[..]),
            "{ctx}: snapshot get {}",
            show(k)
        );
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
    let _guard = SeedGuard {
        name: "compaction model",
        seed,
    };
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
                held.push(Held {
                    txn: db.begin_read(),
                    model: model.clone(),
                    until_batch: cov.batches + 1 + rng.below(15),
                });
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
            assert_model(
                &db,
                &model,
                b"key/",
                &format!("seed {seed}, after the mass delete"),
            );
            break;
        }
        eprintln!(
            "  round {round}: {} compactions; {}",
            db.stats().compactions,
            level_summary(&db)
        );
        db.close().unwrap_or_else(|e| panic!("seed {seed}: close: {e}"));
        cov.absorb(&db, obs);
        assert_tables_match_manifest(
            &os(),
            dir.path(),
            &format!("seed {seed}, round {round}, after close"),
        );
        let Some(reopened) = reopen_or_known_bug(
            &db,
            &opts,
            &format!("compaction model seed {seed}, round {round}"),
        ) else {
            cov.known_bug = true;
            return cov;
        };
        db = reopened;
        obs = Observer::start(&db);
        cov.reopens += 1;
        assert_model(
            &db,
            &model,
            b"key/",
            &format!("seed {seed}, after reopen {round}"),
        );
        for k in model.keys().take(50) {
            assert_eq!(
                get(&db, k).as_ref(),
                model.get(k),
                "after reopen {round}: get {}",
                show(k)
            );
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
    cov.final_levels = db
        .levels()
        .iter()
        .filter(|l| l.tables > 0)
        .map(|l| l.level)
        .collect();
    assert_model(&db, &model, b"key/", &format!("seed {seed}, final"));
    eprintln!("  settled: {}", level_summary(&db));
    db.close().expect("close");
    cov.absorb(&db, obs);
    assert_tables_match_manifest(&os(), dir.path(), &format!("seed {seed}, final close"));
    let Some(db) = reopen_or_known_bug(&db, &opts, &format!("compaction model seed {seed}, final")) else {
        cov.known_bug = true;
        return cov;
    };
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
        if cov.known_bug {
            continue;
        }
        assert!(cov.reopens >= 5);
        assert!(
            cov.max_deepest >= 2,
            "seed {seed}: data never reached L2 or below"
        );
        assert!(
            cov.final_levels.iter().any(|&l| l >= 2),
            "seed {seed}: db.levels() shows no data in L2 or below at the end: {:?}",
            cov.final_levels
        );
        // Every level from the base down to the last (L3) took part, not
        // just L0 → last. The base level is dynamic: which one L0 first
        // feeds depends on how much data the background compactions found,
        // so on a loaded machine it can be L2 instead of L1.
        let base = (1..3).find(|b| cov.kinds.contains_key(&format!("L0→L{b}")));
        assert!(
            base.is_some_and(|b| (b..3).all(|k| cov.kinds.contains_key(&format!("L{k}→L{}", k + 1)))),
            "seed {seed}: L0 → base and every level from the base to L3 should have been seen: {:?}",
            cov.kinds
        );
    }
}

/// One stored version as an all-versions scan shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Ver {
    key: Vec<u8>,
    version: u64,
    value: Vec<u8>,
    dead: bool,
}

fn all_versions(txn: &mut brock::Txn, prefix: &[u8]) -> Vec<Ver> {
    txn.iter(IterOptions::default().prefix(prefix).all_versions(true))
        .expect("iter")
        .map(|item| {
            let item = item.expect("all-versions scan");
            Ver {
                key: item.key().to_vec(),
                version: item.version(),
                value: item.value_ref().to_vec(),
                dead: item.is_deleted_or_expired(),
            }
        })
        .collect()
}

/// The versions a snapshot must keep seeing while it is held, whatever
/// compaction does below it (Badger's rules with `keep` versions): of the
/// versions at or below its read timestamp, the newest `keep`, stopping
/// before the first tombstone or expired one.
fn required(listing: &[Ver], keep: usize) -> BTreeSet<Ver> {
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < listing.len() {
        let key = &listing[i].key;
        let mut n = 0;
        while i < listing.len() && listing[i].key == *key {
            let v = &listing[i];
            if n < keep && !v.dead {
                out.insert(v.clone());
                n += 1;
            } else {
                n = keep;
            }
            i += 1;
        }
    }
    out
}

struct Snapshot {
    name: String,
    txn: brock::Txn,
    latest: Model,
    listing: Vec<Ver>,
}

impl Snapshot {
    fn take(db: &Db, name: &str) -> Snapshot {
        let mut txn = db.begin_read();
        let latest = {
            let mut m = Model::new();
            for item in txn.iter(IterOptions::default().prefix(b"v/")).expect("iter") {
                let item = item.expect("scan");
                m.insert(item.key().to_vec(), item.value_ref().to_vec());
            }
            m
        };
        let listing = all_versions(&mut txn, b"v/");
        Snapshot {
            name: name.to_string(),
            txn,
            latest,
            listing,
        }
    }

    /// Checks the snapshot; returns how many of its versions compaction has
    /// dropped (legitimately) so far.
    fn check(&mut self, keep: usize, ctx: &str) -> usize {
        let ctx = format!("{ctx}, snapshot {} (read_ts {})", self.name, self.txn.read_ts());
        let mut latest = Model::new();
        for item in self.txn.iter(IterOptions::default().prefix(b"v/")).expect("iter") {
            let item = item.expect("scan");
            latest.insert(item.key().to_vec(), item.value_ref().to_vec());
        }
        assert!(
            latest == self.latest,
            "{ctx}: the snapshot's scan changed: {}",
            diff(&latest, &self.latest)
        );
        for (k, v) in self.latest.iter().step_by(7) {
            let got = self.txn.get(k).expect("get");
            assert_eq!(
                got.as_ref().map(Item::value_ref),
                Some(&v[..]),
                "{ctx}: get {}",
                show(k)
            );
        }
        let now = all_versions(&mut self.txn, b"v/");
        let before: BTreeSet<&Ver> = self.listing.iter().collect();
        if let Some(extra) = now.iter().find(|v| !before.contains(v)) {
            panic!("{ctx}: an all-versions scan shows {extra:?}, which the snapshot did not have");
        }
        let have: BTreeSet<&Ver> = now.iter().collect();
        let lost: Vec<Ver> = required(&self.listing, keep)
            .into_iter()
            .filter(|v| !have.contains(v))
            .collect();
        assert!(
            lost.is_empty(),
            "{ctx}: {} versions the snapshot needs are gone, e.g. {:?} (versions of that key now: {:?})",
            lost.len(),
            lost[0],
            now.iter()
                .filter(|v| v.key == lost[0].key)
                .map(|v| (v.version, v.dead))
                .collect::<Vec<_>>()
        );
        self.listing.len() - now.len()
    }
}

#[test]
fn held_snapshots_keep_the_versions_they_need() {
    const KEEP: usize = 3;
    const KEYS: u64 = 200;
    for seed in seeds(&[0x5EED_0003]) {
        let _guard = SeedGuard {
            name: "held snapshots",
            seed,
        };
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(tiny(dir.path()).with_num_versions_to_keep(KEEP as u32)).expect("open");
        let obs = Observer::start(&db);
        let mut rng = Rng(seed);
        let mut seq = 0u64;
        let mut round_writes = |db: &Db, rng: &mut Rng| {
            let keys: Vec<u64> = (0..KEYS).collect();
            for chunk in keys.chunks(8) {
                db.update(|t| {
                    for &i in chunk {
                        let k = format!("v/{i:04}").into_bytes();
                        seq += 1;
                        match rng.below(100) {
                            0..8 => t.delete(k)?,
                            8..12 => {
                                t.set_entry(Entry::new(k, format!("{seq}").into_bytes()).with_expires_at(1))?
                            }
                            12..20 => {} // left alone this round
                            _ => {
                                let mut v = format!("{seq}:").into_bytes();
                                let len = 40 + rng.below(40) as usize;
                                v.extend(rng.bytes(len));
                                t.set(k, v)?;
                            }
                        }
                    }
                    Ok(())
                })
                .expect("commit");
            }
        };
        let mut held: Vec<Snapshot> = Vec::new();
        let mut dropped = BTreeMap::<String, usize>::new();
        let check_all = |held: &mut Vec<Snapshot>, ctx: &str, dropped: &mut BTreeMap<String, usize>| {
            for s in held.iter_mut() {
                let n = s.check(KEEP, ctx);
                let e = dropped.entry(s.name.clone()).or_insert(0);
                *e = (*e).max(n);
            }
        };
        for round in 0..32 {
            round_writes(&db, &mut rng);
            match round {
                4 | 12 | 20 => held.push(Snapshot::take(&db, &format!("taken after round {round}"))),
                // Releasing the oldest snapshot lets compaction collect what only it needed.
                16 | 26 => {
                    let mut s = held.remove(0);
                    s.check(KEEP, &format!("seed {seed}, round {round}, before release"));
                }
                _ => {}
            }
            if round % 4 == 3 {
                check_all(&mut held, &format!("seed {seed}, round {round}"), &mut dropped);
            }
        }
        // Let compaction settle with the last snapshot still held.
        db.wait_for_flushes().expect("flushes");
        let mut quiet = Instant::now();
        let mut last = db.stats().compactions;
        let deadline = Instant::now() + Duration::from_secs(4);
        while quiet.elapsed() < Duration::from_millis(400) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(25));
            if db.stats().compactions != last {
                last = db.stats().compactions;
                quiet = Instant::now();
            }
        }
        check_all(&mut held, &format!("seed {seed}, settled"), &mut dropped);
        // Flattening with the snapshot held must not take what it needs either.
        if !flatten_or_known_bug(&db, 2, "held snapshots") {
            return;
        }
        check_all(&mut held, &format!("seed {seed}, flattened"), &mut dropped);
        let compactions = db.stats().compactions;
        drop(held);
        db.close().expect("close");
        let kinds = obs.finish();
        eprintln!(
            "held snapshots seed {seed}: {compactions} compactions {kinds:?}; versions dropped under each snapshot: {dropped:?}; {:.1?}",
            started.elapsed()
        );
        assert!(compactions > 0);
        assert!(
            dropped.values().any(|&n| n > 0),
            "compaction never dropped a version below a snapshot: the test tested nothing"
        );
    }
}

/// Badger drops stale data only when a level is over its target; Brock also
/// compacts a table whose stale share is high, in place at the last level.
/// Tombstones kept because a snapshot needed them become stale when it is
/// released: the last level shrinks with no level over target.
#[test]
fn stale_tables_are_rewritten_without_a_score() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(tiny(dir.path())).expect("open");
    let obs = Observer::start(&db);
    let key = |i: u64| format!("s/{i:05}").into_bytes();
    let mut model = Model::new();
    for chunk in (0..4000u64).collect::<Vec<_>>().chunks(20) {
        db.update(|t| {
            for &i in chunk {
                t.set(key(i), format!("{i}").into_bytes())?;
            }
            Ok(())
        })
        .expect("commit");
        for &i in chunk {
            model.insert(key(i), format!("{i}").into_bytes());
        }
    }
    db.wait_for_flushes().expect("flushes");
    if !flatten_or_known_bug(&db, 2, "stale path") {
        return;
    }
    let snapshot = db.begin_read();
    for chunk in (0..3000u64).collect::<Vec<_>>().chunks(20) {
        db.update(|t| {
            for &i in chunk {
                t.delete(key(i))?;
            }
            Ok(())
        })
        .expect("delete");
        for &i in chunk {
            model.remove(&key(i));
        }
    }
    // Force the memtable out (the tombstones must reach the tables) and
    // compact everything down with the snapshot still held: the tombstones
    // are kept, as stale data.
    let filler = |db: &Db, tag: &str| {
        for i in 0..200u64 {
            db.update(|t| t.set(format!("t/{tag}/{i:03}").into_bytes(), vec![b'.'; 100]))
                .expect("filler");
        }
        db.wait_for_flushes().expect("flushes");
    };
    filler(&db, "a");
    if !flatten_or_known_bug(&db, 2, "stale path") {
        return;
    }
    let stale_before: u64 = db.levels().iter().map(|l| l.stale_data_size).sum();
    let last = db.levels().last().map(|l| l.size).unwrap_or(0);
    eprintln!("with the snapshot held: {}", level_summary(&db));
    assert!(stale_before > 0, "no stale data was kept for the snapshot");
    drop(snapshot);
    let compactions = db.stats().compactions;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let stale: u64 = db.levels().iter().map(|l| l.stale_data_size).sum();
        if stale * 4 < stale_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stale_after: u64 = db.levels().iter().map(|l| l.stale_data_size).sum();
    let last_after = db.levels().last().map(|l| l.size).unwrap_or(0);
    eprintln!(
        "after the release: {} ({} compactions, stale {stale_before} → {stale_after}, last level {last} → {last_after})",
        level_summary(&db),
        db.stats().compactions - compactions
    );
    assert!(
        stale_after * 4 < stale_before,
        "the stale tables were not rewritten"
    );
    assert!(last_after < last, "the last level did not shrink");
    assert_model(&db, &model, b"s/", "after the stale rewrites");
    db.close().expect("close");
    let kinds = obs.finish();
    eprintln!("stale path: {kinds:?}");
    // An in-place rewrite at the last level either leaves a smaller table
    // (`L3→L3`) or nothing at all (every entry of the table dropped).
    assert!(
        kinds.keys().any(|k| k == "L3→L3" || k == "L3→(all dropped)"),
        "no in-place rewrite at the last level was seen: {kinds:?}"
    );
    let Some(db) = reopen_or_known_bug(&db, &tiny(dir.path()), "stale path") else {
        return;
    };
    assert_model(&db, &model, b"s/", "after reopen");
    db.close().expect("close");
    assert_tables_match_manifest(&os(), dir.path(), "stale path");
}

// ---------------------------------------------------------------------------
// 2. A deleted key never comes back.

const DIR: &str = "/db";
const TARGET: &[u8] = b"m/target";

/// Options for hand-placed tables: no background compaction and no L0
/// stall (nothing would drain L0).
fn placed(max_levels: u32) -> Options {
    tiny(DIR)
        .with_num_compactors(0)
        .with_num_level_zero_tables_stall(1000)
        .with_max_levels(max_levels)
}

/// A database on a `MemVfs` whose tables the test places level by level.
struct Bench {
    fs: MemVfs,
    opts: Options,
    db: Option<Db>,
    /// Every key but the target, with its value.
    model: Model,
}

impl Bench {
    fn open(fs: MemVfs, opts: Options, model: Model) -> Bench {
        let db = Db::open_with_vfs(opts.clone(), Arc::new(fs.clone())).expect("open");
        Bench {
            fs,
            opts,
            db: Some(db),
            model,
        }
    }

    fn db(&self) -> &Db {
        self.db.as_ref().expect("open")
    }

    fn base_level(&self) -> usize {
        self.db()
            .levels()
            .iter()
            .find(|l| l.is_base_level)
            .map_or(0, |l| l.level)
    }

    fn close(&mut self) {
        if let Some(db) = self.db.take() {
            db.close().expect("close");
        }
    }

    fn reopen(&mut self) {
        self.close();
        self.db = Some(Db::open_with_vfs(self.opts.clone(), Arc::new(self.fs.clone())).expect("reopen"));
    }

    /// The memtable becomes one L0 table (closing flushes it).
    fn flush_to_l0(&mut self) {
        self.reopen();
    }

    /// The memtable and L0 move into the base level, and nothing else moves:
    /// a session whose compactors compact L0 as soon as it holds one table
    /// (every other level stays under its target).
    fn compact_l0_to_base(&mut self) {
        self.close();
        let opts = self
            .opts
            .clone()
            .with_num_compactors(2)
            .with_num_level_zero_tables(1)
            .with_num_level_zero_tables_stall(2);
        // The two compactors race into the known overlap bug now and then
        // (see `concurrent_compactions_never_commit_overlapping_tables`):
        // each attempt runs on a copy, and one the bug broke is retried.
        for attempt in 0..10 {
            let fs = self.fs.crash(brock::vfs::CrashMode::ProcessKill);
            let db = Db::open_with_vfs(opts.clone(), Arc::new(fs.clone())).expect("open with compactors");
            let deadline = Instant::now() + Duration::from_secs(10);
            while db.tables().iter().any(|t| t.level == 0) {
                assert!(
                    Instant::now() < deadline,
                    "L0 was not compacted: {}",
                    level_summary(&db)
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            db.close().expect("close");
            match Db::open_with_vfs(self.opts.clone(), Arc::new(fs.clone())) {
                Ok(db) => {
                    self.fs = fs;
                    self.db = Some(db);
                    return;
                }
                Err(e) if TOLERATE_OVERLAP_BUG && is_overlap_bug(&e) => {
                    eprintln!("KNOWN BUG (L0 → base, attempt {attempt}): {e}; retrying on a fresh copy");
                }
                Err(e) => panic!("reopen after L0 → base: {e}"),
            }
        }
        panic!("L0 → base kept hitting the known overlap bug");
    }

    /// Everything into one level. One worker: two race into the known
    /// overlap bug (see `concurrent_compactions_never_commit_overlapping_tables`)
    /// under load; the other tests flatten with two.
    fn flatten(&mut self) {
        self.reopen();
        self.db().flatten(1).expect("flatten");
    }

    fn set(&self, k: &[u8], v: &[u8]) {
        self.db().update(|t| t.set(k.to_vec(), v.to_vec())).expect("set");
    }

    fn kill(&self, k: &[u8], how: Kill) {
        self.db()
            .update(|t| match how {
                Kill::Delete => t.delete(k.to_vec()),
                Kill::Expire => t.set_entry(Entry::new(k.to_vec(), b"expired".to_vec()).with_expires_at(1)),
            })
            .expect("kill");
    }

    /// Where the versions of `key` are: (level, version, dead) per version in a table.
    fn where_is(&self, key: &[u8]) -> Vec<(usize, u64, bool)> {
        use brock::iterator::KvIterator;
        let view = DirView::open_with(&self.fs, brock::inspect::ViewOptions::new(DIR)).expect("DirView");
        let mut out = Vec::new();
        for (level, tables) in view.levels().iter().enumerate() {
            for t in tables {
                let mut it = brock::table::TableIterator::new(t.clone());
                it.seek(&brock::format::key_with_version(key, u64::MAX))
                    .expect("seek");
                while it.valid() && brock::format::user_key(it.key()) == key {
                    let v = it.value();
                    let dead = brock::format::meta::is_deleted_or_expired(v.meta, v.expires_at, now_secs());
                    out.push((level, brock::format::version(it.key()), dead));
                    it.next().expect("next");
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The target is gone for every reader, and everything else is intact.
    fn assert_gone(&self, ctx: &str) {
        let db = self.db();
        assert_eq!(get(db, TARGET), None, "{ctx}: get returned the deleted key");
        let mut want = self.model.clone();
        want.remove(TARGET);
        assert_model(db, &want, b"", ctx);
    }

    /// Also no version of it is stored, not even a tombstone.
    fn assert_no_versions(&self, ctx: &str) {
        let versions = all_versions(&mut self.db().begin_read(), TARGET);
        assert!(
            versions.is_empty(),
            "{ctx}: an all-versions scan still shows {versions:?}"
        );
        let stored = self.where_is(TARGET);
        assert!(
            stored.is_empty(),
            "{ctx}: tables still hold versions (level, version, dead) {stored:?}"
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Mem,
    L0,
    /// The base level above the last one (L2).
    Mid,
    Last,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    Delete,
    /// A newer version that is already expired.
    Expire,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    value: Place,
    kill_at: Place,
    /// Value and kill in the same memtable (so the same L0 table).
    same_table: bool,
    kill: Kill,
    /// Filler keys on both sides of the target (a lower level overlaps it,
    /// so tombstones must be kept) or only below it.
    spanning: bool,
    /// An even older version of the target sits in L3 too.
    older_below: bool,
}

/// A closed database with filler in L3, which makes L2 the base level (L1
/// becomes the base only once L2 is over its target, which a hand-placed
/// test cannot arrange without compactions it does not control; the model
/// test covers L1).
fn filler_image(spanning: bool) -> (MemVfs, Model) {
    let fs = MemVfs::new();
    let mut model = Model::new();
    let mut rng = Rng(0xF111);
    let n = 600;
    let mut b = Bench::open(fs.clone(), placed(4), Model::new());
    for chunk in (0..n).collect::<Vec<u64>>().chunks(10) {
        let writes: Vec<(Vec<u8>, Vec<u8>)> = chunk
            .iter()
            .map(|&i| {
                let side = if spanning && i % 2 == 1 { "z" } else { "a" };
                (format!("{side}/{i:05}").into_bytes(), rng.bytes(100))
            })
            .collect();
        b.db()
            .update(|t| writes.iter().try_for_each(|(k, v)| t.set(k.clone(), v.clone())))
            .expect("filler");
        model.extend(writes);
    }
    b.flatten();
    assert!(
        b.db().tables().iter().all(|t| t.level == 3),
        "filler not all in L3: {}",
        level_summary(b.db())
    );
    assert_eq!(b.base_level(), 2, "{}", level_summary(b.db()));
    b.close();
    (fs, model)
}

fn place(b: &mut Bench, at: Place) {
    match at {
        Place::Mem => {}
        Place::L0 => b.flush_to_l0(),
        Place::Mid => b.compact_l0_to_base(),
        Place::Last => b.flatten(),
    }
}

fn run_case(c: Case, image: &MemVfs, model: &Model) -> String {
    let ctx = format!("{c:?}");
    let mut b = Bench::open(
        image.crash(brock::vfs::CrashMode::ProcessKill),
        placed(4),
        model.clone(),
    );
    let level_of = |p: Place| match p {
        Place::Mem => None,
        Place::L0 => Some(0),
        Place::Mid => Some(2),
        Place::Last => Some(3),
    };
    if c.older_below {
        b.set(TARGET, b"older");
        b.flatten();
    }
    b.set(TARGET, b"value");
    let v_version = b.db().max_version();
    if !c.same_table {
        place(&mut b, c.value);
    }
    b.kill(TARGET, c.kill);
    let k_version = b.db().max_version();
    place(&mut b, c.kill_at);
    // Where things are now: each version either where it was put, or gone
    // because a compaction met the kill above it.
    let stored = b.where_is(TARGET);
    for &(level, version, _) in &stored {
        let want = if version == k_version {
            level_of(c.kill_at)
        } else if version == v_version {
            level_of(c.value)
        } else {
            Some(3)
        };
        assert_eq!(
            Some(level),
            want,
            "{ctx}: version {version} is in L{level}; stored (level, version, dead): {stored:?}"
        );
    }
    let kill_level = stored.iter().find(|s| s.1 == k_version).map(|s| s.0);
    for &(level, version, _) in &stored {
        if let Some(kl) = kill_level {
            assert!(
                level >= kl,
                "{ctx}: version {version} in L{level} sits above its kill in L{kl}: {stored:?}"
            );
        }
    }
    b.assert_gone(&format!("{ctx}, placed {stored:?}"));
    b.reopen();
    b.assert_gone(&format!("{ctx}, reopened"));
    b.flatten();
    let levels: BTreeSet<usize> = b.db().tables().iter().map(|t| t.level).collect();
    assert_eq!(levels.len(), 1, "{ctx}: flatten left tables in levels {levels:?}");
    b.assert_gone(&format!("{ctx}, flattened"));
    b.assert_no_versions(&format!("{ctx}, flattened"));
    b.reopen();
    b.assert_gone(&format!("{ctx}, flattened and reopened"));
    b.assert_no_versions(&format!("{ctx}, flattened and reopened"));
    b.close();
    assert_tables_match_manifest(&b.fs, Path::new(DIR), &ctx);
    format!("{stored:?}")
}

#[test]
fn a_deleted_key_never_comes_back() {
    let started = Instant::now();
    use Place::*;
    let pairs: Vec<(Place, Place, bool)> = vec![
        (Mem, Mem, true),
        (L0, Mem, false),
        (Mid, Mem, false),
        (Last, Mem, false),
        (L0, L0, true),
        (L0, L0, false),
        (Mid, L0, false),
        (Last, L0, false),
        (Mid, Mid, false),
        (Mid, Mid, true),
        (Last, Mid, false),
        (Last, Last, false),
    ];
    let mut cases = Vec::new();
    for &(value, kill_at, same_table) in &pairs {
        for kill in [Kill::Delete, Kill::Expire] {
            for spanning in [false, true] {
                for older_below in [false, true] {
                    cases.push(Case {
                        value,
                        kill_at,
                        same_table,
                        kill,
                        spanning,
                        older_below,
                    });
                }
            }
        }
    }
    let images: Vec<(bool, (MemVfs, Model))> =
        [false, true].into_iter().map(|s| (s, filler_image(s))).collect();
    let image = |c: &Case| &images.iter().find(|(k, _)| *k == c.spanning).expect("image").1;
    let results: Vec<(Case, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .chunks(cases.len().div_ceil(2))
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|c| {
                            let (fs, model) = image(c);
                            (*c, run_case(*c, fs, model))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    for (c, placed) in &results {
        eprintln!(
            "  value {:?} kill {:?} ({:?}{}{}, filler {}): stored (level, version, dead) {placed}",
            c.value,
            c.kill_at,
            c.kill,
            if c.same_table { ", same table" } else { "" },
            if c.older_below {
                ", older version in L3"
            } else {
                ""
            },
            if c.spanning { "around" } else { "below" }
        );
    }
    eprintln!("{} cases in {:.1?}", results.len(), started.elapsed());
}

/// Badger #2143: with data left in an upper level and the level below it
/// emptied, Badger's computed base level is the empty last level, so L0 went
/// there, below the older data, and the tombstone vanished there (nothing
/// below it) while the value above it came back. Brock never routes L0 below
/// a level holding data. The last level is emptied two ways: `drop_prefix` of
/// the filler, and a reopen with more levels.
#[test]
fn regression_2143_tombstone_is_never_routed_below_older_data() {
    for how in ["drop_prefix empties L3", "reopen with max_levels 6"] {
        let (image, model) = filler_image(false);
        let mut b = Bench::open(image, placed(4), model);
        b.set(TARGET, b"value");
        b.compact_l0_to_base();
        assert_eq!(
            b.where_is(TARGET).iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![2],
            "{how}"
        );
        if how.starts_with("drop_prefix") {
            b.db().drop_prefix(&[b"a/"]).expect("drop_prefix");
            b.model.clear();
            assert!(
                b.db().tables().iter().all(|t| t.level == 2),
                "{how}: {}",
                level_summary(b.db())
            );
        } else {
            b.opts = placed(6);
            b.reopen();
        }
        let base = b.base_level();
        eprintln!("{how}: {} (base level L{base})", level_summary(b.db()));
        assert_eq!(base, 2, "{how}: the base level is below L2, which holds data");
        b.kill(TARGET, Kill::Delete);
        b.compact_l0_to_base();
        let stored = b.where_is(TARGET);
        assert!(
            stored.iter().all(|s| s.0 <= 2),
            "{how}: a version went below L2: {stored:?}"
        );
        b.assert_gone(&format!("{how}, stored {stored:?}"));
        b.reopen();
        b.assert_gone(how);
        b.flatten();
        b.assert_gone(&format!("{how}, flattened"));
        b.assert_no_versions(&format!("{how}, flattened"));
        b.close();
        assert_tables_match_manifest(&b.fs, Path::new(DIR), how);
    }
}

/// `drop_prefix` rewrites an L0 table in place under a new, higher id, so
/// L0's id order (which `fill_l0` takes as age order: it moves "the oldest
/// run" of overlapping tables, lowest ids first) no longer matches the age
/// of the data: the rewritten table holds the oldest data but sorts as the
/// newest. An L0 → base compaction can then take a newer tombstone down
/// without the older value, the tombstone vanishes at the last level, and
/// the deleted key comes back.
#[test]
fn drop_prefix_of_an_l0_table_must_not_resurrect_a_deleted_key() {
    let fs = MemVfs::new();
    let mut b = Bench::open(fs, placed(4), Model::new());
    // L0, oldest first: t1 {m/target = old, p/x}, t2 {m/target deleted}, t3 {z/z}.
    b.db()
        .update(|t| {
            t.set(TARGET.to_vec(), b"old".to_vec())?;
            t.set(b"p/x".to_vec(), b"1".to_vec())
        })
        .expect("write");
    b.flush_to_l0();
    b.kill(TARGET, Kill::Delete);
    b.flush_to_l0();
    b.set(b"z/z", b"1");
    b.flush_to_l0();
    b.model.insert(b"z/z".to_vec(), b"1".to_vec());
    // Rewrites t1 without p/x as t4: L0 by id is now t4 (oldest data), t3, t2.
    b.db().drop_prefix(&[b"p/"]).expect("drop_prefix");
    b.assert_gone("after drop_prefix");
    let l0: Vec<(u64, u64)> = b
        .db()
        .tables()
        .iter()
        .filter(|t| t.level == 0)
        .map(|t| (t.id, t.max_version))
        .collect();
    eprintln!("L0 (id, max version) after drop_prefix: {l0:?}");
    // L0 → base (L3: the tree is otherwise empty) takes t2 alone (t3 does
    // not overlap it), and the tombstone is dropped at the last level.
    b.compact_l0_to_base();
    let stored = b.where_is(TARGET);
    b.assert_gone(&format!(
        "after L0 → base, stored (level, version, dead) {stored:?}"
    ));
    b.flatten();
    b.assert_gone("flattened");
}

// ---------------------------------------------------------------------------
// 3. Go Badger's `multilevel` fixture, flattened by Brock.

/// The benchmark generator's key `i`: `k` and 15 zero-padded digits.
fn bench_key(i: u64) -> Vec<u8> {
    format!("k{i:015}").into_bytes()
}

/// The benchmark generator's value of key `i`: successive splitmix64 outputs
/// from state `i ^ 0x9E3779B97F4A7C15`, little-endian, cut to `size`.
fn bench_value(i: u64, size: usize) -> Vec<u8> {
    let mut rng = Rng(i ^ 0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(size + 8);
    while out.len() < size {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(size);
    out
}

fn dump_of(dir: &Path, mode: DumpMode) -> Vec<u8> {
    let view = DirView::open(dir).expect("DirView");
    let mut out = Vec::new();
    write_dump(&view, mode, &mut out).expect("dump");
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    common::hex(&Sha256::digest(bytes))
}

fn expected_sha(name: &str) -> String {
    std::fs::read_to_string(common::fixtures_dir().join(name))
        .expect("expected sha")
        .trim()
        .to_string()
}

#[test]
fn go_multilevel_fixture_flattens_and_dumps_the_same() {
    const N: u64 = 150_000;
    let started = Instant::now();
    let original = common::fixture("multilevel");
    let latest_before = dump_of(&original, DumpMode::Latest);
    let all_before = dump_of(&original, DumpMode::AllVersions);
    let want_latest = expected_sha("multilevel.latest.sha256");
    assert_eq!(sha256_hex(&latest_before), want_latest, "the untouched fixture");
    let copy = common::fixture_copy("multilevel");
    let opts = Options::new(copy.path())
        .with_mem_table_size(1 << 20)
        .with_value_threshold(65536)
        .with_num_compactors(2);
    let db = Db::open(opts.clone()).expect("open the Go-written directory");
    let layout = |db: &Db| -> Vec<(usize, usize)> {
        db.levels()
            .iter()
            .filter(|l| l.tables > 0)
            .map(|l| (l.level, l.tables))
            .collect()
    };
    eprintln!("multilevel as Go left it: (level, tables) {:?}", layout(&db));
    let check_sample = |db: &Db, ctx: &str| {
        let mut rng = Rng(7);
        let sample: Vec<u64> = [0, 1, N / 2, N - 1]
            .into_iter()
            .chain((0..300).map(|_| rng.below(N)))
            .collect();
        for i in sample {
            let got = get(db, &bench_key(i));
            assert_eq!(got, Some(bench_value(i, 100)), "{ctx}: key {i}");
        }
        assert_eq!(get(db, &bench_key(N)), None, "{ctx}: key {N} was never written");
    };
    check_sample(&db, "before flatten");
    if !flatten_or_known_bug(&db, 2, "multilevel") {
        return;
    }
    let after = layout(&db);
    eprintln!(
        "after flatten: (level, tables) {after:?}; {} compactions",
        db.stats().compactions
    );
    assert_eq!(after.len(), 1, "flatten left several levels: {after:?}");
    check_sample(&db, "after flatten");
    // A full scan agrees with the generator too.
    let mut n = 0u64;
    for item in db.begin_read().iter(IterOptions::default()).expect("iter") {
        let item = item.expect("scan");
        assert_eq!(item.key(), &bench_key(n)[..], "scan position {n}");
        if n.is_multiple_of(97) {
            assert_eq!(item.value_ref(), &bench_value(n, 100)[..], "scan value {n}");
        }
        n += 1;
    }
    assert_eq!(n, N);
    db.close().expect("close");
    assert_tables_match_manifest(&os(), copy.path(), "multilevel after flatten");
    let view = DirView::open(copy.path()).expect("DirView");
    let named: BTreeSet<u64> = view.manifest().manifest.tables.keys().copied().collect();
    assert_eq!(view.levels().iter().map(Vec::len).sum::<usize>(), named.len());

    let latest_after = dump_of(copy.path(), DumpMode::Latest);
    assert_eq!(
        sha256_hex(&latest_after),
        want_latest,
        "latest dump after Brock's flatten"
    );
    let all_after = dump_of(copy.path(), DumpMode::AllVersions);
    let same_all = sha256_hex(&all_after) == expected_sha("multilevel.all-versions.sha256");
    // Every version line left is one Go wrote, in the same order, and each
    // key's newest live version is the latest dump's value.
    let mut before_lines = all_before.split(|&b| b == b'\n');
    let mut latest_lines = latest_after
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .peekable();
    let mut last_key: Vec<u8> = Vec::new();
    let mut kept = 0usize;
    for line in all_after.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        assert!(
            before_lines.any(|b| b == line),
            "an all-versions line Go did not write: {}",
            String::from_utf8_lossy(line)
        );
        kept += 1;
        let fields: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
        if fields[0] != &last_key[..] {
            last_key = fields[0].to_vec();
            if fields[4] == b"-" {
                let l = latest_lines.next().expect("a latest line per live key");
                assert_eq!(
                    l,
                    [fields[0], fields[5]].join(&b'\t').as_slice(),
                    "newest version vs latest dump"
                );
            }
        }
    }
    assert!(latest_lines.peek().is_none(), "latest lines without a version");
    let total = all_before
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    eprintln!(
        "multilevel: all-versions dump {} (kept {kept} of {total} lines); {:.1?}",
        if same_all { "unchanged" } else { "shrank" },
        started.elapsed()
    );
    let Some(db) = reopen_or_known_bug(&db, &opts, "multilevel") else {
        return;
    };
    check_sample(&db, "reopened");
    db.close().expect("close");
}

// ---------------------------------------------------------------------------
// 4. Readers during compaction.

#[test]
fn snapshot_readers_see_a_consistent_state_during_compaction() {
    const ACCOUNTS: u64 = 300;
    const START: u64 = 1000;
    let seed = seeds(&[0xACC7])[0];
    let _guard = SeedGuard {
        name: "readers during compaction",
        seed,
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(tiny(dir.path())).expect("open");
    let obs = Observer::start(&db);
    let acct = |i: u64| format!("acct/{i:04}").into_bytes();
    // Balances padded to 120 bytes, so every transfer writes ~270 bytes and
    // the 16 KiB memtables turn over every ~60 transfers.
    let encode = |balance: u64, tag: u64| {
        let mut v = format!("{balance}|{tag}|").into_bytes();
        v.resize(120, b'.');
        v
    };
    let decode = |v: &[u8]| -> u64 {
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.split('|').next())
            .and_then(|s| s.parse().ok())
            .expect("a balance")
    };
    for chunk in (0..ACCOUNTS).collect::<Vec<_>>().chunks(10) {
        db.update(|t| chunk.iter().try_for_each(|&i| t.set(acct(i), encode(START, 0))))
            .expect("init");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let transfers = Arc::new(AtomicU64::new(0));
    let conflicts = Arc::new(AtomicU64::new(0));
    let scans = Arc::new(AtomicU64::new(0));
    let run_for = Duration::from_millis(env_usize("BROCK_COMPACTION_READERS_MS", 3000) as u64);
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (db, stop, transfers, conflicts) =
                (db.clone(), stop.clone(), transfers.clone(), conflicts.clone());
            s.spawn(move || {
                let mut rng = Rng(seed ^ (w + 1));
                let mut tag = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (a, b) = (rng.below(ACCOUNTS), rng.below(ACCOUNTS));
                    if a == b {
                        continue;
                    }
                    let amount = rng.below(50);
                    tag += 1;
                    let r = db.update(|t| {
                        let ba = decode(t.get(&acct(a))?.expect("account").value_ref());
                        let bb = decode(t.get(&acct(b))?.expect("account").value_ref());
                        let m = amount.min(ba);
                        t.set(acct(a), encode(ba - m, tag))?;
                        t.set(acct(b), encode(bb + m, tag))
                    });
                    match r {
                        Ok(()) => transfers.fetch_add(1, Ordering::Relaxed),
                        Err(Error::Conflict) => conflicts.fetch_add(1, Ordering::Relaxed),
                        Err(e) => panic!("transfer: {e}"),
                    };
                }
            });
        }
        for r in 0..2u64 {
            let (db, stop, scans) = (db.clone(), stop.clone(), scans.clone());
            s.spawn(move || {
                let mut rng = Rng(seed ^ (r + 100));
                while !stop.load(Ordering::Relaxed) {
                    let mut txn = db.begin_read();
                    let read_ts = txn.read_ts();
                    let mut seen = BTreeMap::new();
                    let mut it = txn.iter(IterOptions::default().prefix(b"acct/")).expect("iter");
                    let mut n = 0;
                    for item in &mut it {
                        let item = item.unwrap_or_else(|e| panic!("scan at {read_ts}: {e}"));
                        assert!(item.version() <= read_ts, "a version above the snapshot");
                        seen.insert(item.key().to_vec(), item.value_ref().to_vec());
                        n += 1;
                        if n % 50 == 0 {
                            // Let compaction move tables under the iterator.
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                    drop(it);
                    let sum: u64 = seen.values().map(|v| decode(v)).sum();
                    assert_eq!(
                        seen.len() as u64,
                        ACCOUNTS,
                        "snapshot {read_ts}: accounts missing"
                    );
                    assert_eq!(
                        sum,
                        ACCOUNTS * START,
                        "snapshot {read_ts}: the balances do not add up"
                    );
                    // Point reads in the same snapshot agree with its scan, however long it is held.
                    for round in 0..3 {
                        for _ in 0..20 {
                            let i = rng.below(ACCOUNTS);
                            let got = txn.get(&acct(i)).expect("get").expect("account");
                            assert_eq!(
                                got.value_ref(),
                                &seen[&acct(i)][..],
                                "snapshot {read_ts}, round {round}: get(acct {i}) changed"
                            );
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    scans.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
    });
    let stats = db.stats();
    let final_sum: u64 = scan_all(&db, b"acct/").values().map(|v| decode(v)).sum();
    assert_eq!(final_sum, ACCOUNTS * START);
    db.close().expect("close");
    let kinds = obs.finish();
    eprintln!(
        "readers during compaction: {} transfers ({} conflicts), {} consistent snapshots, {} compactions {kinds:?}",
        transfers.load(Ordering::Relaxed),
        conflicts.load(Ordering::Relaxed),
        scans.load(Ordering::Relaxed),
        stats.compactions
    );
    assert!(stats.compactions > 0, "no compaction ran under the readers");
    assert!(scans.load(Ordering::Relaxed) > 0);
    let Some(db) = reopen_or_known_bug(&db, &tiny(dir.path()), "readers during compaction") else {
        return;
    };
    let sum: u64 = scan_all(&db, b"acct/").values().map(|v| decode(v)).sum();
    assert_eq!(sum, ACCOUNTS * START, "after reopen");
    db.close().expect("close");
    assert_tables_match_manifest(&os(), dir.path(), "readers");
}

/// The tables the MANIFEST names, with their levels.
fn manifest_tables(vfs: &dyn Vfs, dir: &Path) -> BTreeMap<u64, usize> {
    let path = dir.join("MANIFEST");
    let replay = replay_manifest(&vfs.read_all(&path).expect("read MANIFEST"), &path, None).expect("replay");
    replay
        .manifest
        .tables
        .iter()
        .map(|(&id, t)| (id, t.level as usize))
        .collect()
}

/// Two compactors running constantly must never commit overlapping tables
/// to a level.
///
/// `do_compact` (db/compact.rs) plans from `db.view()` taken before it
/// claims its tables in `compact_status`. When another compaction finishes
/// in between (publishes its tree, removes its inputs and releases its
/// claim), the claim on the finished compaction's input tables succeeds, and
/// the stale plan compacts tables that are no longer in the tree (their data
/// is in the other compaction's outputs already) and misses the new tables
/// under its range. Its outputs overlap the other's; `run_compaction` commits
/// the change set to the MANIFEST and only then calls `Tree::with_edit`,
/// which refuses the overlap with `Corruption`. `compact::run` does not
/// poison on `Corruption`, so the database carries on with an in-memory tree
/// that differs from the MANIFEST (which names the stale outputs and deleted
/// tables that were already gone), and the next open fails with "tables X and
/// Y overlap at level N". Badger holds the levels' locks while it picks
/// tables and claims them.
#[test]
fn concurrent_compactions_never_commit_overlapping_tables() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(tiny(dir.path())).expect("open");
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let mut divergence = None;
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (db, stop) = (db.clone(), stop.clone());
            s.spawn(move || {
                let mut rng = Rng(w);
                while !stop.load(Ordering::Relaxed) {
                    let k = format!("acct/{:04}", rng.below(300)).into_bytes();
                    let v = rng.bytes(120);
                    db.update(|t| t.set(k, v)).expect("commit");
                }
            });
        }
        while started.elapsed() < Duration::from_secs(8) && divergence.is_none() {
            std::thread::sleep(Duration::from_millis(100));
            // The MANIFEST and the live tree may differ only for an instant
            // (a compaction between its MANIFEST append and its publication;
            // on a loaded 2-core machine a thread can sleep through 100 ms).
            for attempt in 0..50 {
                let mem: BTreeMap<u64, usize> = db.tables().iter().map(|t| (t.id, t.level)).collect();
                let man = manifest_tables(&os(), dir.path());
                if mem == man {
                    break;
                }
                if attempt == 49 {
                    let only_man: Vec<_> = man.iter().filter(|(id, l)| mem.get(id) != Some(l)).collect();
                    let only_mem: Vec<_> = mem.iter().filter(|(id, l)| man.get(id) != Some(l)).collect();
                    divergence = Some(format!(
                        "after {:.1?} and {} compactions the MANIFEST names (id, level) {only_man:?} that the live tree does not, and the live tree {only_mem:?}",
                        started.elapsed(),
                        db.stats().compactions
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    // Delete every key and compact everything into the last level, where
    // the tombstones and the values they hide are dropped. The live tree then
    // holds no `acct/` key; a MANIFEST naming stale outputs either does not
    // open or brings deleted keys back.
    for chunk in (0..300u64).collect::<Vec<_>>().chunks(20) {
        db.update(|t| {
            chunk
                .iter()
                .try_for_each(|i| t.delete(format!("acct/{i:04}").into_bytes()))
        })
        .expect("delete");
    }
    for i in 0..200u64 {
        db.update(|t| t.set(format!("filler/{i:04}").into_bytes(), vec![b'.'; 100]))
            .expect("filler");
    }
    db.wait_for_flushes().expect("flushes");
    let flattened = db.flatten(1);
    let live = scan_all(&db, b"acct/").len();
    db.close().expect("close");
    let reopened = match Db::open(tiny(dir.path())) {
        Ok(db) => {
            let back = scan_all(&db, b"acct/").len();
            let _ = db.close();
            format!("opens, and {back} of the 300 deleted keys are back")
        }
        Err(e) => format!("does not open: {e}"),
    };
    assert!(
        divergence.is_none(),
        "{}. Then every key was deleted and the tree flattened ({flattened:?}; the live database shows {live} keys); the directory {reopened}",
        divergence.as_deref().unwrap_or_default()
    );
    assert_eq!(reopened, "opens, and 0 of the 300 deleted keys are back");
}

// ---------------------------------------------------------------------------
// 5. drop_all and drop_prefix.

fn sst_ids(dir: &Path) -> BTreeSet<u64> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(
            |e| match classify(&e.expect("entry").file_name().to_string_lossy()) {
                Some(FileKind::Sst(id)) => Some(id),
                _ => None,
            },
        )
        .collect()
}

fn write_keys(db: &Db, model: &mut Model, prefix: &str, range: std::ops::Range<u64>, tag: &str) {
    for chunk in range.collect::<Vec<_>>().chunks(10) {
        let writes: Vec<(Vec<u8>, Vec<u8>)> = chunk
            .iter()
            .map(|i| {
                // Incompressible, so table sizes (and so the base level) are predictable.
                let mut v = format!("{tag}:{i}:").into_bytes();
                v.extend(Rng(*i ^ (tag.len() as u64) << 40).bytes(100 - v.len().min(100)));
                (format!("{prefix}{i:05}").into_bytes(), v)
            })
            .collect();
        db.update(|t| writes.iter().try_for_each(|(k, v)| t.set(k.clone(), v.clone())))
            .expect("write");
        model.extend(writes);
    }
}

#[test]
fn drop_all_empties_everything_and_ids_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = tiny(dir.path());
    let db = Db::open(opts.clone()).expect("open");
    let mut model = Model::new();
    write_keys(&db, &mut model, "d/", 0..3000, "base");
    db.wait_for_flushes().expect("flushes");
    if !flatten_or_known_bug(&db, 2, "drop_all") {
        return;
    }
    write_keys(&db, &mut model, "e/", 0..600, "upper");
    write_keys(&db, &mut model, "d/", 0..50, "newer");
    db.wait_for_flushes().expect("flushes");
    let levels: BTreeSet<usize> = db.tables().iter().map(|t| t.level).collect();
    eprintln!("before drop_all: {}", level_summary(&db));
    assert!(levels.len() >= 2, "data is in one level only: {levels:?}");
    assert_model(&db, &model, b"", "before drop_all");
    // An iterator over the old snapshot, part consumed.
    let mut old = db.begin_read();
    let mut old_it = old.iter(IterOptions::default()).expect("iter");
    let mut old_seen = Model::new();
    for item in old_it.by_ref().take(1000) {
        let item = item.expect("old scan");
        old_seen.insert(item.key().to_vec(), item.value_ref().to_vec());
    }
    let max_id_before = *sst_ids(dir.path()).last().expect("tables");

    db.drop_all().expect("drop_all");
    assert_model(&db, &Model::new(), b"", "after drop_all");
    assert_eq!(get(&db, b"d/00000"), None);
    assert!(
        db.tables().is_empty(),
        "tables left: {:?}",
        db.tables().iter().map(|t| t.id).collect::<Vec<_>>()
    );
    assert!(
        sst_ids(dir.path()).is_empty(),
        "table files left: {:?}",
        sst_ids(dir.path())
    );
    assert_tables_match_manifest(&os(), dir.path(), "after drop_all");

    // The old iterator keeps its snapshot (the view it holds keeps the
    // memtables and the open table files).
    let mut old_errors = 0;
    for item in old_it {
        match item {
            Ok(item) => {
                old_seen.insert(item.key().to_vec(), item.value_ref().to_vec());
            }
            Err(e) => {
                old_errors += 1;
                eprintln!("old iterator after drop_all: {e}");
            }
        }
    }
    assert_eq!(old_errors, 0);
    assert!(
        old_seen == model,
        "the old iterator's snapshot changed: {}",
        diff(&old_seen, &model)
    );
    // A point read in the old transaction reads the current tree, as in
    // Badger: after drop_all it finds nothing.
    let old_get = old.get(b"d/00001").expect("old get");
    eprintln!(
        "drop_all under an old snapshot: its iterator kept returning the snapshot ({} keys); its point reads see {}",
        old_seen.len(),
        if old_get.is_some() {
            "the snapshot"
        } else {
            "the dropped state (nothing)"
        }
    );
    drop(old);

    // Usable, and table ids start again at 1: one memtable's worth (one L0
    // table, too few to compact) shows the first, then more.
    let mut after = Model::new();
    write_keys(&db, &mut after, "n/", 0..150, "after");
    db.wait_for_flushes().expect("flushes");
    let first = sst_ids(dir.path());
    assert_eq!(
        first.iter().next(),
        Some(&1),
        "the first table after drop_all is not 000001.sst: {first:?}"
    );
    write_keys(&db, &mut after, "n/", 150..400, "after");
    db.wait_for_flushes().expect("flushes");
    let ids = sst_ids(dir.path());
    eprintln!("table files after drop_all: {first:?}, then {ids:?} (the largest before was {max_id_before})");
    assert!(ids.iter().all(|&id| id < max_id_before), "{ids:?}");
    assert_model(&db, &after, b"", "new writes after drop_all");
    db.close().expect("close");
    assert_tables_match_manifest(&os(), dir.path(), "closed after drop_all");
    let Some(db) = reopen_or_known_bug(&db, &opts, "drop_all") else {
        return;
    };
    assert_model(&db, &after, b"", "reopened after drop_all");
    db.drop_all().expect("second drop_all");
    db.close().expect("close");
    let Some(db) = reopen_or_known_bug(&db, &opts, "drop_all") else {
        return;
    };
    assert_model(&db, &Model::new(), b"", "reopened after a second drop_all");
    write_keys(&db, &mut Model::new(), "x/", 0..3, "x");
    db.close().expect("close");
    assert_tables_match_manifest(&os(), dir.path(), "end");
}

#[test]
fn drop_prefix_removes_exactly_the_prefixed_keys_from_every_level() {
    let fs = MemVfs::new();
    let mut b = Bench::open(fs, placed(4), Model::new());
    let mut model = Model::new();
    // L3: p/ and its neighbours o/ and q/; a key that is a prefix-sibling ("p" alone, "p0").
    write_keys(b.db(), &mut model, "p/", 0..300, "L3");
    write_keys(b.db(), &mut model, "o/", 0..300, "L3");
    write_keys(b.db(), &mut model, "q/", 0..300, "L3");
    for k in [&b"p"[..], b"p0", b"p.", b"o/p/"] {
        b.set(k, b"sibling");
        model.insert(k.to_vec(), b"sibling".to_vec());
    }
    b.flatten();
    // L2: newer versions of some p/ keys and some new ones.
    write_keys(b.db(), &mut model, "p/", 250..350, "L2");
    b.compact_l0_to_base();
    // L0 and the memtable.
    write_keys(b.db(), &mut model, "p/", 100..120, "L0");
    write_keys(b.db(), &mut model, "q/", 100..120, "L0");
    b.flush_to_l0();
    write_keys(b.db(), &mut model, "p/", 0..5, "mem");
    write_keys(b.db(), &mut model, "o/", 0..5, "mem");
    let mut levels: BTreeMap<usize, usize> = BTreeMap::new();
    for t in b.db().tables() {
        *levels.entry(t.level).or_insert(0) += 1;
    }
    eprintln!("before drop_prefix: tables per level {levels:?}");
    assert!(levels.contains_key(&0) && levels.contains_key(&2) && levels.contains_key(&3));
    assert_model(b.db(), &model, b"", "before drop_prefix");

    let mut old = b.db().begin_read();
    let mut old_it = old.iter(IterOptions::default()).expect("iter");
    let mut old_seen = Model::new();
    for item in old_it.by_ref().take(100) {
        let item = item.expect("old scan");
        old_seen.insert(item.key().to_vec(), item.value_ref().to_vec());
    }
    let snapshot = model.clone();

    match b.db().drop_prefix(&[b""]) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("an empty prefix: {other:?}"),
    }
    match b.db().drop_prefix(&[b"zz", b""]) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("an empty prefix among others: {other:?}"),
    }
    assert_model(b.db(), &model, b"", "after the refused drops");

    b.db().drop_prefix(&[b"p/"]).expect("drop_prefix");
    model.retain(|k, _| !k.starts_with(b"p/"));
    assert_model(b.db(), &model, b"", "after drop_prefix");
    for i in [0u64, 3, 110, 260, 340] {
        assert_eq!(get(b.db(), format!("p/{i:05}").as_bytes()), None, "p/{i:05}");
    }
    let versions = all_versions(&mut b.db().begin_read(), b"p/");
    assert!(
        versions.is_empty(),
        "versions of dropped keys remain: {:?}",
        &versions[..versions.len().min(3)]
    );
    assert!(b.where_is(b"p/00110").is_empty() && b.where_is(b"p/00003").is_empty());

    let mut old_errors = 0;
    for item in old_it {
        match item {
            Ok(item) => {
                old_seen.insert(item.key().to_vec(), item.value_ref().to_vec());
            }
            Err(e) => {
                old_errors += 1;
                eprintln!("old iterator after drop_prefix: {e}");
            }
        }
    }
    assert_eq!(old_errors, 0);
    assert!(
        old_seen == snapshot,
        "the old iterator's snapshot changed: {}",
        diff(&old_seen, &snapshot)
    );
    // A point read in the old transaction reads the current tree, as in Badger.
    let old_get = old.get(b"p/00003").expect("old get");
    eprintln!(
        "drop_prefix under an old snapshot: its iterator kept returning the snapshot ({} keys); its point reads see {}",
        old_seen.len(),
        if old_get.is_some() {
            "the snapshot"
        } else {
            "the dropped state (nothing)"
        }
    );
    drop(old);

    b.reopen();
    assert_model(b.db(), &model, b"", "reopened after drop_prefix");
    write_keys(b.db(), &mut model, "p/", 7..9, "again");
    b.reopen();
    assert_model(b.db(), &model, b"", "new p/ keys after drop_prefix, reopened");
    b.flatten();
    assert_model(b.db(), &model, b"", "flattened");
    b.close();
    assert_tables_match_manifest(&b.fs, Path::new(DIR), "drop_prefix");
}

/// `drop_prefix` with compactors and writers running: exactly the prefixed
/// keys go, every acknowledged write to other keys stays.
#[test]
fn drop_prefix_with_compactions_and_writers_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Db::open(tiny(dir.path())).expect("open");
    let mut model = Model::new();
    write_keys(&db, &mut model, "p/", 0..1500, "first");
    write_keys(&db, &mut model, "q/", 0..1500, "first");
    let stop = Arc::new(AtomicBool::new(false));
    let written = std::thread::scope(|s| {
        let writer = {
            let (db, stop) = (db.clone(), stop.clone());
            s.spawn(move || {
                let mut m = Model::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    write_keys(&db, &mut m, "q/", (n % 1500)..(n % 1500 + 5), &format!("w{n}"));
                    n += 5;
                }
                m
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        db.drop_prefix(&[b"p/"]).expect("drop_prefix");
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer")
    });
    model.retain(|k, _| !k.starts_with(b"p/"));
    model.extend(written);
    assert_model(&db, &model, b"", "after drop_prefix with writers");
    eprintln!(
        "drop_prefix with writers: {}; {} compactions",
        level_summary(&db),
        db.stats().compactions
    );
    db.close().expect("close");
    let Some(db) = reopen_or_known_bug(&db, &tiny(dir.path()), "drop_prefix with writers") else {
        return;
    };
    assert_model(&db, &model, b"", "reopened");
    db.close().expect("close");
    assert_tables_match_manifest(&os(), dir.path(), "drop_prefix with writers");
}

/// While `drop_prefix` runs, a reader must never see an older version of a
/// dropped key than the one it saw before.
///
/// `ops::drop_prefix` (db/ops.rs) rewrites the tables level by level from L0
/// down, publishing each rewrite on its own. Between the rewrite of an upper
/// table and that of the lower one, a reader finds the lower level's older
/// version of a key whose newer version is already gone: overwritten values
/// come back for a moment, and for good if the operation stops half way (an
/// I/O error or a crash; see compaction_crash.rs). Badger's `dropPrefixes`
/// goes from the last level up for exactly this reason ("we could have a
/// state in which level 0 is compacted and an older version of a key exists
/// in lower level").
#[test]
fn drop_prefix_never_shows_an_older_version_while_it_runs() {
    // The window is short: a few attempts.
    let mut total_old = 0;
    for attempt in 0..5 {
        let fs = MemVfs::new();
        let mut b = Bench::open(fs, placed(4), Model::new());
        let mut model = Model::new();
        write_keys(b.db(), &mut model, "p/", 0..1500, "old");
        write_keys(b.db(), &mut model, "q/", 0..200, "old");
        b.flatten();
        write_keys(b.db(), &mut model, "p/", 0..1500, "new");
        b.flush_to_l0();
        let db = b.db().clone();
        let stop = AtomicBool::new(false);
        let seen_old = AtomicU64::new(0);
        let reads = AtomicU64::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 37) % 1500;
                    if let Some(v) = get(&db, format!("p/{i:05}").as_bytes())
                        && v.starts_with(b"old")
                    {
                        seen_old.fetch_add(1, Ordering::Relaxed);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
            std::thread::sleep(Duration::from_millis(20));
            db.drop_prefix(&[b"p/"]).expect("drop_prefix");
            stop.store(true, Ordering::Relaxed);
        });
        model.retain(|k, _| !k.starts_with(b"p/"));
        assert_model(&db, &model, b"", "after drop_prefix");
        let old = seen_old.load(Ordering::Relaxed);
        eprintln!(
            "drop_prefix under a reader, attempt {attempt}: {} reads, {old} returned a value older than the one the key had before",
            reads.load(Ordering::Relaxed)
        );
        total_old += old;
        if old > 0 {
            break;
        }
    }
    assert_eq!(
        total_old, 0,
        "readers saw overwritten values come back while drop_prefix ran"
    );
}

/// When compaction drops the entry that carried the newest version (a
/// tombstone at the bottom level), the next commit after a reopen still
/// gets a newer version: the output tables keep claiming their inputs'
/// newest version. (Badger derives the next timestamp from the tables too,
/// and goes back here; an incremental backup "since" the old timestamp
/// would then miss the new commit.)
#[test]
fn commit_versions_never_go_back_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = tiny(dir.path()).with_compact_l0_on_close(true);
    let db = Db::open(opts.clone()).unwrap();
    for i in 0..200u64 {
        db.update(|t| t.set(model_key(i), vec![7u8; 50])).unwrap();
    }
    db.update(|t| t.set(&b"zzz"[..], &b"last"[..])).unwrap();
    let set_at = db.view(|t| t.get(b"zzz")).unwrap().unwrap().version();
    db.update(|t| t.delete(&b"zzz"[..])).unwrap();
    // Commits take consecutive versions: the delete is the newest.
    let newest = set_at + 1;
    db.close().unwrap();
    let db = Db::open(opts.clone()).unwrap();
    db.flatten(1).unwrap();
    let seen = db
        .view(|t| Ok(t.iter(IterOptions::default().all_versions(true))?.count()))
        .unwrap();
    assert_eq!(seen, 200, "the tombstone and the version it hid are gone");
    db.close().unwrap();
    let db = Db::open(opts).unwrap();
    db.update(|t| t.set(&b"after"[..], &b"reopen"[..])).unwrap();
    let version = db.view(|t| t.get(b"after")).unwrap().unwrap().version();
    assert!(
        version > newest,
        "new commit at version {version}, but {newest} was used before the reopen"
    );
}
