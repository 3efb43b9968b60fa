//! Crash at every step: the durability promise of `docs/durability.md`,
//! checked on the crash-simulating `MemVfs` with a fault injected at every
//! mutating file-system operation in turn.
//!
//! Each sweep runs a fixed workload once without faults to count its
//! operations, then once per operation index `n` with `fail_from_op(n)` (the
//! process "stops" at operation `n`: it and everything after fail), crashes
//! the file system (power loss, torn power loss, process kill), reopens it
//! without faults and checks the contents against a model:
//! - every commit that returned `Ok` is there (for `sync_writes(false)`, only
//!   after a process kill);
//! - the one commit that failed is there entirely or not at all;
//! - nothing else is there;
//! - every `.sst` file is named by the MANIFEST and every table the MANIFEST
//!   names exists;
//! - the reopened database takes a new commit and survives a clean close and
//!   reopen (which leaves no `.mem` WAL and no `LOCK`);
//! - point lookups and a full scan agree, and so do a read-only open (which
//!   must not write a byte) and the offline `DirView` of the crashed files.
//!
//! The sweeps:
//! 1. commits with `sync_writes(true)`, the fault armed before the first open
//!    (so the open is swept too; for `n` past the open this is the same as
//!    arming it after the open), once with every flush awaited after each
//!    commit (an almost fixed operation order: only a rotating commit's own
//!    WAL append races the flush it starts) and once with flushes racing the
//!    commits;
//! 2. the same with `sync_writes(false)` and a process kill, plus the weaker
//!    property that power loss leaves some prefix of the commits;
//! 3. the flush of one full memtable (table write, table sync, directory sync,
//!    MANIFEST append and sync, WAL removal), triggered by rotation and by
//!    `close`;
//! 4. a single transient fault (`fail_op_once`) at every operation of the
//!    workload: the database must refuse every later write with
//!    `WritesPoisoned` and a reopen must recover what was acknowledged;
//! 5. a fault at every operation of a recovery (a reopen after a crash that
//!    left a torn WAL tail, an orphan table, and a flushed memtable's WAL
//!    whose deletion the crash undid), and of the commits that follow it.
//!
//! The file system is wrapped in a tracing `Vfs` that names every counted
//! operation, so each sweep reports (run with `--nocapture`) and checks which
//! kinds of operation it interrupted. `BROCK_CRASH_SWEEP=full` adds more
//! torn-power-loss seeds and a longer workload.
//!
//! At the end, regression tests for the library bugs the sweeps found
//! (each fixed; they run by default).

mod common;

use common::Rng;
use common::traced::{DIR, Traced};

use brock::inspect::{DirView, ViewOptions};
use brock::levels::replay_manifest;
use brock::vfs::{CrashMode, FileKind, MemVfs, Vfs, classify};
use brock::{Db, Error, IterOptions, Options, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const MARKER: &[u8] = b"zz-after-crash";

fn full_sweep() -> bool {
    std::env::var("BROCK_CRASH_SWEEP").is_ok_and(|v| v == "full")
}

/// Torn-power-loss seeds tried per sweep point.
fn torn_seeds(n: u64) -> Vec<u64> {
    let count: u64 = if full_sweep() { 4 } else { 1 };
    (0..count)
        .map(|i| n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
        .collect()
}

fn opts(sync_writes: bool) -> Options {
    // 4 KiB memtables: the workload below rotates and flushes several times.
    Options::new(DIR)
        .with_mem_table_size(4 << 10)
        .with_value_threshold(512)
        .with_num_compactors(0)
        .with_block_cache_size(1 << 20)
        .with_sync_writes(sync_writes)
}

// ---------------------------------------------------------------------------
// The workload and its model.

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>, Vec<u8>),
    Del(Vec<u8>),
}

type Txn = Vec<Op>;
type State = BTreeMap<Vec<u8>, Vec<u8>>;

const KEYS: u64 = 12;

fn key(i: u64) -> Vec<u8> {
    format!("key-{i:02}").into_bytes()
}

/// `txns` transactions of 1–4 operations over 12 keys: overwrites are
/// frequent, about one operation in five is a delete, values are 20–100 bytes.
fn workload(seed: u64, txns: usize) -> Vec<Txn> {
    let mut rng = Rng(seed);
    (0..txns)
        .map(|t| {
            let ops = 1 + rng.below(4);
            (0..ops)
                .map(|i| {
                    let k = key(rng.below(KEYS));
                    if rng.below(5) == 0 {
                        Op::Del(k)
                    } else {
                        let len = 20 + rng.below(81) as usize;
                        let mut v = format!("t{t}-o{i}-").into_bytes();
                        v.resize(len, b'a' + (t % 26) as u8);
                        Op::Set(k, v)
                    }
                })
                .collect()
        })
        .collect()
}

fn apply(state: &mut State, txn: &Txn) {
    for op in txn {
        match op {
            Op::Set(k, v) => {
                state.insert(k.clone(), v.clone());
            }
            Op::Del(k) => {
                state.remove(k);
            }
        }
    }
}

fn commit(db: &Db, txn: &Txn) -> Result<()> {
    db.update(|t| {
        for op in txn {
            match op {
                Op::Set(k, v) => t.set(k.clone(), v.clone())?,
                Op::Del(k) => t.delete(k.clone())?,
            }
        }
        Ok(())
    })
}

/// What a session did: whether it opened, and each attempted commit's result.
#[derive(Debug, Default)]
struct Session {
    open_error: Option<String>,
    outcomes: Vec<std::result::Result<(), String>>,
}

impl Session {
    fn acked(&self) -> usize {
        self.outcomes.iter().take_while(|o| o.is_ok()).count()
    }

    /// The states recovery may legally produce, given that the workload
    /// starts from `base`: every acknowledged commit, plus all or none of the
    /// one that failed.
    fn candidates(&self, base: &State, wl: &[Txn]) -> Vec<State> {
        let acked = self.acked();
        let mut s = base.clone();
        for t in &wl[..acked] {
            apply(&mut s, t);
        }
        let mut out = vec![s.clone()];
        if self.outcomes.len() > acked {
            apply(&mut s, &wl[acked]);
            out.push(s);
        }
        out
    }

    /// Every state after some prefix of the attempted commits.
    fn prefixes(&self, base: &State, wl: &[Txn]) -> Vec<State> {
        let mut s = base.clone();
        let mut out = vec![s.clone()];
        for t in &wl[..self.outcomes.len()] {
            apply(&mut s, t);
            out.push(s.clone());
        }
        out
    }

    fn summary(&self) -> String {
        match &self.open_error {
            Some(e) => format!("open failed: {e}"),
            None => {
                let acked = self.acked();
                match self.outcomes.get(acked) {
                    Some(Err(e)) => format!("{acked} commits acknowledged, commit {acked} failed: {e}"),
                    _ => format!("{acked} commits acknowledged, none failed"),
                }
            }
        }
    }
}

/// Opens the database on `t` and runs `wl` until the first failed commit.
/// With `await_flush`, every flush is awaited after each commit, which makes
/// the order of file operations the same in every run.
fn run_session(t: &Traced, o: &Options, wl: &[Txn], await_flush: bool) -> (Option<Db>, Session) {
    let mut s = Session::default();
    let db = match Db::open_with_vfs(o.clone(), Arc::new(t.clone())) {
        Ok(db) => db,
        Err(e) => {
            s.open_error = Some(e.to_string());
            return (None, s);
        }
    };
    for txn in wl {
        let r = commit(&db, txn);
        let failed = r.is_err();
        s.outcomes.push(r.map_err(|e| e.to_string()));
        if failed {
            break;
        }
        if await_flush {
            settle(t, &db);
        }
    }
    (Some(db), s)
}

/// Waits for every flush, including the WAL removal that follows the
/// publication `wait_for_flushes` waits for, so that the next commit's file
/// operations never race the flush thread's.
fn settle(t: &Traced, db: &Db) {
    let _ = db.wait_for_flushes();
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while Instant::now() < deadline && t.first_failure().is_none() {
        let wals =
            t.fs.list_dir(&dir())
                .map_or(0, |l| l.iter().filter(|e| e.name.ends_with(".mem")).count());
        if wals <= 1 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
}

// ---------------------------------------------------------------------------
// Checking a recovered directory.

fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// Reads every key twice, by full scan and by point lookups, and checks the
/// two agree.
fn read_state(db: &Db, ctx: &str) -> State {
    let mut scanned = State::new();
    for item in db
        .begin_read()
        .iter(IterOptions::default())
        .unwrap_or_else(|e| panic!("{ctx}: iter: {e}"))
    {
        let item = item.unwrap_or_else(|e| panic!("{ctx}: scan: {e}"));
        let prev = scanned.insert(item.key().to_vec(), item.value_ref().to_vec());
        assert!(
            prev.is_none(),
            "{ctx}: scan yielded {:?} twice",
            String::from_utf8_lossy(item.key())
        );
    }
    let mut probed = State::new();
    for k in (0..KEYS)
        .map(key)
        .chain([MARKER.to_vec()])
        .chain(scanned.keys().cloned())
    {
        if let Some(item) = db
            .view(|t| t.get(&k))
            .unwrap_or_else(|e| panic!("{ctx}: get: {e}"))
        {
            probed.insert(k, item.value_ref().to_vec());
        }
    }
    assert!(
        scanned == probed,
        "{ctx}: the scan and point lookups disagree (scan vs get):{}",
        describe_diff(&scanned, &probed)
    );
    scanned
}

fn describe_diff(got: &State, want: &State) -> String {
    let mut out = String::new();
    let keys: BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            let show = |v: Option<&Vec<u8>>| {
                v.map_or("absent".to_string(), |v| String::from_utf8_lossy(v).into_owned())
            };
            let _ = write!(
                out,
                "\n    {}: got {}, want {}",
                String::from_utf8_lossy(k),
                show(g),
                show(w)
            );
        }
    }
    out
}

/// Which files the directory holds, and the tables its MANIFEST names.
struct Files {
    names: Vec<String>,
    ssts: BTreeSet<u64>,
    mems: usize,
    manifest_tables: BTreeSet<u64>,
}

fn files(fs: &MemVfs, ctx: &str) -> Files {
    let names: Vec<String> = fs
        .list_dir(&dir())
        .unwrap_or_else(|e| panic!("{ctx}: list: {e}"))
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut ssts = BTreeSet::new();
    let mut mems = 0;
    for n in &names {
        match classify(n) {
            Some(FileKind::Sst(id)) => {
                ssts.insert(id);
            }
            Some(FileKind::Mem(_)) => mems += 1,
            _ => {}
        }
    }
    let mpath = dir().join("MANIFEST");
    let manifest_tables = match fs.contents(&mpath) {
        Some(bytes) => replay_manifest(&bytes, &mpath, None)
            .unwrap_or_else(|e| panic!("{ctx}: MANIFEST: {e}"))
            .manifest
            .tables
            .keys()
            .copied()
            .collect(),
        None => BTreeSet::new(),
    };
    Files {
        names,
        ssts,
        mems,
        manifest_tables,
    }
}

/// No table file the MANIFEST does not name, none it names missing; after a
/// clean close, no WAL and no LOCK either.
fn check_files(fs: &MemVfs, ctx: &str, closed: bool) {
    let f = files(fs, ctx);
    assert_eq!(
        f.ssts, f.manifest_tables,
        "{ctx}: table files vs MANIFEST (closed: {closed}); files: {:?}",
        f.names
    );
    if closed {
        assert_eq!(f.mems, 0, "{ctx}: a WAL survived a clean close: {:?}", f.names);
        assert!(
            !f.names.iter().any(|n| n == "LOCK"),
            "{ctx}: LOCK survived a clean close"
        );
    }
}

/// Reopens a crashed file system and checks it against `cands`; returns the
/// index of the candidate found. Then commits once more, closes, reopens and
/// checks again.
fn check_recovered(fs: &MemVfs, o: &Options, cands: &[State], ctx: &str) -> usize {
    fs.clear_faults();
    // The offline view of the crashed directory (which replays WALs in
    // memory and changes nothing) must agree with what the engine recovers.
    let offline = offline_state(fs, ctx);
    if let Some(offline) = &offline {
        // A read-only open sees the same and writes nothing.
        let ops = fs.op_count();
        let ro = Db::open_with_vfs(o.clone().with_read_only(true), Arc::new(fs.clone()))
            .unwrap_or_else(|e| panic!("{ctx}: read-only open: {e}"));
        let got = read_state(&ro, ctx);
        assert!(
            got == *offline,
            "{ctx}: read-only open vs offline view:{}",
            describe_diff(&got, offline)
        );
        ro.close()
            .unwrap_or_else(|e| panic!("{ctx}: read-only close: {e}"));
        drop(ro);
        assert_eq!(
            fs.op_count(),
            ops,
            "{ctx}: a read-only open wrote to the directory"
        );
    }
    let db = Db::open_with_vfs(o.clone(), Arc::new(fs.clone()))
        .unwrap_or_else(|e| panic!("{ctx}: reopen failed: {e}"));
    let got = read_state(&db, ctx);
    if let Some(offline) = offline {
        assert!(
            offline == got,
            "{ctx}: the offline view (scan) vs the engine (get):{}",
            describe_diff(&offline, &got)
        );
    }
    // The open starts flushing replayed WALs at once; a table being written
    // is not in the MANIFEST yet.
    db.wait_for_flushes()
        .unwrap_or_else(|e| panic!("{ctx}: flushing replayed WALs: {e}"));
    check_files(fs, ctx, false);
    assert!(
        read_state(&db, ctx) == got,
        "{ctx}: flushing the replayed WALs changed what reads see"
    );
    let Some(which) = cands.iter().position(|c| *c == got) else {
        let diffs: String = cands
            .iter()
            .enumerate()
            .map(|(i, c)| format!("\n  vs candidate {i}:{}", describe_diff(&got, c)))
            .collect();
        panic!(
            "{ctx}: recovered state matches none of {} candidates{diffs}",
            cands.len()
        );
    };
    db.update(|t| t.set(MARKER.to_vec(), b"1".to_vec()))
        .unwrap_or_else(|e| panic!("{ctx}: commit after recovery: {e}"));
    db.close()
        .unwrap_or_else(|e| panic!("{ctx}: close after recovery: {e}"));
    drop(db);
    check_files(fs, ctx, true);
    let db = Db::open_with_vfs(o.clone(), Arc::new(fs.clone()))
        .unwrap_or_else(|e| panic!("{ctx}: second reopen: {e}"));
    let mut want = cands[which].clone();
    want.insert(MARKER.to_vec(), b"1".to_vec());
    let got = read_state(&db, ctx);
    assert!(
        got == want,
        "{ctx}: after a clean close and reopen:{}",
        describe_diff(&got, &want)
    );
    db.close().unwrap_or_else(|e| panic!("{ctx}: second close: {e}"));
    let offline = offline_state(fs, ctx).unwrap_or_else(|| panic!("{ctx}: no MANIFEST after a clean close"));
    assert!(
        offline == want,
        "{ctx}: the offline view after a clean close:{}",
        describe_diff(&offline, &want)
    );
    which
}

/// What `brock::inspect::DirView` (the offline, read-only view) sees; `None`
/// before the first open got as far as writing a MANIFEST.
fn offline_state(fs: &MemVfs, ctx: &str) -> Option<State> {
    if !fs.exists(&dir().join("MANIFEST")) {
        return None;
    }
    let view =
        DirView::open_with(fs, ViewOptions::new(DIR)).unwrap_or_else(|e| panic!("{ctx}: offline view: {e}"));
    view.latest(u64::MAX)
        .unwrap_or_else(|e| panic!("{ctx}: offline view: {e}"))
        .map(|v| {
            let v = v.unwrap_or_else(|e| panic!("{ctx}: offline view: {e}"));
            (v.key, v.value)
        })
        .collect::<State>()
        .into()
}

/// Counts how often each kind of operation was the first to fail.
#[derive(Default)]
struct Coverage {
    first_failed: BTreeMap<String, usize>,
    points: usize,
    recoveries: usize,
    failed_commit_kept: usize,
    failed_commit_dropped: usize,
    failed_commit_errors: BTreeMap<String, usize>,
}

impl Coverage {
    fn hit(&mut self, label: Option<String>) {
        self.points += 1;
        *self
            .first_failed
            .entry(label.unwrap_or_else(|| "(no fault hit)".into()))
            .or_default() += 1;
    }

    fn note_failed_commit(&mut self, s: &Session) {
        if let Some(Err(e)) = s.outcomes.get(s.acked()) {
            let kind = if e.contains("closed") {
                "Closed (see failed_commit_reports_its_cause)"
            } else {
                "other"
            };
            *self.failed_commit_errors.entry(kind.to_string()).or_default() += 1;
        }
    }

    fn report(&self, name: &str, started: Instant) {
        eprintln!(
            "{name}: {} points, {} recoveries checked, failed commit kept {} / dropped {} times, {:.1?}",
            self.points,
            self.recoveries,
            self.failed_commit_kept,
            self.failed_commit_dropped,
            started.elapsed()
        );
        for (label, n) in &self.first_failed {
            eprintln!("    {n:4} × first failure at `{label}`");
        }
        for (kind, n) in &self.failed_commit_errors {
            eprintln!("    {n:4} × the failed commit returned {kind}");
        }
    }

    fn require(&self, name: &str, labels: &[&str]) {
        for l in labels {
            assert!(
                self.first_failed.contains_key(*l),
                "{name}: no sweep point interrupted `{l}`: {:?}",
                self.first_failed
            );
        }
    }
}

/// Counts the operations of a fault-free run.
fn count_ops(o: &Options, wl: &[Txn], await_flush: bool) -> (u64, Traced) {
    let t = Traced::new(MemVfs::new());
    let (db, s) = run_session(&t, o, wl, await_flush);
    let db = db.expect("fault-free open");
    assert_eq!(s.acked(), wl.len(), "fault-free run: {}", s.summary());
    settle(&t, &db);
    let n = t.fs.op_count();
    drop(db);
    (n, t)
}

/// Reruns sweep points around the clean run's position of every `required`
/// label that no point interrupted yet: when a flush races the commit that
/// started it, an operation's index can shift by one or two between runs.
fn retry_missing(
    cov: &mut Coverage,
    clean: &Traced,
    total: u64,
    required: &[&str],
    mut point: impl FnMut(u64, &mut Coverage),
) {
    for label in required {
        let spots: Vec<u64> = (0..total)
            .filter(|&i| clean.label_at(i).as_deref() == Some(*label))
            .collect();
        'retry: for _ in 0..5 {
            for &i in &spots {
                for n in i.saturating_sub(2)..=i + 2 {
                    if cov.first_failed.contains_key(*label) {
                        break 'retry;
                    }
                    point(n, cov);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1 and 2: commits interrupted at every step.

/// One sweep point: fault from operation `n`, crash every way, check.
/// Returns the label of the operation that failed first.
#[allow(clippy::too_many_arguments)]
fn commit_point(
    name: &str,
    o: &Options,
    wl: &[Txn],
    n: u64,
    total: u64,
    await_flush: bool,
    crash_modes: &[CrashMode],
    prefix_modes: &[CrashMode],
    cov: &mut Coverage,
) -> Option<String> {
    let t = Traced::new(MemVfs::new());
    t.fs.fail_from_op(n);
    let (db, s) = run_session(&t, o, wl, await_flush);
    let first = t.first_failure();
    if await_flush && n < total {
        // (Which operation is n-th can still vary: a rotating commit's WAL
        // append races the flush it starts.)
        assert_eq!(
            first.as_ref().map(|r| r.index),
            Some(n),
            "{name}: n={n}: the fault did not hit operation n"
        );
    }
    cov.hit(first.as_ref().map(|r| r.label.clone()));
    cov.note_failed_commit(&s);
    let crashes: Vec<(String, MemVfs)> = crash_modes
        .iter()
        .map(|&m| (format!("{m:?}"), t.fs.crash(m)))
        .collect();
    let prefix_crashes: Vec<(String, MemVfs)> = prefix_modes
        .iter()
        .map(|&m| (format!("{m:?}"), t.fs.crash(m)))
        .collect();
    drop(db);
    // Not promised, but what a crash without the durability promise must
    // still leave: the state after some prefix of the commits.
    for (mode, fs) in prefix_crashes {
        let ctx = format!("{name}: fail_from_op({n}), {mode} (any prefix); {}", s.summary());
        check_recovered(&fs, o, &s.prefixes(&State::new(), wl), &ctx);
        cov.recoveries += 1;
    }
    let cands = s.candidates(&State::new(), wl);
    for (mode, fs) in crashes {
        let ctx = format!(
            "{name}: fail_from_op({n}) [first failure: {:?}], {mode}; {}",
            first.as_ref().map(|r| &r.label),
            s.summary()
        );
        let which = check_recovered(&fs, o, &cands, &ctx);
        cov.recoveries += 1;
        if cands.len() == 2 {
            if which == 1 {
                cov.failed_commit_kept += 1;
            } else {
                cov.failed_commit_dropped += 1;
            }
        }
    }
    first.map(|r| r.label)
}

/// Sweeps `fail_from_op(n)` over every operation of the workload (the open
/// included), then retries around the clean run's position of any
/// `required` label no point interrupted (the flush races the commit that
/// starts it, so a label's position can shift by an operation or two).
fn commit_sweep(name: &str, sync_writes: bool, await_flush: bool, required: &[&str]) -> Coverage {
    let started = Instant::now();
    let o = opts(sync_writes);
    let wl = workload(7, if full_sweep() { 60 } else { 30 });
    let (total, clean) = count_ops(&o, &wl, await_flush);
    let flushes_in_clean_run = clean
        .labels()
        .iter()
        .filter(|l| l.ends_with("create sst"))
        .count();
    assert!(
        flushes_in_clean_run >= 2,
        "{name}: workload must flush at least twice: {:?}",
        clean.labels()
    );
    let mut cov = Coverage::default();
    let mut modes = Vec::new();
    if sync_writes {
        // Without sync_writes nothing is promised after a power loss.
        modes.push(CrashMode::PowerLoss);
    }
    modes.push(CrashMode::ProcessKill);
    let prefix_modes = if sync_writes {
        vec![]
    } else {
        vec![CrashMode::PowerLoss]
    };
    let point_modes = |n: u64| {
        let mut m = modes.clone();
        if sync_writes {
            m.extend(
                torn_seeds(n)
                    .into_iter()
                    .map(|seed| CrashMode::TornPowerLoss { seed }),
            );
        }
        m
    };
    // Racing flushes shift the order a little: sweep a margin past the end.
    let end = if await_flush { total } else { total + 8 };
    for n in 0..=end {
        commit_point(
            name,
            &o,
            &wl,
            n,
            total,
            await_flush,
            &point_modes(n),
            &prefix_modes,
            &mut cov,
        );
    }
    retry_missing(&mut cov, &clean, total, required, |n, cov| {
        commit_point(
            name,
            &o,
            &wl,
            n,
            total,
            await_flush,
            &point_modes(n),
            &prefix_modes,
            cov,
        );
    });
    cov.report(name, started);
    cov.require(name, required);
    cov
}

#[test]
fn commits_with_sync_writes_survive_power_loss_at_every_step() {
    let cov = commit_sweep(
        "sync_writes, flushes awaited",
        true,
        true,
        &[
            "truncate LOCK",
            "truncate MANIFEST-REWRITE",
            "sync MANIFEST-REWRITE",
            "rename MANIFEST-REWRITE",
            "rename REWRITE-KEYREGISTRY",
            "create vlog",
            "create DISCARD",
            "create wal",
            "append wal",
            "sync wal",
            "sync dir",
            "create sst",
            "append sst",
            "sync sst",
            "append MANIFEST",
            "sync MANIFEST",
            "remove wal",
        ],
    );
    assert!(cov.failed_commit_kept > 0 && cov.failed_commit_dropped > 0);
}

#[test]
fn commits_with_sync_writes_and_racing_flushes() {
    let cov = commit_sweep(
        "sync_writes, racing flushes",
        true,
        false,
        &["create wal", "append wal", "sync wal"],
    );
    let flush_steps = [
        "create sst",
        "append sst",
        "sync sst",
        "append MANIFEST",
        "sync MANIFEST",
        "remove wal",
    ];
    assert!(
        flush_steps.iter().any(|l| cov.first_failed.contains_key(*l)),
        "no fault interrupted a racing flush: {:?}",
        cov.first_failed
    );
}

#[test]
fn commits_without_sync_writes_survive_process_kill_at_every_step() {
    commit_sweep(
        "no sync_writes",
        false,
        true,
        &[
            "create wal",
            "append wal",
            "create sst",
            "sync sst",
            "append MANIFEST",
            "sync MANIFEST",
            "remove wal",
        ],
    );
}

// ---------------------------------------------------------------------------
// 3: the flush of one memtable interrupted at every step.

/// The index of the first transaction whose commit rotates the memtable.
fn rotation_trigger(o: &Options, wl: &[Txn]) -> usize {
    let db = Db::open_with_vfs(o.clone(), Arc::new(MemVfs::new())).unwrap();
    for (i, txn) in wl.iter().enumerate() {
        commit(&db, txn).unwrap();
        db.wait_for_flushes().unwrap();
        if db.stats().flushes > 0 {
            db.close().unwrap();
            return i;
        }
    }
    panic!("the workload never rotates the memtable");
}

#[test]
fn flush_interrupted_at_every_step() {
    let started = Instant::now();
    let name = "flush";
    let o = opts(true);
    let wl = workload(11, 40);
    let trigger = rotation_trigger(&o, &wl);
    assert!(trigger > 0);
    let flush_labels = [
        "create sst",
        "append sst",
        "sync sst",
        "sync dir",
        "append MANIFEST",
        "sync MANIFEST",
        "remove wal",
    ];
    let mut cov = Coverage::default();
    let mut orphans_cleaned = 0;
    let mut wal_and_table = 0;

    // Rotation: commit wl[..trigger], then arm the fault and commit wl[trigger].
    // The flush races the triggering commit's own WAL append, so a few rounds
    // with the window shifted make sure every flush step is interrupted.
    for round in 0..3 {
        let window = {
            let t = Traced::new(MemVfs::new());
            let (db, s) = run_session(&t, &o, &wl[..trigger], true);
            let db = db.unwrap();
            assert_eq!(s.acked(), trigger);
            let c0 = t.fs.op_count();
            commit(&db, &wl[trigger]).unwrap();
            settle(&t, &db);
            let labels: Vec<String> = (c0..t.fs.op_count()).filter_map(|i| t.label_at(i)).collect();
            for l in flush_labels {
                assert!(
                    labels.iter().any(|x| x == l),
                    "the triggering commit's ops lack `{l}`: {labels:?}"
                );
            }
            t.fs.op_count() - c0
        };
        for k in 0..=window + round {
            let t = Traced::new(MemVfs::new());
            let (db, s) = run_session(&t, &o, &wl[..trigger], true);
            let db = db.unwrap();
            assert_eq!(s.acked(), trigger);
            let n = t.fs.op_count() + k;
            t.fs.fail_from_op(n);
            let r = commit(&db, &wl[trigger]);
            settle(&t, &db);
            let first = t.first_failure();
            cov.hit(first.as_ref().map(|r| r.label.clone()));
            let mut session = s;
            session.outcomes.push(r.map_err(|e| e.to_string()));
            let crashes = [
                ("power loss".to_string(), t.fs.crash(CrashMode::PowerLoss)),
                (
                    "torn power loss".to_string(),
                    t.fs.crash(CrashMode::TornPowerLoss { seed: n + 1 }),
                ),
                ("process kill".to_string(), t.fs.crash(CrashMode::ProcessKill)),
            ];
            drop(db);
            let cands = session.candidates(&State::new(), &wl[..=trigger]);
            for (mode, fs) in crashes {
                let ctx = format!(
                    "{name}: rotation, fail_from_op({n}) [first failure: {:?}], {mode}; {}",
                    first.as_ref().map(|r| &r.label),
                    session.summary()
                );
                let before = files(&fs, &ctx);
                if before.ssts.difference(&before.manifest_tables).next().is_some() {
                    orphans_cleaned += 1;
                }
                if before.mems > 1 && !before.manifest_tables.is_empty() {
                    wal_and_table += 1;
                }
                check_recovered(&fs, &o, &cands, &ctx);
                cov.recoveries += 1;
            }
        }
        if flush_labels.iter().all(|l| cov.first_failed.contains_key(*l)) {
            break;
        }
    }

    // Close: the mutable memtable is flushed by `close` with no writer
    // running, so the operation order is fixed.
    let few = &wl[..trigger.min(5)];
    let window = {
        let t = Traced::new(MemVfs::new());
        let (db, _) = run_session(&t, &o, few, true);
        let db = db.unwrap();
        let c0 = t.fs.op_count();
        db.close().unwrap();
        t.fs.op_count() - c0
    };
    for k in 0..=window {
        let t = Traced::new(MemVfs::new());
        let (db, s) = run_session(&t, &o, few, true);
        let db = db.unwrap();
        assert_eq!(s.acked(), few.len());
        let n = t.fs.op_count() + k;
        t.fs.fail_from_op(n);
        let closed = db.close();
        let first = t.first_failure();
        if k < window {
            assert!(
                closed.is_err(),
                "{name}: close with fail_from_op({n}) returned Ok"
            );
        }
        cov.hit(first.as_ref().map(|r| r.label.clone()));
        let crashes = [
            ("power loss".to_string(), t.fs.crash(CrashMode::PowerLoss)),
            (
                "torn power loss".to_string(),
                t.fs.crash(CrashMode::TornPowerLoss { seed: n + 1 }),
            ),
            ("process kill".to_string(), t.fs.crash(CrashMode::ProcessKill)),
        ];
        drop(db);
        let cands = s.candidates(&State::new(), few);
        for (mode, fs) in crashes {
            let ctx = format!(
                "{name}: close, fail_from_op({n}) [first failure: {:?}], {mode}",
                first.as_ref().map(|r| &r.label)
            );
            let before = files(&fs, &ctx);
            if before.ssts.difference(&before.manifest_tables).next().is_some() {
                orphans_cleaned += 1;
            }
            check_recovered(&fs, &o, &cands, &ctx);
            cov.recoveries += 1;
        }
    }
    cov.report(name, started);
    eprintln!("    {orphans_cleaned} crashes left a table the MANIFEST does not name (deleted at reopen)");
    eprintln!("    {wal_and_table} crashes left both a flushed memtable's WAL and its table");
    cov.require(name, &flush_labels);
    assert!(
        orphans_cleaned > 0,
        "no crash left an orphan table: the sweep missed the window"
    );
}

// ---------------------------------------------------------------------------
// 4: one transient fault.

/// One transient fault at operation `n` (`None` when `n` falls in the open).
/// Returns the label of the operation that failed, and whether it was the
/// flush thread's (which poisons the database behind the committers' backs).
fn transient_point(
    name: &str,
    o: &Options,
    wl: &[Txn],
    n: u64,
    cov: &mut Coverage,
) -> Option<(Option<String>, bool)> {
    let t = Traced::new(MemVfs::new());
    let db = Db::open_with_vfs(o.clone(), Arc::new(t.clone()))
        .unwrap_or_else(|e| panic!("{name}: fault-free open: {e}"));
    if n < t.fs.op_count() {
        return None;
    }
    t.fs.fail_op_once(n);
    let mut s = Session::default();
    for txn in wl {
        let r = commit(&db, txn);
        if s.outcomes.len() > s.acked() {
            // Already failed once: every later commit must be refused.
            assert!(
                matches!(r, Err(Error::WritesPoisoned { .. })),
                "{name}: fail_op_once({n}): a commit after a failed one returned {r:?}"
            );
            continue;
        }
        s.outcomes.push(r.map_err(|e| e.to_string()));
        settle(&t, &db);
    }
    let first = t.first_failure();
    cov.hit(first.as_ref().map(|r| r.label.clone()));
    cov.note_failed_commit(&s);
    let ctx = format!(
        "{name}: fail_op_once({n}) [{:?}]; {}",
        first.as_ref().map(|r| &r.label),
        s.summary()
    );
    let cands = s.candidates(&State::new(), wl);
    let by_flush = first.as_ref().is_some_and(|r| {
        ["sst", "MANIFEST", "remove wal"]
            .iter()
            .any(|k| r.label.contains(k))
    });
    if first.is_some() {
        // The fault was hit: the database must now refuse writes, keep
        // serving reads, and report the failure on close.
        let w = db.wait_for_flushes();
        assert!(
            matches!(w, Err(Error::WritesPoisoned { .. })),
            "{ctx}: wait_for_flushes after a fault: {w:?}"
        );
        let r = db.update(|t| t.set(b"after".to_vec(), b"x".to_vec()));
        assert!(
            matches!(r, Err(Error::WritesPoisoned { .. })),
            "{ctx}: a commit after the fault returned {r:?}"
        );
        let got = read_state(&db, &ctx);
        assert!(
            cands.contains(&got),
            "{ctx}: reads after the fault:{}",
            describe_diff(&got, &cands[0])
        );
    }
    let crashed = t.fs.crash(CrashMode::PowerLoss);
    let closed = db.close();
    if first.is_some() {
        assert!(
            matches!(closed, Err(Error::WritesPoisoned { .. })),
            "{ctx}: close of a poisoned database: {closed:?}"
        );
    } else {
        closed.unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    }
    drop(db);
    check_recovered(&t.fs, o, &cands, &format!("{ctx}, reopened in place"));
    check_recovered(&crashed, o, &cands, &format!("{ctx}, power loss"));
    cov.recoveries += 2;
    Some((first.map(|r| r.label), by_flush))
}

#[test]
fn a_transient_fault_poisons_writes_and_reopen_recovers() {
    let started = Instant::now();
    let name = "transient fault";
    let o = opts(true);
    let wl = workload(23, 40);
    let (total, clean) = count_ops(&o, &wl, true);
    let required = [
        "append wal",
        "sync wal",
        "create wal",
        "create sst",
        "sync sst",
        "sync MANIFEST",
        "remove wal",
    ];
    let mut cov = Coverage::default();
    let mut poisoned_by_flush = 0;
    for n in 0..total {
        if let Some((_, true)) = transient_point(name, &o, &wl, n, &mut cov) {
            poisoned_by_flush += 1;
        }
    }
    retry_missing(&mut cov, &clean, total, &required, |n, cov| {
        transient_point(name, &o, &wl, n, cov);
    });
    cov.report(name, started);
    eprintln!("    {poisoned_by_flush} faults hit the flush thread");
    cov.require(name, &required);
    assert!(poisoned_by_flush > 0);
}

// ---------------------------------------------------------------------------
// 5: a fault during recovery.

#[test]
fn recovery_interrupted_at_every_step() {
    let started = Instant::now();
    let name = "recovery";
    let o = opts(true);
    let wl = workload(31, 40);
    let first_part = 25;
    // Build a directory a crash left messy: run until a fault stops the
    // process between a WAL append and its sync, in the middle of the
    // workload, then tear the power.
    let (base_fs, base_cands) = {
        let (total, clean) = count_ops(&o, &wl[..first_part], true);
        // The last WAL sync of the run: its append is kept (torn) but not synced.
        let last_sync = (0..total)
            .rev()
            .find(|&i| clean.label_at(i).as_deref() == Some("sync wal"))
            .expect("a WAL sync");
        let t = Traced::new(MemVfs::new());
        t.fs.fail_from_op(last_sync);
        let (db, s) = run_session(&t, &o, &wl[..first_part], true);
        assert_eq!(s.outcomes.len(), first_part, "{}", s.summary());
        // Keep part of the unsynced bytes of the newest WAL: a torn transaction.
        let newest =
            t.fs.list_dir(&dir())
                .unwrap()
                .into_iter()
                .filter(|e| e.name.ends_with(".mem"))
                .map(|e| e.name)
                .max();
        let wal = dir().join(newest.expect("a WAL"));
        let len = |fs: &MemVfs| fs.contents(&wal).map_or(0, |c| c.len());
        let (full, synced) = (len(&t.fs), len(&t.fs.crash(CrashMode::PowerLoss)));
        assert!(full > synced, "the last commit's bytes are unsynced");
        let chosen = (0..64)
            .map(|seed| t.fs.crash(CrashMode::TornPowerLoss { seed }))
            .find(|fs| (synced + 1..full).contains(&len(fs)));
        drop(db);
        let fs = chosen.expect("a seed that tears the last transaction");
        let f = files(&fs, name);
        assert!(
            f.mems >= 2 && !f.ssts.is_empty(),
            "a flushed WAL came back next to its table: {:?}",
            f.names
        );
        // And an orphan table, as a crash between a table's sync and its
        // MANIFEST record leaves.
        fs.put_file(&dir().join("000099.sst"), b"not a table");
        (fs, s.candidates(&State::new(), &wl[..first_part]))
    };
    // What a fault-free recovery finds.
    let base_state = {
        let fs = base_fs.crash(CrashMode::ProcessKill);
        let db = Db::open_with_vfs(o.clone(), Arc::new(fs.clone())).unwrap();
        let s = read_state(&db, name);
        db.close().unwrap();
        assert_eq!(base_cands.len(), 2);
        assert_eq!(s, base_cands[0], "the torn transaction must be dropped");
        s
    };
    let rest = &wl[first_part..];
    let (total, clean) = {
        let t = Traced::new(base_fs.crash(CrashMode::ProcessKill));
        let (db, s) = run_session(&t, &o, rest, true);
        assert_eq!(s.acked(), rest.len());
        db.unwrap().close().unwrap();
        (t.fs.op_count(), t)
    };
    let labels = clean.labels();
    for want in ["set_len wal", "remove sst"] {
        assert!(
            labels.iter().any(|l| l.ends_with(want)),
            "recovery never did `{want}`: {labels:?}"
        );
    }
    let point = |n: u64, cov: &mut Coverage| {
        let t = Traced::new(base_fs.crash(CrashMode::ProcessKill));
        t.fs.fail_from_op(n);
        let (db, s) = run_session(&t, &o, rest, true);
        let first = t.first_failure();
        cov.hit(first.as_ref().map(|r| r.label.clone()));
        cov.note_failed_commit(&s);
        let mut crashes = vec![
            ("power loss".to_string(), t.fs.crash(CrashMode::PowerLoss)),
            ("process kill".to_string(), t.fs.crash(CrashMode::ProcessKill)),
        ];
        for seed in torn_seeds(n) {
            crashes.push((
                format!("torn power loss {seed:#x}"),
                t.fs.crash(CrashMode::TornPowerLoss { seed }),
            ));
        }
        drop(db);
        let cands = s.candidates(&base_state, rest);
        for (mode, fs) in crashes {
            let ctx = format!(
                "{name}: fail_from_op({n}) [first failure: {:?}], {mode}; {}",
                first.as_ref().map(|r| &r.label),
                s.summary()
            );
            check_recovered(&fs, &o, &cands, &ctx);
            cov.recoveries += 1;
        }
    };
    let required = [
        "set_len wal",
        "remove sst",
        "remove wal",
        "create sst",
        "sync MANIFEST",
        "append wal",
    ];
    let mut cov = Coverage::default();
    for n in 0..=total {
        point(n, &mut cov);
    }
    retry_missing(&mut cov, &clean, total, &required, point);
    cov.report(name, started);
    cov.require(name, &required);
}

// ---------------------------------------------------------------------------
// Bugs found by the sweeps, each reduced to a small reproducer.

/// A commit whose WAL append (or sync) fails must report the failure. It
/// gets `Error::Closed` instead: `Writer::process` (db/write.rs) sets
/// `start` past the failed segment whether or not `commit_segment`
/// succeeded, so `batch.drain(start..)` sends no error to the failed
/// requests, `batch.clear()` drops their reply channels, and `Txn::commit`
/// maps the closed channel to `Error::Closed`.
#[test]
fn failed_commit_reports_its_cause() {
    for (what, offset) in [("append", 0), ("sync", 1)] {
        let fs = MemVfs::new();
        let db = Db::open_with_vfs(opts(true), Arc::new(fs.clone())).unwrap();
        db.update(|t| t.set(b"a".to_vec(), b"1".to_vec())).unwrap();
        // The next operation is the WAL append of the next commit; the one after, its sync.
        fs.fail_op_once(fs.op_count() + offset);
        let r = db.update(|t| t.set(b"b".to_vec(), b"2".to_vec()));
        assert!(!db.is_closed());
        match r {
            Err(Error::WritesPoisoned { cause }) => {
                assert!(cause.contains("injected fault"), "{what}: {cause}")
            }
            other => panic!(
                "WAL {what} failed; the commit returned {other:?}, want WritesPoisoned naming the I/O error"
            ),
        }
        let later = db.update(|t| t.set(b"c".to_vec(), b"3".to_vec()));
        assert!(matches!(later, Err(Error::WritesPoisoned { .. })), "{later:?}");
    }
}

/// Commits `k` and fillers so that the first memtable holds `k = old`, then
/// fillers, then `k = new`, and the commit that rotates it writes only a
/// filler (so the second WAL never mentions `k`). Every commit is one key of
/// the same length with a 100-byte value, so a dry run finds the rotation.
fn stale_wal_scenario(fs: &MemVfs) -> Db {
    let o = opts(false);
    let value = |tag: &str| {
        let mut v = tag.as_bytes().to_vec();
        v.resize(100, b'.');
        v
    };
    let rotating = {
        let dry = MemVfs::new();
        let db = Db::open_with_vfs(o.clone(), Arc::new(dry.clone())).unwrap();
        (0..)
            .find(|i| {
                db.update(|t| t.set(format!("f{i:03}").into_bytes(), value("filler")))
                    .unwrap();
                dry.exists(&dir().join("00002.mem"))
            })
            .unwrap()
    };
    assert!(rotating > 3);
    let db = Db::open_with_vfs(o, Arc::new(fs.clone())).unwrap();
    for i in 0..=rotating {
        let (k, v) = match i {
            0 => (b"k00".to_vec(), value("old")),
            _ if i == rotating - 1 => (b"k00".to_vec(), value("new")),
            _ => (format!("f{i:03}").into_bytes(), value("filler")),
        };
        db.update(|t| t.set(k, v)).unwrap();
    }
    // Wait for the flush of the first memtable, including its WAL deletion.
    db.wait_for_flushes().unwrap();
    while fs.exists(&dir().join("00001.mem")) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    db
}

/// A flushed memtable's WAL whose deletion a power loss undoes (the deletion
/// is never followed by a directory sync, see docs/durability.md) comes back
/// with whatever prefix of its unsynced bytes reached the disk. Replayed, it
/// becomes a memtable searched *before* the table that holds newer versions
/// of the same keys, and `get` (db/read.rs `get_raw`: the first source with
/// any version wins; likewise `Tree::get` across L0 tables) returns the older
/// version while iteration (which merges by version) returns the newer one.
/// Once the replayed memtable is flushed it becomes the newest L0 table and
/// the stale answer is permanent. Badger's `db.get`/`levelHandler.get` keep
/// the highest version seen across memtables and tables (`maxVs`), which
/// makes this harmless there. Needs only `sync_writes(false)` and a torn
/// power loss; no fault injection.
#[test]
fn a_resurrected_wal_must_not_shadow_newer_versions() {
    let fs = MemVfs::new();
    let db = stale_wal_scenario(&fs);
    let wal = dir().join("00001.mem");
    // Find a torn power loss that brings the first WAL back holding `k = old`
    // but not `k = new`.
    let crashed = (0..200)
        .map(|seed| fs.crash(CrashMode::TornPowerLoss { seed }))
        .find(|c| {
            let Some(bytes) = c.contents(&wal) else {
                return false;
            };
            let has = |tag: &[u8]| bytes.windows(tag.len()).any(|w| w == tag);
            has(b"old....") && !has(b"new....")
        })
        .expect("a seed that keeps part of the first WAL");
    drop(db);
    let o = opts(false);
    for round in [
        "after the crash",
        "after the replayed WAL was flushed, closed and reopened",
    ] {
        let db = Db::open_with_vfs(o.clone(), Arc::new(crashed.clone())).unwrap();
        let got = db.view(|t| t.get(b"k00")).unwrap().unwrap();
        let scanned = db
            .begin_read()
            .iter(IterOptions::default().prefix(b"k00"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert!(
            scanned.value_ref().starts_with(b"new"),
            "{round}: the table's newer version is gone"
        );
        assert!(
            got.value_ref().starts_with(b"new"),
            "{round}: get(k00) returned version {} ({:?}) while iteration returns version {} ({:?})",
            got.version(),
            String::from_utf8_lossy(&got.value_ref()[..3]),
            scanned.version(),
            String::from_utf8_lossy(&scanned.value_ref()[..3]),
        );
        db.close().unwrap();
    }
}

/// The sweep that found the bug above: without `sync_writes`, a torn power
/// loss at any step must leave reads that agree with each other and the
/// state after some prefix of the commits.
#[test]
fn torn_power_loss_without_sync_writes_keeps_reads_consistent() {
    let name = "torn power loss, no sync_writes";
    let o = opts(false);
    let wl = workload(7, 30);
    let (total, _) = count_ops(&o, &wl, true);
    let mut cov = Coverage::default();
    let modes: Vec<CrashMode> = (0..3).map(|seed| CrashMode::TornPowerLoss { seed }).collect();
    for n in 0..=total {
        commit_point(name, &o, &wl, n, total, true, &[], &modes, &mut cov);
    }
}
