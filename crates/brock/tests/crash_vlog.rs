//! Crashes through value-log rotation and GC.
//!
//! **SIGKILL** (`crash_vlog_rotation`, `crash_vlog_gc`): as in
//! `crash_kill.rs`, the parent re-executes this test binary as a child (the
//! `crash_vlog_child_entry` test, inert unless `BROCK_CRASH_VLOG_DIR` is
//! set). The child opens the database with `sync_writes(true)`, values of at
//! least the 1 KiB threshold, 1 MiB value-log files that also rotate every
//! 48 entries, and 256 KiB memtables, then commits transaction after
//! transaction, printing `ACK <t>` once each commit returns. Transaction `t`
//! writes three large values `d/<t>/<i>`, overwrites the large hot value
//! `h/<t % 8>` (so the value log fills with garbage), sets `meta/last = t`,
//! and when `t` is a multiple of 4 deletes the three keys of transaction
//! `t - 8`. In the `gc` variant a second thread runs value-log GC in a loop
//! (printing `GC <fid>` for each file collected). The parent kills the child
//! after a random 30–400 ms, opens the directory itself (read-only or
//! read-write at random), and checks:
//! - every acknowledged transaction is there, with exactly the state of the
//!   first `L = meta/last` transactions and nothing of a later one: all
//!   keys of each with the right values, one version per transaction,
//!   deletes applied, each hot key holding its newest write;
//! - every key reads, by scan and by lookup, without any error: a
//!   `MissingFile` (a pointer into a value log that is gone) or a
//!   `Corruption` fails the test;
//! - the next child, reopening the same directory, resumes from `L`.
//!
//! **Crash-simulating file system** (`gc_interrupted_at_every_step`): a
//! database with garbage in its value logs is built on `MemVfs`; then GC
//! runs with every mutating file operation in turn made to fail (the
//! process "stops" there), and with each one failing alone (a transient
//! error); the file system is crashed (process kill, power loss, torn power
//! loss) and reopened. Whatever step GC stopped at, the contents are exactly
//! what was committed, every value reads, and GC run to completion on the
//! recovered database and a reopen change nothing. GC syncs its rewrites
//! before deleting the old file whatever `sync_writes` says, so the GC
//! session runs with `sync_writes(false)`.
//!
//! Default: 30 kills per SIGKILL variant (the two run in parallel, about
//! 15 s) and the full step sweep. Environment:
//! - `BROCK_CRASH_VLOG_KILLS=<n>` kills per variant; `BROCK_SOAK=1` makes it
//!   150;
//! - `BROCK_CRASH_VLOG_SEED=<u64>` the seed of the kill delays.
//!
//! A failure keeps the database directory and prints its path.

mod common;

use common::Rng;

use brock::vfs::{CrashMode, MemVfs};
use brock::{Db, Error, IterOptions, Options};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_DIR_ENV: &str = "BROCK_CRASH_VLOG_DIR";
const CHILD_GC_ENV: &str = "BROCK_CRASH_VLOG_GC";
/// Large values per transaction.
const K: u64 = 3;
/// Hot keys, overwritten round-robin.
const HOT: u64 = 8;
/// Transactions that are multiples of this delete the keys of `t - DELETE_LAG`.
const DELETE_EVERY: u64 = 4;
const DELETE_LAG: u64 = 8;
const CHILD_DEADLINE: Duration = Duration::from_secs(120);
const THRESHOLD: u64 = 1 << 10;

fn soak() -> bool {
    std::env::var("BROCK_SOAK").is_ok_and(|v| v == "1")
}

fn options(dir: &Path) -> Options {
    Options::new(dir)
        .with_sync_writes(true)
        .with_value_threshold(THRESHOLD)
        .with_value_log_file_size(1 << 20)
        .with_value_log_max_entries(48)
        .with_mem_table_size(256 << 10)
        .with_num_level_zero_tables(2)
        .with_num_level_zero_tables_stall(10)
        .with_base_table_size(64 << 10)
        .with_base_level_size(256 << 10)
        .with_num_compactors(2)
}

fn data_key(t: u64, i: u64) -> Vec<u8> {
    format!("d/{t:08}/{i}").into_bytes()
}

fn hot_key(j: u64) -> Vec<u8> {
    format!("h/{j}").into_bytes()
}

/// A value of at least the threshold whose bytes name where it belongs.
fn big(tag: &str, t: u64, i: u64) -> Vec<u8> {
    let len = THRESHOLD + (t * 7919 + i * 104_729) % 3000;
    let mut v = format!("{tag} t={t} i={i} ").into_bytes();
    let fill = b'a' + ((t + i) % 26) as u8;
    v.resize(len as usize, fill);
    v
}

fn data_value(t: u64, i: u64) -> Vec<u8> {
    big("data", t, i)
}

fn hot_value(t: u64) -> Vec<u8> {
    big("hot", t, t % HOT)
}

fn deleted_by(t: u64, last: u64) -> bool {
    t.is_multiple_of(DELETE_EVERY) && t + DELETE_LAG <= last && t + DELETE_LAG > DELETE_LAG
}

/// The child: commits (and collects) until killed. Inert in a normal run.
#[test]
fn crash_vlog_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let gc = std::env::var(CHILD_GC_ENV).is_ok_and(|s| s == "1");
    let started = Instant::now();
    let db = Db::open(options(Path::new(&dir))).unwrap_or_else(|e| common::child_fail(&format!("open: {e}")));
    let last: u64 = db
        .view(|t| t.get(b"meta/last"))
        .unwrap_or_else(|e| common::child_fail(&format!("read meta/last: {e}")))
        .map_or(0, |i| {
            std::str::from_utf8(i.value_ref())
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| common::child_fail("meta/last is not a number"))
        });
    common::child_emit(&format!("\nREADY {last}"));
    if gc {
        let db = db.clone();
        std::thread::spawn(move || {
            while started.elapsed() < CHILD_DEADLINE {
                match db.run_value_log_gc(0.3) {
                    Ok(r) => common::child_emit(&format!("GC {}", r.fid)),
                    Err(Error::NoRewrite | Error::Rejected) => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => common::child_fail(&format!("gc: {e}")),
                }
            }
        });
    }
    let mut t = last + 1;
    while started.elapsed() < CHILD_DEADLINE {
        db.update(|txn| {
            for i in 0..K {
                txn.set(data_key(t, i), data_value(t, i))?;
            }
            txn.set(hot_key(t % HOT), hot_value(t))?;
            if t.is_multiple_of(DELETE_EVERY) && t > DELETE_LAG {
                for i in 0..K {
                    txn.delete(data_key(t - DELETE_LAG, i))?;
                }
            }
            txn.set(&b"meta/last"[..], t.to_string().into_bytes())
        })
        .unwrap_or_else(|e| common::child_fail(&format!("commit {t}: {e}")));
        common::child_emit(&format!("ACK {t}"));
        t += 1;
    }
    std::process::exit(3);
}

#[derive(Debug, Default)]
struct Acks {
    ready: Option<u64>,
    acked: Vec<u64>,
    gc: u64,
    garbage: Vec<String>,
}

impl Acks {
    fn read(out: impl Read) -> Acks {
        let mut acks = Acks::default();
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            let num = words.get(1).and_then(|w| w.parse::<u64>().ok());
            match (words.first().copied(), num, words.len()) {
                (Some("READY"), Some(n), 2) => acks.ready = Some(n),
                (Some("ACK"), Some(t), 2) => acks.acked.push(t),
                (Some("GC"), Some(_), 2) => acks.gc += 1,
                (Some("running" | "test"), _, _) | (None, _, _) => {}
                _ => acks.garbage.push(line),
            }
        }
        acks
    }
}

/// Reads the whole database and checks it against the first `L`
/// transactions; returns `L`.
fn verify(dir: &Path, read_only: bool, acks: &Acks, before: u64) -> Result<u64, String> {
    let db = Db::open(options(dir).with_read_only(read_only))
        .map_err(|e| format!("reopen (read_only={read_only}) failed: {e}"))?;
    let result = check(&db, acks, before);
    let closed = db.close();
    let last = result?;
    closed.map_err(|e| format!("close after verification: {e}"))?;
    Ok(last)
}

fn check(db: &Db, acks: &Acks, before: u64) -> Result<u64, String> {
    let mut data: BTreeMap<u64, BTreeMap<u64, (u64, Vec<u8>)>> = BTreeMap::new();
    let mut hot: BTreeMap<u64, (u64, Vec<u8>)> = BTreeMap::new();
    let mut meta: Option<(u64, Vec<u8>)> = None;
    let mut problems: Vec<String> = Vec::new();
    for item in db
        .begin_read()
        .iter(IterOptions::default())
        .map_err(|e| format!("iterator: {e}"))?
    {
        let item = item.map_err(|e| format!("iteration failed: {e}"))?;
        let key = String::from_utf8_lossy(item.key()).into_owned();
        let versioned = (item.version(), item.value_ref().to_vec());
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["d", t, i] => {
                if let (Ok(t), Ok(i)) = (t.parse(), i.parse()) {
                    data.entry(t).or_default().insert(i, versioned);
                    continue;
                }
            }
            ["h", j] => {
                if let Ok(j) = j.parse::<u64>()
                    && j < HOT
                {
                    hot.insert(j, versioned);
                    continue;
                }
            }
            ["meta", "last"] => {
                meta = Some(versioned);
                continue;
            }
            _ => {}
        }
        problems.push(format!("unexpected key {key:?}"));
    }
    let (last_version, last) = match &meta {
        None => (0, 0),
        Some((v, bytes)) => (
            *v,
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("meta/last holds {bytes:?}"))?,
        ),
    };
    if let Some(&acked) = acks.acked.iter().max()
        && acked > last
    {
        problems.push(format!(
            "transaction {acked} was acknowledged but meta/last is {last}"
        ));
    }
    if last < before {
        problems.push(format!("meta/last went back from {before} to {last}"));
    }
    if let Some((&t, _)) = data.range(last + 1..).next() {
        problems.push(format!(
            "keys of transaction {t} are present but meta/last is {last}"
        ));
    }
    let mut versions: BTreeMap<u64, u64> = BTreeMap::new();
    for t in 1..=last {
        let got = data.get(&t);
        if deleted_by(t, last) {
            if let Some(keys) = got {
                problems.push(format!(
                    "transaction {t} was deleted by {} but keys {:?} remain",
                    t + DELETE_LAG,
                    keys.keys().collect::<Vec<_>>()
                ));
            }
            continue;
        }
        let Some(keys) = got else {
            problems.push(format!("transaction {t} (≤ meta/last {last}) is missing"));
            continue;
        };
        if keys.keys().copied().collect::<Vec<_>>() != (0..K).collect::<Vec<_>>() {
            problems.push(format!(
                "transaction {t} is partial: keys {:?}",
                keys.keys().collect::<Vec<_>>()
            ));
        }
        for (&i, (_, v)) in keys {
            if *v != data_value(t, i) {
                problems.push(format!("d/{t}/{i} holds a wrong value of {} bytes", v.len()));
            }
        }
        let vs: Vec<u64> = keys.values().map(|(v, _)| *v).collect();
        if vs.iter().any(|&v| v != vs[0]) {
            problems.push(format!("transaction {t} has keys at versions {vs:?}"));
        }
        versions.insert(t, vs[0]);
    }
    if versions
        .values()
        .zip(versions.values().skip(1))
        .any(|(a, b)| a >= b)
    {
        problems.push("transaction versions do not increase with t".into());
    }
    if last > 0 && versions.get(&last).is_some_and(|&v| v != last_version) {
        problems.push(format!(
            "meta/last has version {last_version}, its transaction's keys {:?}",
            versions.get(&last)
        ));
    }
    for j in 0..HOT {
        // The newest transaction ≤ last that wrote hot key j.
        let want_t = (1..=last).rev().find(|t| t % HOT == j);
        match (want_t, hot.get(&j)) {
            (None, None) => {}
            (Some(t), Some((_, v))) if *v == hot_value(t) => {}
            (want, got) => problems.push(format!(
                "h/{j} should hold transaction {want:?}'s value, holds {:?}",
                got.map(|(ver, v)| (ver, String::from_utf8_lossy(&v[..v.len().min(24)]).into_owned()))
            )),
        }
    }
    // Lookups agree with the scan: every hot key, the newest transactions
    // and a sample of the rest.
    let mut lookups: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..HOT)
        .map(|j| (hot_key(j), hot.get(&j).map(|(_, v)| v.clone())))
        .collect();
    for t in (last.saturating_sub(12)..=last + 1)
        .chain((1..=last).step_by(37))
        .filter(|&t| t > 0)
    {
        for i in 0..K {
            let want = (t <= last && !deleted_by(t, last)).then(|| data_value(t, i));
            lookups.push((data_key(t, i), want));
        }
    }
    for (key, want) in lookups {
        let got = db
            .view(|txn| txn.get(&key)?.map(|i| i.value()).transpose())
            .map_err(|e| format!("get {}: {e}", String::from_utf8_lossy(&key)))?;
        if got.as_deref() != want.as_deref() {
            problems.push(format!(
                "get {} = {:?} bytes, want {:?} bytes",
                String::from_utf8_lossy(&key),
                got.map(|v| v.len()),
                want.map(|v| v.len())
            ));
        }
    }
    if problems.is_empty() {
        Ok(last)
    } else {
        let n = problems.len();
        problems.truncate(25);
        Err(format!("{n} problem(s):\n  {}", problems.join("\n  ")))
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

fn count_files(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|l| {
            l.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

/// Start a new directory when the current one has more value logs than this
/// (without GC they are never collected).
const MAX_VLOGS: usize = 150;

#[derive(Debug, Default)]
struct Stats {
    directories: u64,
    before_ready: u64,
    acks: u64,
    gc_runs: u64,
    max_vlogs: usize,
    read_write_checks: u64,
}

fn crash_loop(gc: bool) {
    let name = if gc {
        "crash_vlog_gc"
    } else {
        "crash_vlog_rotation"
    };
    let kills = env_u64("BROCK_CRASH_VLOG_KILLS").unwrap_or(if soak() { 150 } else { 30 });
    let seed = env_u64("BROCK_CRASH_VLOG_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
            ^ u64::from(std::process::id()).rotate_left(32)
    });
    eprintln!("{name}: {kills} kills, seed {seed} (BROCK_CRASH_VLOG_SEED={seed})");
    let mut rng = Rng(seed ^ u64::from(gc));
    let started = Instant::now();
    let mut dir = tempfile::tempdir().expect("temp dir");
    let mut last = 0u64;
    let mut stats = Stats::default();
    let outcome = (|| -> Result<(), String> {
        for round in 0..kills {
            let delay = Duration::from_millis(30 + rng.below(371));
            let read_only = rng.below(2) == 0;
            let common::Killed {
                status,
                out: acks,
                stderr,
            } = common::run_and_kill(
                "crash_vlog_child_entry",
                &[
                    (CHILD_DIR_ENV, dir.path().as_os_str()),
                    (CHILD_GC_ENV, std::ffi::OsStr::new(if gc { "1" } else { "0" })),
                ],
                delay,
                Acks::read,
            )?;
            let ctx = format!(
                "round {round} (directory {}, meta/last before {last}, killed after {delay:?}, verified read_only={read_only})",
                stats.directories + 1
            );
            if status.signal() != Some(9) {
                return Err(format!("{ctx}: the child ended by itself ({status}):\n{stderr}"));
            }
            if !acks.garbage.is_empty() {
                return Err(format!(
                    "{ctx}: unexpected child output {:?}\n{stderr}",
                    acks.garbage
                ));
            }
            match acks.ready {
                None => {
                    stats.before_ready += 1;
                    if !acks.acked.is_empty() {
                        return Err(format!("{ctx}: acks without READY"));
                    }
                }
                Some(ready) => {
                    if ready != last {
                        return Err(format!(
                            "{ctx}: the child opened at {ready}, the parent last saw {last}"
                        ));
                    }
                    let want: Vec<u64> = (ready + 1..).take(acks.acked.len()).collect();
                    if acks.acked != want {
                        return Err(format!("{ctx}: acks out of sequence"));
                    }
                }
            }
            stats.acks += acks.acked.len() as u64;
            stats.gc_runs += acks.gc;
            stats.read_write_checks += u64::from(!read_only);
            last = verify(dir.path(), read_only, &acks, last).map_err(|e| format!("{ctx}: {e}"))?;
            let vlogs = count_files(dir.path(), ".vlog");
            stats.max_vlogs = stats.max_vlogs.max(vlogs);
            if vlogs > MAX_VLOGS && round + 1 < kills {
                stats.directories += 1;
                dir = tempfile::tempdir().expect("temp dir");
                last = 0;
            }
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        let kept = dir.keep();
        panic!(
            "{name} failed: {e}\nseed {seed} (BROCK_CRASH_VLOG_SEED={seed}); database kept at {}",
            kept.display()
        );
    }
    stats.directories += 1;
    eprintln!("{name}: {stats:?}, {:.1?}", started.elapsed());
    assert!(stats.acks > 0, "no commit was ever acknowledged");
    assert!(
        stats.max_vlogs > 2,
        "the value log never rotated ({} files at most)",
        stats.max_vlogs
    );
    if gc {
        assert!(stats.gc_runs > 0, "GC never collected a file in the child");
    }
}

#[test]
fn crash_vlog_rotation() {
    crash_loop(false);
}

#[test]
fn crash_vlog_gc() {
    crash_loop(true);
}

// ---------------------------------------------------------------------------
// GC interrupted at every file-system step.

const MEM_DIR: &str = "/db";
const MEM_KEYS: u64 = 40;

fn mem_opts(sync_writes: bool) -> Options {
    Options::new(MEM_DIR)
        .with_sync_writes(sync_writes)
        .with_value_threshold(512)
        .with_mem_table_size(1 << 20)
        .with_value_log_file_size(1 << 20)
        .with_value_log_max_entries(24)
        .with_num_compactors(0)
        .with_block_cache_size(1 << 20)
}

fn mem_key(i: u64) -> Vec<u8> {
    format!("key/{i:03}").into_bytes()
}

fn mem_value(i: u64, round: u64) -> Vec<u8> {
    let mut v = format!("key {i} round {round} ").into_bytes();
    v.resize(600 + (i as usize * 37) % 1500, b'0' + (round % 10) as u8);
    v
}

/// Builds the database GC will work on: three rounds of values (the first
/// two mostly overwritten, so early files are mostly garbage), some keys
/// deleted, some small values; everything synced and closed cleanly.
fn build(fs: &MemVfs) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = BTreeMap::new();
    let db = Db::open_with_vfs(mem_opts(true), Arc::new(fs.clone())).expect("open");
    for round in 0..3u64 {
        for chunk in (0..MEM_KEYS).collect::<Vec<_>>().chunks(4) {
            db.update(|t| {
                for &i in chunk {
                    if round == 2 && i % 3 != 0 {
                        continue;
                    }
                    t.set(mem_key(i), mem_value(i, round))?;
                }
                Ok(())
            })
            .expect("commit");
            for &i in chunk {
                if round < 2 || i % 3 == 0 {
                    model.insert(mem_key(i), mem_value(i, round));
                }
            }
        }
    }
    db.update(|t| {
        for i in (1..MEM_KEYS).step_by(5) {
            t.delete(mem_key(i))?;
        }
        for i in (2..MEM_KEYS).step_by(7) {
            t.set(mem_key(i), b"small".to_vec())?;
        }
        Ok(())
    })
    .expect("commit");
    for i in (1..MEM_KEYS).step_by(5) {
        model.remove(&mem_key(i));
    }
    for i in (2..MEM_KEYS).step_by(7) {
        model.insert(mem_key(i), b"small".to_vec());
    }
    db.close().expect("close");
    model
}

/// Reads everything by scan and by lookup; any error or difference from
/// `model` is returned.
fn read_all(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), String> {
    let mut scanned = BTreeMap::new();
    for item in db
        .begin_read()
        .iter(IterOptions::default())
        .map_err(|e| format!("iter: {e}"))?
    {
        let item = item.map_err(|e| format!("scan: {e}"))?;
        scanned.insert(item.key().to_vec(), item.value_ref().to_vec());
    }
    if &scanned != model {
        let differ: Vec<String> = model
            .keys()
            .chain(scanned.keys())
            .filter(|k| model.get(*k) != scanned.get(*k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .take(8)
            .collect();
        return Err(format!("scan differs from the model at {differ:?}"));
    }
    for i in 0..MEM_KEYS {
        let got = db
            .view(|t| t.get(&mem_key(i))?.map(|i| i.value()).transpose())
            .map_err(|e| format!("get key/{i:03}: {e}"))?;
        if got.as_deref() != model.get(&mem_key(i)).map(Vec::as_slice) {
            return Err(format!("get key/{i:03} differs from the model"));
        }
    }
    Ok(())
}

/// Runs GC until `NoRewrite` or the first error; returns the files
/// collected and the error, if any.
fn gc_all(db: &Db) -> (u32, Option<Error>) {
    let mut n = 0;
    loop {
        match db.run_value_log_gc(0.3) {
            Ok(_) => n += 1,
            Err(Error::NoRewrite) => return (n, None),
            Err(e) => return (n, Some(e)),
        }
        if n > 100 {
            return (n, Some(Error::Rejected));
        }
    }
}

/// Opens a crashed image, checks it, finishes the GC on it, checks again,
/// closes, reopens and checks once more.
fn recover(fs: MemVfs, sync_writes: bool, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> Result<(), String> {
    let db =
        Db::open_with_vfs(mem_opts(sync_writes), Arc::new(fs.clone())).map_err(|e| format!("reopen: {e}"))?;
    read_all(&db, model).map_err(|e| format!("after recovery: {e}"))?;
    if let (_, Some(e)) = gc_all(&db) {
        return Err(format!("GC after recovery: {e}"));
    }
    read_all(&db, model).map_err(|e| format!("after GC on the recovered database: {e}"))?;
    db.close().map_err(|e| format!("close: {e}"))?;
    let db =
        Db::open_with_vfs(mem_opts(sync_writes), Arc::new(fs)).map_err(|e| format!("second reopen: {e}"))?;
    read_all(&db, model).map_err(|e| format!("after the second reopen: {e}"))?;
    db.close().map_err(|e| format!("close: {e}"))
}

/// Torn-power-loss images tried per interrupted step.
fn torn_seeds() -> u64 {
    if soak() { 24 } else { 4 }
}

/// Builds the database, then runs GC once cleanly to count its file-system
/// operations, then once per operation with a fault there, crashing and
/// recovering each time. Returns every failure.
fn gc_sweep(sync_writes: bool) {
    let base = MemVfs::new();
    let model = build(&base);

    // A clean run: how many operations the open and the GC take.
    let fs = base.crash(CrashMode::ProcessKill);
    let db = Db::open_with_vfs(mem_opts(sync_writes), Arc::new(fs.clone())).expect("open");
    let start = fs.op_count();
    let (collected, err) = gc_all(&db);
    assert!(err.is_none(), "{err:?}");
    let end = fs.op_count();
    assert!(
        collected >= 2,
        "GC collected {collected} files; the sweep needs some"
    );
    read_all(&db, &model).expect("after a clean GC");
    db.close().unwrap();
    recover(fs, sync_writes, &model).expect("clean run");
    eprintln!(
        "sync_writes={sync_writes}: GC collects {collected} files in {} file-system operations",
        end - start
    );

    let mut checked = 0;
    let mut failures = Vec::new();
    for n in start..end {
        for once in [false, true] {
            let fs = base.crash(CrashMode::ProcessKill);
            let db = Db::open_with_vfs(mem_opts(sync_writes), Arc::new(fs.clone())).expect("open");
            assert_eq!(fs.op_count(), start, "the open is deterministic");
            if once {
                fs.fail_op_once(n);
            } else {
                fs.fail_from_op(n);
            }
            let (_, err) = gc_all(&db);
            // The process stops here (or, for a transient fault, carries on
            // refusing writes until reopened).
            let mut images = vec![
                ("process kill".to_string(), fs.crash(CrashMode::ProcessKill)),
                ("power loss".to_string(), fs.crash(CrashMode::PowerLoss)),
            ];
            for i in 0..torn_seeds() {
                let seed =
                    (n + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
                images.push((
                    format!("torn power loss (seed {seed})"),
                    fs.crash(CrashMode::TornPowerLoss { seed }),
                ));
            }
            if once && err.is_some() {
                // A failed write poisons the database; reads still work.
                if let Err(e) = read_all(&db, &model) {
                    failures.push(format!("op {n} failed once: reads afterwards: {e}"));
                }
            }
            drop(db);
            for (label, image) in images {
                if let Err(e) = recover(image, sync_writes, &model) {
                    failures.push(format!(
                        "GC stopped at operation {n} (of {start}..{end}, {}), then {label}: {e} (GC said {err:?})",
                        if once { "failing once" } else { "failing from there on" }
                    ));
                }
                checked += 1;
            }
        }
    }
    eprintln!(
        "sync_writes={sync_writes}: {checked} crashed images, {} failures",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "sync_writes={sync_writes}: {} of {checked} crashed images failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// GC in a database opened with `sync_writes(true)`.
#[test]
fn gc_interrupted_at_every_step_sync_writes_on() {
    gc_sweep(true);
}

/// GC in a database opened with `sync_writes(false)`: the values it
/// rewrites were durable before it started, so a crash at any step, power
/// loss included, must keep every one of them readable.
///
/// This found a bug, now fixed: with `sync_writes(false)` the write thread
/// appends GC's rewritten values to the value log and their pointers to the
/// WAL without syncing either; if power is lost before GC's own sync and
/// the WAL's unsynced tail survives further than the value log's, the
/// replayed WAL held rewrite entries pointing past the recovered value log,
/// which outranked the table's pointer to the intact original: the key read
/// as `Corruption`. Recovery now cuts a WAL before the first entry whose
/// pointer reaches past its recovered value-log file.
#[test]
fn gc_interrupted_at_every_step_sync_writes_off() {
    gc_sweep(false);
}
