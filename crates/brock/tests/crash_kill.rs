//! Every acknowledged commit survives `kill -9`, and no transaction survives
//! in part.
//!
//! The parent test re-executes this test binary as a child process (the
//! `crash_child_entry` test, which does nothing unless
//! `BROCK_CRASH_CHILD_DIR` is set). The child opens the database and commits
//! in a loop, printing one line per acknowledged commit (`ACK <t>` for the
//! main chain, `GACK <thread> <n>` for two side threads whose commits share
//! the WAL with it, so batches hold several transactions; side thread 1
//! queues its commits with `Txn::commit_async`, up to 4 ahead, and
//! acknowledges each once it has waited for it). Main transaction
//! `t` reads and rewrites the two `acct/*` counters (moving `t % 7 + 1` from
//! `b` to `a`, so `a + b` stays constant), writes `K` keys of its own,
//! records `meta/last = t`, and when `t` is a multiple of 10 also deletes
//! the keys of transaction `t - 5`. Memtables are 256 KiB, so the run
//! rotates WALs and flushes L0 tables as it goes.
//!
//! The parent kills the child with SIGKILL after a random 20–300 ms (which
//! sometimes lands while it is still opening, that is, recovering), then
//! opens the database itself, read-only or read-write at random, and checks
//! that the recovered state is exactly the first `L` main transactions
//! (`L = meta/last ≥` every acknowledged `t`) and the first `n` of each side
//! thread's: all keys of every such transaction with the right values,
//! deletions applied, nothing of any later one, one version per transaction
//! and versions increasing with `t`, `a + b` constant and `a` equal to the
//! sum of the moves, and the max version at least the number of commits.
//! The next child reopens the same directory and must see that same state,
//! so recovery of a recovered directory is tested too. A process kill keeps
//! the page cache, so this holds with `sync_writes` off as well as on.
//! Compaction does not run yet and every read merges every L0 table, so
//! once a directory holds more than `MAX_TABLES` tables the loop continues
//! in a fresh one (with `sync_writes` off that is every 8 kills or so).
//!
//! Default: 25 kills with `sync_writes(false)` and 25 with `true`, the two
//! in parallel; this is what CI runs, in about 15 s. Environment:
//! - `BROCK_CRASH_KILLS=<n>`: kills per variant (default 25).
//! - `BROCK_CRASH_SEED=<u64>`: the seed of the kill delays and of the
//!   read-only/read-write choice (printed by every run; timing still varies).
//!
//! A failure keeps the database directory and prints its path.

mod common;

use common::Rng;

use brock::{Db, IterOptions, Options};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use std::time::{Duration, Instant};

const CHILD_DIR_ENV: &str = "BROCK_CRASH_CHILD_DIR";
const CHILD_SYNC_ENV: &str = "BROCK_CRASH_CHILD_SYNC";
/// Keys each main transaction writes.
const K: u64 = 6;
/// Side threads committing next to the main chain.
const GROUP_THREADS: usize = 2;
/// Keys each side transaction writes.
const GROUP_KEYS: u64 = 3;
/// Commits side thread 1 keeps queued without waiting.
const ASYNC_IN_FLIGHT: usize = 4;
/// `acct/a + acct/b`.
const TOTAL: i64 = 1_000_000;
/// `acct/a` before the first transaction.
const A0: i64 = 500_000;
/// Main transactions that are multiples of this delete the keys of
/// transaction `t - DELETE_LAG`.
const DELETE_EVERY: u64 = 10;
const DELETE_LAG: u64 = 5;
/// A child left running (say, by a dead parent) gives up after this.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

fn options(dir: &Path, sync: bool) -> Options {
    Options::new(dir)
        .with_sync_writes(sync)
        .with_mem_table_size(256 << 10)
        .with_value_threshold(1024)
        .with_num_compactors(0)
        // Compaction does not run yet: do not let L0 stall the flushes.
        .with_num_level_zero_tables_stall(100_000)
}

fn main_key(t: u64, i: u64) -> Vec<u8> {
    format!("m/{t:010}/{i}").into_bytes()
}

fn main_value(t: u64, i: u64) -> Vec<u8> {
    let mut v = format!("main t={t} i={i} ").into_bytes();
    v.resize(48, b'.');
    v
}

fn group_key(th: usize, n: u64, j: u64) -> Vec<u8> {
    format!("g/{th}/{n:010}/{j}").into_bytes()
}

fn group_last_key(th: usize) -> Vec<u8> {
    format!("g/{th}/last").into_bytes()
}

fn group_value(th: usize, n: u64, j: u64) -> Vec<u8> {
    let mut v = format!("group th={th} n={n} j={j} ").into_bytes();
    v.resize(40, b'_');
    v
}

/// What main transaction `t` moves from `b` to `a`.
fn amount(t: u64) -> i64 {
    (t % 7 + 1) as i64
}

/// Whether main transaction `t` is deleted once the chain reaches `last`.
fn deleted_by(t: u64, last: u64) -> bool {
    let d = t + DELETE_LAG;
    d.is_multiple_of(DELETE_EVERY) && d <= last
}

fn parse_num<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn read_num<T: std::str::FromStr>(txn: &mut brock::Txn, key: &[u8]) -> brock::Result<Option<T>> {
    Ok(txn
        .get(key)?
        .map(|item| parse_num(item.value_ref()).expect("a number")))
}

/// The child: commits until killed. Does nothing in a normal test run.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let sync = std::env::var(CHILD_SYNC_ENV).is_ok_and(|s| s == "1");
    let started = Instant::now();
    let db = Db::open(options(Path::new(&dir), sync)).expect("child: open");
    let last: u64 = db
        .view(|t| read_num(t, b"meta/last"))
        .expect("child: read meta/last")
        .unwrap_or(0);
    let group_last: Vec<u64> = (0..GROUP_THREADS)
        .map(|th| {
            db.view(|t| read_num(t, &group_last_key(th)))
                .expect("child: read g/last")
                .unwrap_or(0)
        })
        .collect();
    let ready: Vec<String> = std::iter::once(last)
        .chain(group_last.iter().copied())
        .map(|n| n.to_string())
        .collect();
    // A newline first: libtest has printed "test crash_child_entry ... ".
    common::child_emit(&format!("\nREADY {}", ready.join(" ")));

    for (th, &glast) in group_last.iter().enumerate() {
        let db = db.clone();
        std::thread::spawn(move || {
            // Side thread 1 pipelines its commits (`commit_async`, up to
            // ASYNC_IN_FLIGHT queued) and acknowledges each once waited for.
            let mut in_flight = std::collections::VecDeque::new();
            let mut n = glast + 1;
            while started.elapsed() < CHILD_DEADLINE {
                let mut txn = db.begin_write();
                let built = (0..GROUP_KEYS)
                    .try_for_each(|j| txn.set(group_key(th, n, j), group_value(th, n, j)))
                    .and_then(|()| txn.set(group_last_key(th), n.to_string().into_bytes()));
                built.unwrap_or_else(|e| side_fail(th, n, &e));
                if th == 1 {
                    in_flight.push_back((n, txn.commit_async().unwrap_or_else(|e| side_fail(th, n, &e))));
                    while in_flight.len() > ASYNC_IN_FLIGHT {
                        let (m, p) = in_flight
                            .pop_front()
                            .unwrap_or_else(|| common::child_fail("empty queue"));
                        p.wait().unwrap_or_else(|e| side_fail(th, m, &e));
                        common::child_emit(&format!("GACK {th} {m}"));
                    }
                } else {
                    txn.commit().unwrap_or_else(|e| side_fail(th, n, &e));
                    common::child_emit(&format!("GACK {th} {n}"));
                }
                n += 1;
            }
        });
    }

    let mut t = last + 1;
    while started.elapsed() < CHILD_DEADLINE {
        db.update(|txn| {
            let a: i64 = read_num(txn, b"acct/a")?.unwrap_or(A0);
            let b: i64 = read_num(txn, b"acct/b")?.unwrap_or(TOTAL - A0);
            txn.set(&b"acct/a"[..], (a + amount(t)).to_string().into_bytes())?;
            txn.set(&b"acct/b"[..], (b - amount(t)).to_string().into_bytes())?;
            for i in 0..K {
                txn.set(main_key(t, i), main_value(t, i))?;
            }
            if t.is_multiple_of(DELETE_EVERY) && t > DELETE_LAG {
                for i in 0..K {
                    txn.delete(main_key(t - DELETE_LAG, i))?;
                }
            }
            txn.set(&b"meta/last"[..], t.to_string().into_bytes())
        })
        .unwrap_or_else(|e| common::child_fail(&format!("main commit {t}: {e:?}")));
        common::child_emit(&format!("ACK {t}"));
        t += 1;
    }
    std::process::exit(3);
}

fn side_fail(th: usize, n: u64, e: &brock::Error) -> ! {
    common::child_fail(&format!("side commit {th}/{n}: {e:?}"))
}

/// What one child run acknowledged.
#[derive(Debug, Default)]
struct Acks {
    /// The state the child found at open (main last, then each side thread's).
    ready: Option<Vec<u64>>,
    main: Vec<u64>,
    group: Vec<Vec<u64>>,
    garbage: Vec<String>,
}

impl Acks {
    fn read(out: impl Read) -> Acks {
        let mut acks = Acks {
            group: vec![Vec::new(); GROUP_THREADS],
            ..Acks::default()
        };
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            let nums: Option<Vec<u64>> = words.iter().skip(1).map(|w| w.parse().ok()).collect();
            match (words.first().copied(), nums.as_deref()) {
                (Some("READY"), Some(n)) if n.len() == 1 + GROUP_THREADS => acks.ready = Some(n.to_vec()),
                (Some("ACK"), Some(&[t])) => acks.main.push(t),
                (Some("GACK"), Some(&[th, n])) if (th as usize) < GROUP_THREADS => {
                    acks.group[th as usize].push(n)
                }
                // libtest's own lines ("running 1 test", "test crash_child_entry ... ").
                (Some("running" | "test"), _) | (None, _) => {}
                _ => acks.garbage.push(line),
            }
        }
        acks
    }
}

/// The state a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    main_last: u64,
    group_last: Vec<u64>,
}

impl State {
    fn commits(&self) -> u64 {
        self.main_last + self.group_last.iter().sum::<u64>()
    }
}

/// One stored item: version and value.
type Versioned = (u64, Vec<u8>);

/// Opens the database and checks it against the model and the acks.
fn verify(dir: &Path, sync: bool, read_only: bool, acks: &Acks, before: &State) -> Result<State, String> {
    let db = Db::open(options(dir, sync).with_read_only(read_only))
        .map_err(|e| format!("reopen (read_only={read_only}) failed: {e}"))?;
    let result = check(&db, acks, before);
    let closed = db.close();
    let state = result?;
    closed.map_err(|e| format!("close after verification failed: {e}"))?;
    Ok(state)
}

fn check(db: &Db, acks: &Acks, before: &State) -> Result<State, String> {
    let mut main: BTreeMap<u64, BTreeMap<u64, Versioned>> = BTreeMap::new();
    let mut group: Vec<BTreeMap<u64, BTreeMap<u64, Versioned>>> = vec![BTreeMap::new(); GROUP_THREADS];
    let mut singles: BTreeMap<String, Versioned> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut max_item_version = 0;

    let mut it = db
        .begin_read()
        .iter(IterOptions::default())
        .map_err(|e| format!("iterator: {e}"))?;
    for item in &mut it {
        let item = item.map_err(|e| format!("iteration failed: {e}"))?;
        max_item_version = max_item_version.max(item.version());
        let key = String::from_utf8_lossy(item.key()).into_owned();
        let versioned = (item.version(), item.value_ref().to_vec());
        let parts: Vec<&str> = key.split('/').collect();
        match parts.as_slice() {
            ["m", t, i] => {
                if let (Ok(t), Ok(i)) = (t.parse(), i.parse()) {
                    main.entry(t).or_default().insert(i, versioned);
                    continue;
                }
            }
            ["g", th, n, j] => {
                if let (Ok(th), Ok(n), Ok(j)) = (th.parse::<usize>(), n.parse(), j.parse())
                    && th < GROUP_THREADS
                {
                    group[th].entry(n).or_default().insert(j, versioned);
                    continue;
                }
            }
            ["acct", "a" | "b"] | ["meta", "last"] => {
                singles.insert(key, versioned);
                continue;
            }
            ["g", th, "last"] if th.parse::<usize>().is_ok_and(|th| th < GROUP_THREADS) => {
                singles.insert(key, versioned);
                continue;
            }
            _ => {}
        }
        problems.push(format!("unexpected key {key:?}"));
    }
    drop(it);

    let num = |key: &str| -> Result<Option<(u64, i64)>, String> {
        match singles.get(key) {
            None => Ok(None),
            Some((v, bytes)) => parse_num(bytes)
                .map(|n| Some((*v, n)))
                .ok_or_else(|| format!("{key} holds {:?}, not a number", String::from_utf8_lossy(bytes))),
        }
    };

    // The main chain: exactly transactions 1..=L, minus the deleted ones.
    let (last_version, last) = num("meta/last")?.map_or((0, 0), |(v, n)| (v, n as u64));
    let mut state = State {
        main_last: last,
        group_last: Vec::new(),
    };
    if let Some(&acked) = acks.main.iter().max()
        && acked > last
    {
        problems.push(format!(
            "main transaction {acked} was acknowledged but meta/last is {last}"
        ));
    }
    if last < before.main_last {
        problems.push(format!("meta/last went back from {} to {last}", before.main_last));
    }
    if let Some((&t, _)) = main.range(last + 1..).next() {
        problems.push(format!(
            "keys of main transaction {t} are present but meta/last is {last}"
        ));
    }
    if main.contains_key(&0) {
        problems.push("keys of main transaction 0 are present".into());
    }
    let mut prev_version = 0;
    let mut expected_a = A0;
    for t in 1..=last {
        expected_a += amount(t);
        let got = main.get(&t);
        if deleted_by(t, last) {
            if let Some(keys) = got {
                problems.push(format!(
                    "main transaction {t} should be deleted by {} (last {last}) but keys {:?} remain",
                    t + DELETE_LAG,
                    keys.keys().collect::<Vec<_>>()
                ));
            }
            continue;
        }
        let Some(keys) = got else {
            problems.push(format!(
                "main transaction {t} (≤ meta/last {last}) is missing entirely"
            ));
            continue;
        };
        let present: Vec<u64> = keys.keys().copied().collect();
        if present != (0..K).collect::<Vec<_>>() {
            problems.push(format!(
                "main transaction {t} is partial: has keys {present:?} of 0..{K}"
            ));
        }
        for (&i, (_, value)) in keys {
            if *value != main_value(t, i) {
                problems.push(format!("m/{t}/{i} = {:?}", String::from_utf8_lossy(value)));
            }
        }
        let versions: Vec<u64> = keys.values().map(|(v, _)| *v).collect();
        if versions.iter().any(|&v| v != versions[0]) {
            problems.push(format!(
                "main transaction {t} has keys at several versions {versions:?}"
            ));
        }
        if versions[0] <= prev_version {
            problems.push(format!(
                "main transaction {t} has version {} ≤ an earlier one's {prev_version}",
                versions[0]
            ));
        }
        prev_version = versions[0];
        if t == last && versions[0] != last_version {
            problems.push(format!(
                "meta/last has version {last_version}, its transaction's keys {}",
                versions[0]
            ));
        }
    }
    match (num("acct/a")?, num("acct/b")?) {
        (None, None) if last == 0 => {}
        (Some((va, a)), Some((vb, b))) => {
            if a + b != TOTAL {
                problems.push(format!("acct/a + acct/b = {a} + {b} = {}, not {TOTAL}", a + b));
            }
            if a != expected_a {
                problems.push(format!(
                    "acct/a = {a}, but the first {last} transactions moved it to {expected_a}"
                ));
            }
            if va != last_version || vb != last_version {
                problems.push(format!(
                    "acct versions {va}/{vb} differ from meta/last's {last_version}"
                ));
            }
        }
        (a, b) => problems.push(format!(
            "acct/a {a:?} and acct/b {b:?} (versions, values) with meta/last {last}"
        )),
    }

    // The side threads: exactly transactions 1..=n of each.
    for (th, found) in group.iter().enumerate() {
        let key = format!("g/{th}/last");
        let glast = num(&key)?.map_or(0, |(_, n)| n as u64);
        state.group_last.push(glast);
        if let Some(&acked) = acks.group[th].iter().max()
            && acked > glast
        {
            problems.push(format!(
                "side transaction {th}/{acked} was acknowledged but {key} is {glast}"
            ));
        }
        if glast < before.group_last.get(th).copied().unwrap_or(0) {
            problems.push(format!(
                "{key} went back from {:?} to {glast}",
                before.group_last.get(th)
            ));
        }
        let numbers: Vec<u64> = found.keys().copied().collect();
        if numbers != (1..=glast).collect::<Vec<_>>() {
            let extra: Vec<_> = numbers.iter().filter(|&&n| n == 0 || n > glast).take(5).collect();
            let missing: Vec<_> = (1..=glast).filter(|n| !found.contains_key(n)).take(5).collect();
            problems.push(format!(
                "side thread {th} ({key} = {glast}): extra {extra:?}, missing {missing:?}"
            ));
        }
        for (&n, keys) in found {
            let present: Vec<u64> = keys.keys().copied().collect();
            if present != (0..GROUP_KEYS).collect::<Vec<_>>() {
                problems.push(format!(
                    "side transaction {th}/{n} is partial: has keys {present:?}"
                ));
            }
            for (&j, (_, value)) in keys {
                if *value != group_value(th, n, j) {
                    problems.push(format!("g/{th}/{n}/{j} = {:?}", String::from_utf8_lossy(value)));
                }
            }
        }
    }

    // Every commit took its own version.
    let max_version = db.max_version();
    if max_version < state.commits() || max_version < max_item_version {
        problems.push(format!(
            "max_version {max_version} < {} commits or the newest item's version {max_item_version}",
            state.commits()
        ));
    }

    // Point lookups agree with the iterator (newest transactions and a sample).
    for t in (last.saturating_sub(20)..=last)
        .chain((1..=last).step_by(97))
        .filter(|&t| t > 0)
    {
        for i in [0, K - 1] {
            let got = db
                .view(|txn| txn.get(&main_key(t, i)))
                .map_err(|e| format!("get m/{t}/{i}: {e}"))?;
            let want = (!deleted_by(t, last)).then(|| main_value(t, i));
            if got.as_ref().map(|item| item.value_ref().to_vec()) != want {
                problems.push(format!("get(m/{t}/{i}) = {got:?}, the iterator says {want:?}"));
            }
        }
    }

    if problems.is_empty() {
        Ok(state)
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

/// How many `.sst` files `dir` holds.
fn tables(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("list dir")
        .filter(|e| {
            e.as_ref()
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".sst")
        })
        .count()
}

/// Runs the kill loop for one `sync_writes` setting.
fn crash_loop(sync: bool) {
    let kills = env_u64("BROCK_CRASH_KILLS").unwrap_or(25);
    let seed = env_u64("BROCK_CRASH_SEED").unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
    });
    eprintln!(
        "crash_kill sync_writes={sync}: {kills} kills, seed {seed} (replay with BROCK_CRASH_SEED={seed})"
    );
    let mut rng = Rng(seed ^ u64::from(sync));
    let started = Instant::now();

    let fresh = || State {
        main_last: 0,
        group_last: vec![0; GROUP_THREADS],
    };
    let mut dir = tempfile::tempdir().expect("temp dir");
    let mut state = fresh();
    let mut stats = Stats::default();
    let mut round = 0;
    let outcome = (|| -> Result<(), String> {
        while round < kills {
            let delay = Duration::from_millis(20 + rng.below(281));
            let read_only = rng.below(2) == 0;
            let common::Killed {
                status,
                out: acks,
                stderr,
            } = common::run_and_kill(
                "crash_child_entry",
                &[
                    (CHILD_DIR_ENV, dir.path().as_os_str()),
                    (CHILD_SYNC_ENV, std::ffi::OsStr::new(if sync { "1" } else { "0" })),
                ],
                delay,
                Acks::read,
            )?;
            let ctx = format!(
                "round {round} (directory {}, state before {state:?}, killed after {delay:?}, verified read_only={read_only})",
                stats.directories + 1
            );
            if status.signal() != Some(9) {
                return Err(format!(
                    "{ctx}: the child ended by itself ({status}) before the kill:\n{stderr}"
                ));
            }
            if !acks.garbage.is_empty() {
                return Err(format!(
                    "{ctx}: unexpected child output {:?}\n{stderr}",
                    acks.garbage
                ));
            }
            match &acks.ready {
                None => {
                    stats.before_ready += 1;
                    if !acks.main.is_empty() {
                        return Err(format!("{ctx}: acks without READY"));
                    }
                }
                Some(ready) => {
                    // The child must recover exactly what the last verification saw.
                    let expected: Vec<u64> = std::iter::once(state.main_last)
                        .chain(state.group_last.iter().copied())
                        .collect();
                    if *ready != expected {
                        return Err(format!(
                            "{ctx}: the child opened at {ready:?}, the parent last saw {expected:?}"
                        ));
                    }
                    let want: Vec<u64> = (ready[0] + 1..).take(acks.main.len()).collect();
                    if acks.main != want {
                        return Err(format!("{ctx}: main acks out of sequence"));
                    }
                }
            }
            stats.main_acks += acks.main.len() as u64;
            stats.side_acks += acks.group.iter().map(Vec::len).sum::<usize>() as u64;
            stats.read_write_checks += u64::from(!read_only);
            state = verify(dir.path(), sync, read_only, &acks, &state).map_err(|e| format!("{ctx}: {e}"))?;
            round += 1;
            // Compaction does not run yet, so every flush adds an L0 table
            // that every read merges; start over before reads get slow.
            let count = tables(dir.path());
            stats.max_tables = stats.max_tables.max(count);
            if count > MAX_TABLES && round < kills {
                stats.directories += 1;
                stats.commits += state.commits();
                dir = tempfile::tempdir().expect("temp dir");
                state = fresh();
            }
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        let kept = dir.keep();
        panic!(
            "crash_kill sync_writes={sync} failed: {e}\nseed {seed} (BROCK_CRASH_SEED={seed}); database kept at {}",
            kept.display()
        );
    }
    stats.directories += 1;
    stats.commits += state.commits();
    eprintln!(
        "crash_kill sync_writes={sync}: {kills} kills, {stats:?}, {:.1?}",
        started.elapsed()
    );
    assert!(
        stats.main_acks > 0,
        "no commit was ever acknowledged: the kills came too early to test anything"
    );
}

/// Start a new directory once the current one has more tables than this.
const MAX_TABLES: usize = 40;

/// What a crash loop did, for the log.
#[derive(Debug, Default)]
struct Stats {
    /// Directories used (a fresh one after `MAX_TABLES`).
    directories: u64,
    /// Kills that came before the child had opened the database.
    before_ready: u64,
    main_acks: u64,
    side_acks: u64,
    /// Transactions recovered in the end, summed over directories.
    commits: u64,
    read_write_checks: u64,
    /// The most `.sst` files a directory reached.
    max_tables: usize,
}

#[test]
fn crash_kill_sync_writes_off() {
    crash_loop(false);
}

#[test]
fn crash_kill_sync_writes_on() {
    crash_loop(true);
}
