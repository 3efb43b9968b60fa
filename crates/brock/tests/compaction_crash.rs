//! Crashes during compaction.
//!
//! 1. On the crash-simulating `MemVfs`: a tree with data in L0, L2 and L3
//!    (hand-placed, no background compaction), then `flatten(1)` with a fault
//!    injected from every file-system operation in turn (`fail_from_op(n)`:
//!    the process "stops" at operation `n`): output table creates, appends
//!    and syncs, the directory sync, the MANIFEST append and sync, and the
//!    removal of the inputs. Each point is crashed as a power loss, a torn
//!    power loss and a process kill, reopened without faults, and checked:
//!    the contents equal the model, every `.sst` file is named by the
//!    MANIFEST and every table it names exists, and the recovered database
//!    flattens, closes and reopens to the same contents. The same with the
//!    background compactors doing the work (an L0 compaction and whatever
//!    follows), where the operation order varies from run to run.
//! 2. The same sweep over `drop_prefix` and `drop_all`: after a crash part
//!    way, each key holds its latest value or is gone; never an older value.
//! 3. SIGKILL: a child process (this test binary re-executed, as
//!    `crash_kill.rs` does) commits continuously with 16 KiB memtables and two
//!    compactors, acknowledging each commit on stdout; the parent kills it at
//!    random moments, reopens, and checks that the state is exactly the
//!    first `L` transactions for some `L` at least every acknowledged one, and
//!    that no table is missing (before the open) or left over (after it).
//!
//! Every sweep reports which kinds of operation it interrupted (run with
//! `--nocapture`) and requires the compaction's own.
//!
//! Ignored tests reproduce library bugs: `flatten_with_a_transient_fault_at_every_step`
//! (a failed MANIFEST sync makes a compaction delete tables the MANIFEST may
//! name), `drop_prefix_interrupted_at_every_step` (a crash part way through
//! `drop_prefix` leaves overwritten values visible), and
//! `a_failed_flatten_drop_prefix_or_drop_all_poisons_writes`. The known
//! overlap bug of compaction.rs (`concurrent_compactions_never_commit_overlapping_tables`)
//! is met now and then by the two-compactor parts; they note it and go on.
//! Environment:
//! `BROCK_COMPACTION_KILLS=<n>` kills (default 20), `BROCK_COMPACTION_SEED=<u64>`
//! the kill delays' seed (printed).

mod common;

use common::Rng;
use common::traced::{DIR, Traced};

use brock::inspect::{DirView, ViewOptions};
use brock::levels::replay_manifest;
use brock::vfs::{CrashMode, FileKind, MemVfs, Vfs, classify};
use brock::{Db, Entry, Error, IterOptions, Options, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// 16 KiB memtables, 8 KiB tables, a 32 KiB base level, ×4 per level, four
/// levels; no background compaction and no L0 stall (the tests place tables
/// by hand).
fn placed() -> Options {
    Options::new(DIR)
        .with_mem_table_size(16 << 10)
        .with_value_threshold(1000)
        .with_base_table_size(8 << 10)
        .with_base_level_size(32 << 10)
        .with_level_size_multiplier(4)
        .with_num_level_zero_tables(2)
        .with_num_level_zero_tables_stall(1000)
        .with_num_compactors(0)
        .with_max_levels(4)
        .with_block_size(1024)
        .with_block_cache_size(1 << 20)
}

/// As [`placed`], with compactors that take L0 as soon as it holds a table.
fn with_compactors() -> Options {
    placed()
        .with_num_compactors(2)
        .with_num_level_zero_tables(1)
        .with_num_level_zero_tables_stall(2)
}

/// The printable start of a key or value (values are `tag:i:` and random bytes).
fn show(b: &[u8]) -> String {
    let n = b.iter().take(24).take_while(|c| c.is_ascii_graphic()).count();
    let mut s = String::from_utf8_lossy(&b[..n]).into_owned();
    if n < b.len() {
        s.push('…');
    }
    s
}

fn describe_diff(got: &State, want: &State) -> String {
    let keys: BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    let mut out = String::new();
    let mut n = 0;
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            n += 1;
            if n <= 10 {
                out.push_str(&format!(
                    "\n    {}: got {}, want {}",
                    show(k),
                    g.map_or("absent".into(), |v| show(v)),
                    w.map_or("absent".into(), |v| show(v))
                ));
            }
        }
    }
    format!("{n} keys differ{out}")
}

// ---------------------------------------------------------------------------
// Checking a recovered directory.

/// Table files in the directory and tables the MANIFEST names.
fn table_sets(vfs: &dyn Vfs, dir: &Path, ctx: &str) -> (BTreeSet<u64>, BTreeMap<u64, u32>) {
    let present = vfs
        .list_dir(dir)
        .unwrap_or_else(|e| panic!("{ctx}: list: {e}"))
        .iter()
        .filter_map(|e| match classify(&e.name) {
            Some(FileKind::Sst(id)) => Some(id),
            _ => None,
        })
        .collect();
    let path = dir.join("MANIFEST");
    let bytes = vfs
        .read_all(&path)
        .unwrap_or_else(|e| panic!("{ctx}: read MANIFEST: {e}"));
    let named = replay_manifest(&bytes, &path, None)
        .unwrap_or_else(|e| panic!("{ctx}: replay MANIFEST: {e}"))
        .manifest
        .tables
        .iter()
        .map(|(&id, t)| (id, t.level))
        .collect();
    (present, named)
}

/// Every table the MANIFEST names exists; with `no_leaks`, every table file
/// is named too.
fn check_tables(vfs: &dyn Vfs, dir: &Path, no_leaks: bool, ctx: &str) {
    let (present, named) = table_sets(vfs, dir, ctx);
    let missing: Vec<_> = named.keys().filter(|id| !present.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{ctx}: tables the MANIFEST names are missing: {missing:?}"
    );
    if no_leaks {
        let leaked: Vec<_> = present.iter().filter(|id| !named.contains_key(id)).collect();
        assert!(
            leaked.is_empty(),
            "{ctx}: table files the MANIFEST does not name: {leaked:?}"
        );
    }
}

fn read_state(db: &Db, ctx: &str) -> State {
    let mut out = State::new();
    for item in db
        .begin_read()
        .iter(IterOptions::default())
        .unwrap_or_else(|e| panic!("{ctx}: iter: {e}"))
    {
        let item = item.unwrap_or_else(|e| panic!("{ctx}: scan: {e}"));
        out.insert(item.key().to_vec(), item.value_ref().to_vec());
    }
    for (k, v) in out.iter().step_by(17) {
        let got = db
            .view(|t| t.get(k))
            .unwrap_or_else(|e| panic!("{ctx}: get: {e}"));
        assert_eq!(
            got.map(|i| i.value_ref().to_vec()).as_ref(),
            Some(v),
            "{ctx}: get vs scan for {}",
            show(k)
        );
    }
    out
}

/// Reopens a crashed file system and checks it: the MANIFEST's tables all
/// exist, the open removes the leftovers, `accept` likes the contents, and
/// the database flattens, closes and reopens to the same contents. `None`
/// when the known overlap bug left a directory that does not open.
fn check_recovered(
    fs: &MemVfs,
    ctx: &str,
    accept: &dyn Fn(&State) -> std::result::Result<(), String>,
) -> Option<State> {
    fs.clear_faults();
    check_tables(fs, &dir(), false, &format!("{ctx}, before reopening"));
    let db = match Db::open_with_vfs(placed(), Arc::new(fs.clone())) {
        Ok(db) => db,
        Err(e) if is_overlap_bug(&e) => {
            eprintln!(
                "KNOWN BUG ({ctx}): {e}; see compaction.rs concurrent_compactions_never_commit_overlapping_tables"
            );
            return None;
        }
        Err(e) => panic!("{ctx}: reopen: {e}"),
    };
    db.wait_for_flushes()
        .unwrap_or_else(|e| panic!("{ctx}: flushing replayed WALs: {e}"));
    check_tables(fs, &dir(), true, &format!("{ctx}, reopened"));
    let got = read_state(&db, ctx);
    if let Err(e) = accept(&got) {
        panic!("{ctx}: {e}");
    }
    // The offline view agrees.
    let view =
        DirView::open_with(fs, ViewOptions::new(DIR)).unwrap_or_else(|e| panic!("{ctx}: DirView: {e}"));
    let offline: State = view
        .latest(u64::MAX)
        .unwrap_or_else(|e| panic!("{ctx}: DirView: {e}"))
        .map(|v| v.map(|v| (v.key, v.value)))
        .collect::<Result<_>>()
        .unwrap_or_else(|e| panic!("{ctx}: DirView: {e}"));
    assert!(
        offline == got,
        "{ctx}: the offline view vs the engine: {}",
        describe_diff(&offline, &got)
    );
    // And the recovered tree compacts and reopens cleanly.
    db.flatten(1)
        .unwrap_or_else(|e| panic!("{ctx}: flatten after recovery: {e}"));
    let flat = read_state(&db, ctx);
    assert!(
        flat == got,
        "{ctx}: flattening the recovered tree changed it: {}",
        describe_diff(&flat, &got)
    );
    db.close()
        .unwrap_or_else(|e| panic!("{ctx}: close after recovery: {e}"));
    drop(db);
    check_tables(fs, &dir(), true, &format!("{ctx}, closed after recovery"));
    let db = Db::open_with_vfs(placed(), Arc::new(fs.clone()))
        .unwrap_or_else(|e| panic!("{ctx}: second reopen: {e}"));
    let again = read_state(&db, ctx);
    assert!(
        again == got,
        "{ctx}: after a clean close and reopen: {}",
        describe_diff(&again, &got)
    );
    db.close().unwrap_or_else(|e| panic!("{ctx}: second close: {e}"));
    Some(got)
}

/// How often each kind of operation was the first to fail.
#[derive(Default)]
struct Coverage {
    first_failed: BTreeMap<String, usize>,
    points: usize,
    recoveries: usize,
    /// Recoveries whose contents were neither a state before the operation
    /// nor the one after it.
    partial: usize,
    partial_example: Option<String>,
    /// Points where the known overlap bug (not the fault) left a directory
    /// that does not open.
    known_bug: usize,
}

impl Coverage {
    fn hit(&mut self, label: Option<String>) {
        self.points += 1;
        *self
            .first_failed
            .entry(label.unwrap_or_else(|| "(no fault hit)".into()))
            .or_default() += 1;
    }

    fn report(&self, name: &str, started: Instant) {
        eprintln!(
            "{name}: {} points, {} recoveries checked ({} partial, {} stopped by the known overlap bug), {:.1?}",
            self.points,
            self.recoveries,
            self.partial,
            self.known_bug,
            started.elapsed()
        );
        for (label, n) in &self.first_failed {
            eprintln!("    {n:4} × first failure at `{label}`");
        }
        if let Some(e) = &self.partial_example {
            eprintln!("    a partial recovery: {e}");
        }
    }

    fn require(&self, name: &str, labels: &[&str]) {
        for l in labels {
            assert!(
                self.first_failed.contains_key(*l),
                "{name}: no point interrupted `{l}`: {:?}",
                self.first_failed
            );
        }
    }
}

fn crashes(fs: &MemVfs, n: u64) -> Vec<(String, MemVfs)> {
    let seed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    vec![
        ("power loss".into(), fs.crash(CrashMode::PowerLoss)),
        (
            format!("torn power loss {seed:#x}"),
            fs.crash(CrashMode::TornPowerLoss { seed }),
        ),
        ("process kill".into(), fs.crash(CrashMode::ProcessKill)),
    ]
}

// ---------------------------------------------------------------------------
// The tree the sweeps start from.

fn key(prefix: &str, i: u64) -> Vec<u8> {
    format!("{prefix}{i:04}").into_bytes()
}

fn value(tag: &str, i: u64) -> Vec<u8> {
    let mut v = format!("{tag}:{i}:").into_bytes();
    v.extend(Rng(i ^ (tag.len() as u64) << 48 ^ u64::from(tag.as_bytes()[0])).bytes(90));
    v
}

struct Image {
    fs: MemVfs,
    state: State,
    /// Tables per level.
    levels: BTreeMap<usize, usize>,
}

fn write(db: &Db, state: &mut State, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    for chunk in ops.chunks(10) {
        db.update(|t| {
            for (k, v) in chunk {
                match v {
                    Some(v) => t.set(k.clone(), v.clone())?,
                    None => t.delete(k.clone())?,
                }
            }
            Ok(())
        })
        .expect("write");
        for (k, v) in chunk {
            match v {
                Some(v) => state.insert(k.clone(), v.clone()),
                None => state.remove(k),
            };
        }
    }
}

fn reopen(fs: &MemVfs, db: Db, opts: Options) -> Db {
    db.close().expect("close");
    drop(db);
    Db::open_with_vfs(opts, Arc::new(fs.clone())).expect("reopen")
}

/// Moves L0 (and the memtable) into the base level with the compactors.
fn compact_l0_to_base(fs: &mut MemVfs, db: Db) -> Db {
    db.close().expect("close");
    drop(db);
    // The two compactors race into the known overlap bug now and then (see
    // compaction.rs `concurrent_compactions_never_commit_overlapping_tables`):
    // each attempt runs on a copy, and one the bug broke is retried.
    for attempt in 0..10 {
        let copy = fs.crash(CrashMode::ProcessKill);
        let db = Db::open_with_vfs(with_compactors(), Arc::new(copy.clone())).expect("open with compactors");
        let deadline = Instant::now() + Duration::from_secs(10);
        while db.tables().iter().any(|t| t.level == 0) {
            assert!(Instant::now() < deadline, "L0 was not compacted");
            std::thread::sleep(Duration::from_millis(5));
        }
        db.close().expect("close");
        match Db::open_with_vfs(placed(), Arc::new(copy.clone())) {
            Ok(db) => {
                *fs = copy;
                return db;
            }
            Err(e) if is_overlap_bug(&e) => {
                eprintln!("KNOWN BUG (L0 → base, attempt {attempt}): {e}; retrying on a fresh copy");
            }
            Err(e) => panic!("reopen after L0 → base: {e}"),
        }
    }
    panic!("L0 → base kept hitting the known overlap bug");
}

/// `prefix` keys in L3 (tag `old`), overwritten in part in L2 (`mid`) and L0
/// (`new`), with deletes in each; `o/` keys in L3 beside them.
fn build_image(prefix: &str, n: u64) -> Image {
    let mut fs = MemVfs::new();
    let mut state = State::new();
    let db = Db::open_with_vfs(placed(), Arc::new(fs.clone())).expect("open");
    write(
        &db,
        &mut state,
        (0..n).map(|i| (key(prefix, i), Some(value("old", i)))).collect(),
    );
    write(
        &db,
        &mut state,
        (0..n / 4)
            .map(|i| (key("o/", i), Some(value("old", i))))
            .collect(),
    );
    let db = reopen(&fs, db, placed());
    db.flatten(1).expect("flatten");
    let mid: Vec<_> = (0..n)
        .step_by(5)
        .map(|i| {
            (
                key(prefix, i),
                if i % 15 == 0 { None } else { Some(value("mid", i)) },
            )
        })
        .chain((n..n + 20).map(|i| (key(prefix, i), Some(value("mid", i)))))
        .collect();
    write(&db, &mut state, mid);
    let db = compact_l0_to_base(&mut fs, db);
    let ops = (0..n)
        .step_by(7)
        .map(|i| {
            (
                key(prefix, i),
                if i % 21 == 0 { None } else { Some(value("new", i)) },
            )
        })
        .collect();
    write(&db, &mut state, ops);
    let db = reopen(&fs, db, placed());
    let ops = (0..n)
        .step_by(9)
        .map(|i| {
            (
                key(prefix, i),
                if i % 27 == 0 {
                    None
                } else {
                    Some(value("newer", i))
                },
            )
        })
        .collect();
    write(&db, &mut state, ops);
    let db = reopen(&fs, db, placed());
    let mut levels = BTreeMap::<usize, usize>::new();
    for t in db.tables() {
        *levels.entry(t.level).or_insert(0) += 1;
    }
    assert!(
        levels.contains_key(&0) && levels.contains_key(&2) && levels.contains_key(&3),
        "{levels:?}"
    );
    assert_eq!(read_state(&db, "image"), state);
    db.close().expect("close");
    Image { fs, state, levels }
}

// ---------------------------------------------------------------------------
// 1 and 2: faults at every operation of a compaction, a drop_prefix, a drop_all.

/// One session on a copy of the image: open with `opts`, arm the fault at
/// operation `n` after the open (none for `None`), run `op`, close. Returns
/// the traced file system, the operation count at the fault's origin, and
/// `op`'s result.
#[derive(Debug, Clone, Copy)]
enum Fault {
    None,
    /// Every operation from the n-th (after the open) fails: the process stops there.
    From(u64),
    /// Only the n-th fails: a transient I/O error the process lives through.
    Once(u64),
}

fn session(
    image: &Image,
    opts: &Options,
    fault: Fault,
    op: &dyn Fn(&Db) -> Result<()>,
) -> (Traced, u64, Result<()>) {
    let t = Traced::new(image.fs.crash(CrashMode::ProcessKill));
    let db = Db::open_with_vfs(opts.clone(), Arc::new(t.clone())).expect("open the image");
    let start = t.fs.op_count();
    match fault {
        Fault::None => {}
        Fault::From(n) => t.fs.fail_from_op(start + n),
        Fault::Once(n) => t.fs.fail_op_once(start + n),
    }
    let r = op(&db);
    let _ = db.close();
    drop(db);
    (t, start, r)
}

/// Sweeps a fault over every operation of `op` (and the close after it),
/// crashing each point every way and checking the recovery with `accept`;
/// `is_whole` tells the states before and after `op` from partial ones.
#[allow(clippy::too_many_arguments)]
fn sweep(
    name: &str,
    image: &Image,
    opts: &Options,
    op: &dyn Fn(&Db) -> Result<()>,
    accept: &dyn Fn(&State) -> std::result::Result<(), String>,
    is_whole: &dyn Fn(&State) -> bool,
    required: &[&str],
    transient: bool,
) -> Coverage {
    let started = Instant::now();
    let (clean, start, r) = session(image, opts, Fault::None, op);
    r.unwrap_or_else(|e| panic!("{name}: fault-free run: {e}"));
    let total = clean.fs.op_count() - start;
    eprintln!("{name}: {total} operations: {:?}", clean.labels_from(start));
    let mut cov = Coverage::default();
    for n in 0..=total {
        let fault = if transient { Fault::Once(n) } else { Fault::From(n) };
        let (t, _, r) = session(image, opts, fault, op);
        let first = t.first_failure();
        cov.hit(first.as_ref().map(|f| f.label.clone()));
        for (mode, fs) in crashes(&t.fs, n) {
            let ctx = format!(
                "{name}: {fault:?} [first failure: {:?}; the operation returned {:?}], {mode}",
                first.as_ref().map(|f| &f.label),
                r.as_ref().err().map(ToString::to_string)
            );
            let Some(got) = check_recovered(&fs, &ctx, accept) else {
                cov.known_bug += 1;
                continue;
            };
            cov.recoveries += 1;
            if !is_whole(&got) {
                cov.partial += 1;
                if cov.partial_example.is_none() {
                    cov.partial_example =
                        Some(format!("{ctx}: {} of {} keys left", got.len(), image.state.len()));
                }
            }
        }
    }
    cov.report(name, started);
    cov.require(name, required);
    cov
}

/// The labels of a compaction's own operations.
const COMPACTION_OPS: [&str; 7] = [
    "create sst",
    "append sst",
    "sync sst",
    "sync dir",
    "append MANIFEST",
    "sync MANIFEST",
    "remove sst",
];

#[test]
fn flatten_interrupted_at_every_step() {
    let image = build_image("p/", 300);
    eprintln!("image: tables per level {:?}", image.levels);
    let want = image.state.clone();
    let accept = move |got: &State| {
        if *got == want {
            Ok(())
        } else {
            Err(format!("contents changed: {}", describe_diff(got, &want)))
        }
    };
    sweep(
        "flatten(1)",
        &image,
        &placed(),
        &|db| db.flatten(1),
        &accept,
        &|_| true,
        &COMPACTION_OPS,
        false,
    );
}

/// A transient I/O error at any step of a compaction (the process lives on):
/// the database must come back with every key, reopened in place or after a
/// crash.
///
/// When the MANIFEST sync (or the append) of a compaction fails,
/// `run_compaction` (db/compact.rs) deletes the output tables
/// (`cleanup(&outputs)`), but the change set's bytes may already be in the
/// MANIFEST file (the append succeeded; only the sync failed, and a failed
/// sync says nothing about what reached the disk). `ManifestFile::add_changes`
/// does not cut them off, so a later append, the close, or simply the page
/// cache persists a CREATE of tables that no longer exist and DELETEs of
/// tables the live tree still uses: the next open fails with `MissingFile`.
/// `flatten` does not poison the database on the error either, so the
/// session goes on compacting as if nothing had happened.
#[test]
fn flatten_with_a_transient_fault_at_every_step() {
    let image = build_image("p/", 300);
    let want = image.state.clone();
    let accept = move |got: &State| {
        if *got == want {
            Ok(())
        } else {
            Err(format!("contents changed: {}", describe_diff(got, &want)))
        }
    };
    // After a failure, carry on as an application would: flatten again.
    let op = |db: &Db| -> Result<()> {
        let first = db.flatten(1);
        let second = db.flatten(1);
        first.and(second)
    };
    sweep(
        "flatten(1), transient fault",
        &image,
        &placed(),
        &op,
        &accept,
        &|_| true,
        &COMPACTION_OPS,
        true,
    );
}

#[test]
fn background_compaction_interrupted_at_every_step() {
    let image = build_image("p/", 300);
    let want = image.state.clone();
    let accept = move |got: &State| {
        if *got == want {
            Ok(())
        } else {
            Err(format!("contents changed: {}", describe_diff(got, &want)))
        }
    };
    // The compactors take L0 at once and then whatever is over target; wait
    // until they are quiet (or the fault stopped them).
    let op = |db: &Db| -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = (u64::MAX, Instant::now());
        while Instant::now() < deadline {
            db.wait_for_flushes()?;
            let c = db.stats().compactions;
            let l0 = db.tables().iter().any(|t| t.level == 0);
            if c != last.0 {
                last = (c, Instant::now());
            } else if !l0 && last.1.elapsed() > Duration::from_millis(120) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    };
    // The order of operations varies between runs, so only the commit
    // points are required.
    // A smaller base level puts L2 over its target once L0 arrives, so L0 →
    // base is followed by Li → Li+1 compactions.
    let opts = with_compactors().with_base_level_size(8 << 10);
    let cov = sweep(
        "background compaction",
        &image,
        &opts,
        &op,
        &accept,
        &|_| true,
        &["create sst", "sync MANIFEST"],
        false,
    );
    assert!(cov.points > 10);
}

/// The latest value of each key, or nothing: never an older value.
fn latest_or_absent(
    before: &State,
    got: &State,
    dropped: &dyn Fn(&[u8]) -> bool,
) -> std::result::Result<(), String> {
    let mut problems = Vec::new();
    for (k, v) in got {
        match before.get(k) {
            Some(w) if w == v => {}
            Some(w) => problems.push(format!(
                "{} = {} (an older value), latest was {}",
                show(k),
                show(v),
                show(w)
            )),
            None => problems.push(format!("{} = {} appeared", show(k), show(v))),
        }
    }
    for k in before.keys() {
        if !dropped(k) && !got.contains_key(k) {
            problems.push(format!("{} (not dropped) is missing", show(k)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        let n = problems.len();
        problems.truncate(8);
        Err(format!("{n} problems:\n    {}", problems.join("\n    ")))
    }
}

/// `drop_prefix` stopped part way must not leave an older version of a
/// dropped key visible (see compaction.rs
/// `drop_prefix_never_shows_an_older_version_while_it_runs`: it drops from L0
/// down, publishing and committing each level's rewrite on its own, so a
/// crash after L0's rewrite leaves the older versions below for good).
#[test]
fn drop_prefix_interrupted_at_every_step() {
    let image = build_image("p/", 300);
    let before = image.state.clone();
    let accept = move |got: &State| latest_or_absent(&before, got, &|k| k.starts_with(b"p/"));
    let state = image.state.clone();
    let whole = move |got: &State| *got == state || got.keys().all(|k| !k.starts_with(b"p/"));
    let cov = sweep(
        "drop_prefix",
        &image,
        &placed(),
        &|db| db.drop_prefix(&[b"p/"]),
        &accept,
        &whole,
        &["create sst", "sync MANIFEST", "remove sst"],
        false,
    );
    eprintln!(
        "drop_prefix: {} recoveries were part way (some p/ keys left)",
        cov.partial
    );
}

#[test]
fn drop_all_interrupted_at_every_step() {
    let image = build_image("p/", 300);
    // The session also writes into the memtable (and rotates it once) before
    // dropping, so WALs are in play.
    let extra: Vec<(Vec<u8>, Vec<u8>)> = (0..150u64)
        .map(|i| (key("p/", i * 3), value("extra", i)))
        .collect();
    let mut before = image.state.clone();
    before.extend(extra.iter().cloned());
    let extra_copy = extra.clone();
    let op = move |db: &Db| -> Result<()> {
        for chunk in extra.chunks(10) {
            db.update(|t| chunk.iter().try_for_each(|(k, v)| t.set(k.clone(), v.clone())))?;
        }
        db.drop_all()
    };
    // A fault during the writes before the drop leaves the image plus the
    // transactions that committed (each of 10 keys), and perhaps the one
    // that failed.
    let mut prefixes = vec![image.state.clone()];
    for chunk in extra_copy.chunks(10) {
        let mut s = prefixes.last().cloned().unwrap_or_default();
        s.extend(chunk.iter().cloned());
        prefixes.push(s);
    }
    let whole_states = prefixes.clone();
    let accept = move |got: &State| {
        if prefixes.contains(got) {
            Ok(())
        } else {
            latest_or_absent(&before, got, &|_| true)
        }
    };
    let whole = move |got: &State| got.is_empty() || whole_states.contains(got);
    // sync_writes, so that a power loss keeps every acknowledged write (without
    // it, a torn power loss may keep later transactions of a newer WAL and lose
    // earlier ones of an older WAL, which is not what this test is about).
    let opts = placed().with_sync_writes(true);
    let cov = sweep(
        "drop_all",
        &image,
        &opts,
        &op,
        &accept,
        &whole,
        &["append MANIFEST", "remove sst"],
        false,
    );
    eprintln!("drop_all: {} recoveries kept part of the data", cov.partial);
}

// ---------------------------------------------------------------------------
// 3. SIGKILL while compactions run.

const CHILD_DIR_ENV: &str = "BROCK_COMPACTION_CHILD_DIR";
/// Keys the child writes over and over.
const KILL_KEYS: u64 = 600;
/// A child left running (say, by a dead parent) gives up after this.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

fn kill_options(dir: &Path) -> Options {
    Options::new(dir)
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
        .with_block_cache_size(1 << 20)
}

/// What transaction `t` writes: four keys set, every fifth a delete, every
/// eleventh an already-expired set (a delete too), and `meta/last = t`.
fn txn_ops(t: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let k = |i: u64| format!("k/{:04}", i % KILL_KEYS).into_bytes();
    let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..4)
        .map(|j| {
            let mut v = format!("t={t} j={j} ").into_bytes();
            v.extend(Rng(t * 4 + j).bytes(80));
            (k(t * 4 + j), Some(v))
        })
        .collect();
    if t.is_multiple_of(5) {
        ops.push((k(t * 13 + 1), None));
    }
    if t.is_multiple_of(11) {
        // Marked by an empty value: written as an entry expired in 1970.
        ops.push((k(t * 17 + 2), Some(Vec::new())));
    }
    ops.push((b"meta/last".to_vec(), Some(t.to_string().into_bytes())));
    ops
}

/// The state after transactions `1..=last`.
fn model_after(last: u64) -> State {
    let mut s = State::new();
    for t in 1..=last {
        // Within a transaction the last write of a key wins.
        for (k, v) in txn_ops(t) {
            match v {
                Some(v) if !v.is_empty() => s.insert(k, v),
                _ => s.remove(&k),
            };
        }
    }
    s
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(2);
    }
}

/// The child: commits until killed. Does nothing in a normal test run.
#[test]
fn compaction_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let started = Instant::now();
    let db = match Db::open(kill_options(Path::new(&dir))) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("child: open: {e:?}");
            std::process::exit(5);
        }
    };
    let last: u64 = db
        .view(|t| t.get(b"meta/last"))
        .expect("child: read meta/last")
        .map_or(0, |i| {
            String::from_utf8_lossy(i.value_ref()).parse().expect("a number")
        });
    emit(&format!("\nREADY {last}"));
    let mut t = last + 1;
    while started.elapsed() < CHILD_DEADLINE {
        let ops = txn_ops(t);
        let r = db.update(|txn| {
            for (k, v) in &ops {
                match v {
                    Some(v) if v.is_empty() => {
                        txn.set_entry(Entry::new(k.clone(), b"gone".to_vec()).with_expires_at(1))?
                    }
                    Some(v) => txn.set(k.clone(), v.clone())?,
                    None => txn.delete(k.clone())?,
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            eprintln!("child: commit {t}: {e:?}");
            std::process::exit(4);
        }
        emit(&format!("ACK {t}"));
        t += 1;
    }
    std::process::exit(3);
}

#[derive(Debug, Default)]
struct Acks {
    ready: Option<u64>,
    acked: Vec<u64>,
    garbage: Vec<String>,
}

fn read_acks(out: impl Read) -> Acks {
    let mut acks = Acks::default();
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["READY", n] => acks.ready = n.parse().ok(),
            ["ACK", n] => acks.acked.extend(n.parse::<u64>().ok()),
            [] | ["running", ..] | ["test", ..] => {}
            _ => acks.garbage.push(line),
        }
    }
    acks
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

fn os_tables(dir: &Path, ctx: &str) -> (BTreeSet<u64>, BTreeMap<u64, u32>) {
    table_sets(&brock::vfs::OsVfs, dir, ctx)
}

/// Verifies the directory after a kill; returns the recovered `meta/last`.
/// `Err` only for the known overlap bug (the directory does not open).
fn verify_after_kill(dir: &Path, acks: &Acks, before: u64, ctx: &str) -> std::result::Result<u64, String> {
    // No table the MANIFEST names may be missing; leftovers (outputs of a
    // compaction the kill interrupted) are allowed until the open removes them.
    let (present, named) = os_tables(dir, ctx);
    let missing: Vec<_> = named.keys().filter(|id| !present.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{ctx}: tables the MANIFEST names are missing: {missing:?}"
    );
    let leftovers = present.iter().filter(|id| !named.contains_key(id)).count();
    let db = match Db::open(kill_options(dir).with_num_compactors(0)) {
        Ok(db) => db,
        Err(e) if is_overlap_bug(&e) => return Err(e.to_string()),
        Err(e) => panic!("{ctx}: reopen: {e}"),
    };
    let got = read_state(&db, ctx);
    let last: u64 = got
        .get(&b"meta/last"[..])
        .map_or(0, |v| String::from_utf8_lossy(v).parse().expect("a number"));
    if let Some(&acked) = acks.acked.iter().max() {
        assert!(
            last >= acked,
            "{ctx}: transaction {acked} was acknowledged but meta/last is {last}"
        );
    }
    assert!(
        last >= before,
        "{ctx}: meta/last went back from {before} to {last}"
    );
    let want = model_after(last);
    assert!(
        got == want,
        "{ctx}: the state is not that after transactions 1..={last}: {}",
        describe_diff(&got, &want)
    );
    db.close().unwrap_or_else(|e| panic!("{ctx}: close: {e}"));
    drop(db);
    let (present, named) = os_tables(dir, ctx);
    let leaked: Vec<_> = present.iter().filter(|id| !named.contains_key(id)).collect();
    assert!(
        leaked.is_empty(),
        "{ctx}: after a reopen, table files the MANIFEST does not name: {leaked:?}"
    );
    let _ = leftovers;
    Ok(last)
}

fn is_overlap_bug(e: &Error) -> bool {
    matches!(e, Error::Corruption { kind: brock::CorruptionKind::Inconsistent { detail }, .. } if detail.contains("overlap at level"))
}

#[test]
fn sigkill_during_compactions() {
    let kills = env_u64("BROCK_COMPACTION_KILLS").unwrap_or(20);
    let seed = env_u64("BROCK_COMPACTION_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
    });
    eprintln!(
        "sigkill during compactions: {kills} kills, seed {seed} (replay with BROCK_COMPACTION_SEED={seed})"
    );
    let mut rng = Rng(seed);
    let exe = std::env::current_exe().expect("current_exe");
    let started = Instant::now();
    let mut dir = tempfile::tempdir().expect("temp dir");
    let mut last = 0u64;
    let mut stats = KillStats::default();
    for round in 0..kills {
        // One kill in five comes early, often while the child is still opening
        // (recovering the previous kill's directory).
        let delay = Duration::from_millis(if rng.below(5) == 0 {
            2 + rng.below(30)
        } else {
            30 + rng.below(400)
        });
        let mut child = Command::new(&exe)
            .args([
                "compaction_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out = std::thread::spawn(move || read_acks(out));
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        std::thread::sleep(delay);
        child.kill().expect("kill");
        let status = child.wait().expect("wait");
        let acks = out.join().expect("stdout reader");
        let stderr = err.join().expect("stderr reader");
        let ctx = format!("seed {seed}, round {round}, killed after {delay:?}, last before {last}");
        assert_eq!(
            status.signal(),
            Some(9),
            "{ctx}: the child ended by itself ({status}):\n{stderr}"
        );
        assert!(
            acks.garbage.is_empty(),
            "{ctx}: unexpected child output {:?}",
            acks.garbage
        );
        match acks.ready {
            None => stats.before_ready += 1,
            Some(r) => assert_eq!(
                r, last,
                "{ctx}: the child opened at {r}, the parent last saw {last}"
            ),
        }
        stats.acks += acks.acked.len() as u64;
        // A kill before the first open wrote the MANIFEST leaves nothing to count.
        let leftovers = if acks.ready.is_none() && !dir.path().join("MANIFEST").exists() {
            0
        } else {
            let (present, named) = os_tables(dir.path(), &ctx);
            present.iter().filter(|id| !named.contains_key(id)).count()
        };
        stats.leftover_tables += leftovers as u64;
        match verify_after_kill(dir.path(), &acks, last, &ctx) {
            Ok(l) => last = l,
            Err(e) => {
                eprintln!(
                    "KNOWN BUG ({ctx}): the directory does not open: {e}; see compaction.rs concurrent_compactions_never_commit_overlapping_tables. Going on in a fresh directory."
                );
                stats.known_bug += 1;
                dir = tempfile::tempdir().expect("temp dir");
                last = 0;
                continue;
            }
        }
        let (present, _) = os_tables(dir.path(), &ctx);
        stats.max_tables = stats.max_tables.max(present.len());
        let db = Db::open(
            kill_options(dir.path())
                .with_num_compactors(0)
                .with_read_only(true),
        )
        .expect("read-only");
        for t in db.tables() {
            stats.deepest = stats.deepest.max(t.level);
        }
        drop(db);
    }
    stats.last = last;
    eprintln!("sigkill during compactions: {stats:?}, {:.1?}", started.elapsed());
    assert!(stats.acks > 0, "no commit was ever acknowledged");
    assert!(stats.known_bug < kills, "every round hit the known overlap bug");
}

#[derive(Debug, Default)]
struct KillStats {
    acks: u64,
    before_ready: u64,
    /// Table files a kill left that the MANIFEST did not name (removed at the next open).
    leftover_tables: u64,
    max_tables: usize,
    deepest: usize,
    last: u64,
    known_bug: u64,
}

/// docs/durability.md: "After a failed write or sync, the database refuses
/// further writes with `Error::WritesPoisoned` until it is reopened". The
/// background compactors poison on an I/O error (`compact::run`), but
/// `flatten`, `drop_prefix` and `drop_all` (db/ops.rs) return the error and
/// leave the database writable. After a failed `drop_all` the live database
/// reads as empty while a reopen brings the data back (the MANIFEST change
/// failed), or brings back only the old memtable's keys (the WAL removal
/// failed); the session meanwhile accepts writes on top of either.
#[test]
fn a_failed_flatten_drop_prefix_or_drop_all_poisons_writes() {
    type Op = fn(&Db) -> Result<()>;
    let cases: [(&str, Op, &str); 6] = [
        ("flatten", |db| db.flatten(1), "sync MANIFEST"),
        ("flatten", |db| db.flatten(1), "sync sst"),
        ("drop_prefix", |db| db.drop_prefix(&[b"p/"]), "sync MANIFEST"),
        ("drop_all", |db| db.drop_all(), "append MANIFEST"),
        ("drop_all", |db| db.drop_all(), "sync MANIFEST"),
        ("drop_all", |db| db.drop_all(), "remove sst"),
    ];
    let image = build_image("p/", 300);
    let mut problems = Vec::new();
    for (name, op, label) in cases {
        let (dry, start, r) = session(&image, &placed(), Fault::None, &|db| op(db));
        r.unwrap_or_else(|e| panic!("{name}: fault-free: {e}"));
        let labels = dry.labels_from(start);
        let n = labels
            .iter()
            .position(|l| l == label)
            .unwrap_or_else(|| panic!("{name}: no `{label}` in {labels:?}"));
        let t = Traced::new(image.fs.crash(CrashMode::ProcessKill));
        let db = Db::open_with_vfs(placed(), Arc::new(t.clone())).expect("open");
        t.fs.fail_op_once(t.fs.op_count() + n as u64);
        let r = op(&db);
        assert!(r.is_err(), "{name}: the fault at `{label}` did not fail it");
        let live = read_state(&db, name).len();
        let w = db.update(|t| t.set(b"after".to_vec(), b"1".to_vec()));
        let _ = db.close();
        drop(db);
        let reopened = Db::open_with_vfs(placed(), Arc::new(t.fs.clone()))
            .map(|db| {
                let n = read_state(&db, name).len();
                let _ = db.close();
                format!("{n} keys")
            })
            .unwrap_or_else(|e| format!("does not open: {e}"));
        let line = format!(
            "{name} failed at `{label}` ({}); a commit after it returned {w:?}; the live database showed {live} keys, reopened {reopened} (before: {})",
            r.err().map(|e| e.to_string()).unwrap_or_default(),
            image.state.len()
        );
        eprintln!("{line}");
        if !matches!(w, Err(Error::WritesPoisoned { .. })) {
            problems.push(line);
        }
    }
    assert!(
        problems.is_empty(),
        "{} failed operations left the database writable:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
