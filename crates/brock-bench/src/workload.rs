//! The workloads: one generator for every store, four runners, one report.
//!
//! The generator is the project's benchmark definition and must not drift,
//! since runs of different stores (and of Go Badger) are compared key for
//! key:
//! - `key(i)` is `"k"` and `i` as 15 zero-padded decimal digits (16 bytes);
//! - the random write order is a Fisher–Yates shuffle of `0..n`, top down,
//!   with [`SplitMix64`] seeded with state [`ORDER_SEED`];
//! - the value of key `i` is the little-endian bytes of successive
//!   [`SplitMix64`] outputs from state `i ^ GOLDEN_GAMMA`, cut to the size;
//!   after `g` overwrites (generation `g`, see [`Config::generation`]) from
//!   state `i ^ GOLDEN_GAMMA ^ (g << 56)` ([`value_state`]; keys stay below
//!   2^50, so every key and generation has its own state);
//! - random reads look up `next() % n` with [`SplitMix64`] seeded with
//!   state [`READ_SEED`];
//! - the delete workload deletes every `i` with `i % 10 != 0`, in the
//!   random write order with the kept keys left out;
//! - the overwrite workload writes every key again, in the fill's order,
//!   with the next generation's value.
//!
//! The runners ([`run_write`], [`run_read`], [`run_scan`],
//! [`run_overwrite`], [`run_gc`], [`run_delete`], or [`run_op`] which also
//! measures the directory, the peak RSS, the process's I/O and the store's
//! own counters) drive any [`Store`]:
//! - **write** commits `n` entries, `batch` per write transaction, in random
//!   (or, with [`Order::Sequential`], ascending) key order; the clock stops
//!   when the last commit returns. Then [`Store::settle`] waits for the
//!   background flushes and compactions to go quiet, timed separately
//!   (`settle_secs`), so that reads start from a quiet store;
//! - **read** does `n` random point lookups, `batch` per read transaction
//!   (snapshot), checking each value's length and first bytes;
//! - **scan** iterates the whole store forward, checking order and values;
//! - **overwrite** is the write again (same order, batches and settle) with
//!   the next generation's values, so every value written before is garbage;
//! - **gc** settles, then runs the store's garbage collection to completion
//!   ([`Store::collect_garbage`]: Brock's value-log GC until it has nothing
//!   to rewrite), settles again and checks with a scan that every key holds
//!   its current value; [`run_op`] compares the directory before and after
//!   with the live data;
//! - **delete** (after a fill) deletes 90% of the keys, `batch` per
//!   transaction, settles, checks with a scan that exactly the other 10%
//!   remain, and compares the directory with their size; [`run_op`] then
//!   runs the store's full compaction, if it has one, and compares again.
//!
//! Generating keys and values happens inside the timed loops (the same cost
//! for every store, a few nanoseconds per entry); the write order is
//! computed before the clock starts.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Errors of the harness: a store's own error, boxed.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Results of the harness.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SplitMix64's increment (the 64-bit golden ratio).
pub const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
/// The state that seeds the random write order.
pub const ORDER_SEED: u64 = 0x5EED;
/// The state that seeds the random read order.
pub const READ_SEED: u64 = 0xBEEF;
/// Length of every key.
pub const KEY_LEN: usize = 16;
/// Keys have 15 decimal digits, so `n` must stay below 10^15.
pub const MAX_N: u64 = 1_000_000_000_000_000;

/// Sebastiano Vigna's SplitMix64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state is `state` (the first output is derived from
    /// `state + GOLDEN_GAMMA`).
    pub const fn new(state: u64) -> Self {
        SplitMix64 { state }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The key of entry `i`: `"k"` and `i` as 15 zero-padded decimal digits.
///
/// # Panics
/// If `i` has more than 15 digits.
pub fn key(i: u64) -> [u8; KEY_LEN] {
    assert!(i < MAX_N, "key index {i} has more than 15 digits");
    let mut k = [b'0'; KEY_LEN];
    k[0] = b'k';
    let mut x = i;
    let mut p = KEY_LEN - 1;
    while x > 0 {
        k[p] = b'0' + (x % 10) as u8;
        x /= 10;
        p -= 1;
    }
    k
}

/// The index of a key made by [`key`], if `k` is one.
pub fn key_index(k: &[u8]) -> Option<u64> {
    let digits = k.strip_prefix(b"k")?;
    if digits.len() != KEY_LEN - 1 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u64::from(d - b'0'))
    })
}

/// The generator state of the value of entry `i` in generation `generation`
/// (0 after the fill, 1 after one overwrite, …).
pub fn value_state(i: u64, generation: u8) -> u64 {
    i ^ GOLDEN_GAMMA ^ (u64::from(generation) << 56)
}

/// Writes the value of entry `i`, `size` bytes, into `out` (cleared first).
pub fn fill_value(i: u64, size: usize, out: &mut Vec<u8>) {
    fill_value_of(i, 0, size, out);
}

/// Writes the value of entry `i` in generation `generation`, `size` bytes,
/// into `out` (cleared first).
pub fn fill_value_of(i: u64, generation: u8, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(size);
    let mut r = SplitMix64::new(value_state(i, generation));
    while out.len() < size {
        let word = r.next_u64().to_le_bytes();
        let take = (size - out.len()).min(word.len());
        out.extend_from_slice(&word[..take]);
    }
}

/// The value of entry `i`, `size` bytes.
pub fn value(i: u64, size: usize) -> Vec<u8> {
    let mut v = Vec::new();
    fill_value(i, size, &mut v);
    v
}

/// Whether `v` can be the value of entry `i` at `size` bytes: the length and
/// the first (up to 8) bytes are checked, which costs one generator step.
pub fn value_matches(i: u64, size: usize, v: &[u8]) -> bool {
    value_matches_of(i, 0, size, v)
}

/// [`value_matches`] for generation `generation`.
pub fn value_matches_of(i: u64, generation: u8, size: usize, v: &[u8]) -> bool {
    if v.len() != size {
        return false;
    }
    let word = SplitMix64::new(value_state(i, generation))
        .next_u64()
        .to_le_bytes();
    let head = size.min(word.len());
    v[..head] == word[..head]
}

/// The random write order: a Fisher–Yates shuffle of `0..n`, from the top
/// down, with [`SplitMix64`] seeded with [`ORDER_SEED`].
pub fn permutation(n: u64) -> Vec<u64> {
    let mut p: Vec<u64> = (0..n).collect();
    let mut r = SplitMix64::new(ORDER_SEED);
    for i in (1..p.len()).rev() {
        let j = (r.next_u64() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

/// The random read order: `next() % n` forever, from [`READ_SEED`].
#[derive(Debug, Clone)]
pub struct ReadOrder {
    rng: SplitMix64,
    n: u64,
}

/// The random read order over `0..n` (`n` ≥ 1).
///
/// # Panics
/// If `n` is 0.
pub fn read_order(n: u64) -> ReadOrder {
    assert!(n > 0, "read order over an empty key space");
    ReadOrder {
        rng: SplitMix64::new(READ_SEED),
        n,
    }
}

impl Iterator for ReadOrder {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        Some(self.rng.next_u64() % self.n)
    }
}

/// The order in which the fill writes keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// The [`permutation`] of `0..n`.
    Random,
    /// `0, 1, …, n-1`.
    Sequential,
}

/// The write order of `n` keys.
pub fn write_order(n: u64, order: Order) -> Vec<u64> {
    match order {
        Order::Random => permutation(n),
        Order::Sequential => (0..n).collect(),
    }
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Fill.
    Write,
    /// Random point lookups.
    Read,
    /// A full forward scan.
    Scan,
    /// After a fill: write every key again with a new value, in the same
    /// order and batches.
    Overwrite,
    /// Run the store's garbage collection to completion and measure the
    /// directory before and after against the live data.
    Gc,
    /// After a fill: delete 90% of the keys, let compaction settle, measure
    /// the directory against the live data.
    Delete,
}

impl Op {
    /// Every workload, in the order a run makes them: reads before the
    /// overwrite (which changes the values), GC after it (which makes the
    /// garbage), the delete last (which removes keys).
    pub const ALL: [Op; 6] = [Op::Write, Op::Read, Op::Scan, Op::Overwrite, Op::Gc, Op::Delete];

    /// What runs when nothing is asked for: write, read, scan.
    pub const DEFAULT: [Op; 3] = [Op::Write, Op::Read, Op::Scan];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
            Op::Scan => "scan",
            Op::Overwrite => "overwrite",
            Op::Gc => "gc",
            Op::Delete => "delete",
        }
    }

    /// Whether the workload writes, and so settles afterwards.
    pub fn writes(self) -> bool {
        matches!(self, Op::Write | Op::Overwrite | Op::Delete)
    }

    /// The workloads to run for `asked` on a fresh store: in [`Op::ALL`]'s
    /// order, each once, with a fill first when something needs one.
    pub fn plan(asked: &[Op]) -> Vec<Op> {
        let mut ops: Vec<Op> = Op::ALL.iter().copied().filter(|o| asked.contains(o)).collect();
        if !ops.is_empty() && ops[0] != Op::Write {
            ops.insert(0, Op::Write);
        }
        ops
    }
}

impl std::str::FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Op::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| format!("unknown workload {s:?}: write, read, scan, overwrite, gc or delete"))
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How long to wait for a store's background work (flushes, compactions)
/// after a fill or a delete: until its counters and sizes have not changed
/// for `quiet`, at most `cap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settle {
    /// Unchanged for this long counts as idle.
    pub quiet: Duration,
    /// Give up (and say so) after this long.
    pub cap: Duration,
}

impl Default for Settle {
    fn default() -> Self {
        Settle {
            quiet: Duration::from_secs(3),
            cap: Duration::from_secs(180),
        }
    }
}

/// How a settle ended.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Settled {
    /// Seconds from the start of the settle to the last change seen (the
    /// confirming quiet window is not counted).
    pub secs: f64,
    /// The cap ran out before the store went quiet.
    pub capped: bool,
}

/// Polls `probe` every 50 ms until, for `settle.quiet`, it has reported
/// not busy and the same state; at most `settle.cap` after `started`.
pub fn wait_until_quiet(
    settle: &Settle,
    started: Instant,
    probe: &mut dyn FnMut() -> Result<(bool, Vec<u64>)>,
) -> Result<Settled> {
    let (mut busy, mut state) = probe()?;
    let mut last_change = Instant::now();
    loop {
        let now = Instant::now();
        if !busy && now.duration_since(last_change) >= settle.quiet {
            return Ok(Settled {
                secs: last_change.duration_since(started).as_secs_f64(),
                capped: false,
            });
        }
        if now.duration_since(started) >= settle.cap {
            return Ok(Settled {
                secs: now.duration_since(started).as_secs_f64(),
                capped: true,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
        let (b, s) = probe()?;
        if b || s != state {
            last_change = Instant::now();
        }
        busy = b;
        state = s;
    }
}

/// The parameters shared by every workload of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Entries written, and lookups made.
    pub n: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Entries per write transaction (and lookups per read transaction).
    pub batch: usize,
    /// Write order.
    pub order: Order,
    /// Make every commit durable (fsync) before it returns.
    pub sync: bool,
    /// Waiting for background work after a fill or a delete.
    pub settle: Settle,
    /// Key-value separation: `Some(t)` stores values of `t` bytes or more
    /// apart from the tree (Brock's `value_threshold`; fjall's key-value
    /// separation with `separation_threshold` `t`; redb has none and
    /// ignores it). `None`: each store's default (Brock: Badger's 1 MiB;
    /// fjall: no separation).
    pub value_threshold: Option<u64>,
    /// The values the keys hold: 0 after the fill, `g` after `g`
    /// overwrites. The checking runners expect this generation and an
    /// overwrite writes the next; [`Config::after`] advances it.
    pub generation: u8,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            n: 1_000_000,
            value_size: 128,
            batch: 1000,
            order: Order::Random,
            sync: false,
            settle: Settle::default(),
            value_threshold: None,
            generation: 0,
        }
    }
}

impl Config {
    /// Refuses parameters the generator cannot serve.
    pub fn validate(&self) -> Result<()> {
        if self.n == 0 || self.n >= MAX_N {
            return Err(format!("n must be in 1..10^15, not {}", self.n).into());
        }
        if self.batch == 0 {
            return Err("batch must be at least 1".into());
        }
        Ok(())
    }

    /// The configuration for the workload that follows `op`: one generation
    /// later after an overwrite, the same otherwise.
    #[must_use]
    pub fn after(&self, op: Op) -> Config {
        let mut next = *self;
        if op == Op::Overwrite {
            next.generation = self.generation.wrapping_add(1);
        }
        next
    }

    /// Key and value bytes of all `n` entries: the live data while no key
    /// has been deleted.
    pub fn live_bytes(&self) -> u64 {
        self.n * (KEY_LEN + self.value_size) as u64
    }

    /// Entries a delete workload keeps: keys `i` with `i % 10 == 0`.
    pub fn live_after_delete(&self) -> u64 {
        self.n.div_ceil(10)
    }

    /// Key and value bytes of the entries a delete workload keeps.
    pub fn live_bytes_after_delete(&self) -> u64 {
        self.live_after_delete() * (KEY_LEN + self.value_size) as u64
    }
}

/// Whether the delete workload deletes key `i` (90% of the keys).
pub fn deleted_by_delete_workload(i: u64) -> bool {
    !i.is_multiple_of(10)
}

/// What a store says about itself; `None` where it does not say.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EngineStats {
    /// Seconds writes have stalled since the store opened.
    pub stall_secs: Option<f64>,
    /// The longest single stall since the store opened, in seconds.
    pub max_stall_secs: Option<f64>,
    /// Bytes the store counts as written to disk since it opened.
    pub bytes_written: Option<u64>,
    /// Compactions finished since the store opened.
    pub compactions: Option<u64>,
    /// A one-line description of the levels.
    pub levels: Option<String>,
}

/// A key-value store under test. Each call of [`Store::write_batch`] is one
/// write transaction (or atomic batch); each call of [`Store::read_batch`]
/// reads from one snapshot.
pub trait Store {
    /// The name in reports.
    fn name(&self) -> &'static str;

    /// Writes every entry of `batch` in one transaction and commits it;
    /// leaves `batch` empty.
    fn write_batch(&mut self, batch: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()>;

    /// Waits until every batch written so far is applied (a store that
    /// commits without waiting does it here; the fill's clock includes it).
    fn finish_writes(&mut self) -> Result<()> {
        Ok(())
    }

    /// Deletes every key of `keys` in one transaction and commits it.
    fn delete_batch(&mut self, keys: &[[u8; KEY_LEN]]) -> Result<()>;

    /// Looks every key up in one read transaction; calls `found` with the
    /// key's position in `keys` and its value for each key present.
    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()>;

    /// Calls `item` for every entry, in key order.
    fn scan(&mut self, item: Visitor<'_>) -> Result<()>;

    /// True when the store holds no entry.
    fn is_empty(&mut self) -> Result<bool>;

    /// Waits for the background work that writes started (memtable flushes
    /// and compactions) to go quiet; see [`wait_until_quiet`].
    fn settle(&mut self, _settle: &Settle) -> Result<Settled> {
        Ok(Settled::default())
    }

    /// The store's own counters.
    fn engine_stats(&self) -> EngineStats {
        EngineStats::default()
    }

    /// Runs the store's explicit "compact everything" call, if it has one,
    /// and returns its name for the report.
    fn compact_fully(&mut self) -> Result<Option<&'static str>> {
        Ok(None)
    }

    /// Runs the store's garbage collection of overwritten values until it
    /// has nothing left to collect, if it has one, and says what it did.
    fn collect_garbage(&mut self) -> Result<Option<GcOutcome>> {
        Ok(None)
    }

    /// Closes the store, reporting errors a drop would hide.
    fn close(self: Box<Self>) -> Result<()>;
}

/// What a store's garbage collection did ([`Store::collect_garbage`]);
/// `None` where the store does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcOutcome {
    /// The call, for the report.
    pub call: &'static str,
    /// Calls that collected something (Brock: files; fjall: major
    /// compactions; redb: `compact` calls that returned true).
    pub rounds: u64,
    /// Files collected (removed).
    pub files: Option<u64>,
    /// Their bytes.
    pub file_bytes: Option<u64>,
    /// Bytes written again elsewhere (the live values they held).
    pub rewritten_bytes: Option<u64>,
}

/// What the gc runner measured besides the [`Outcome`]'s common fields.
#[derive(Debug, Clone, PartialEq)]
pub struct GcMeasured {
    /// What the store's call did (`None`: the store has no GC).
    pub outcome: Option<GcOutcome>,
    /// The directory after the settle that precedes the GC.
    pub before: DirUsage,
}

/// What one runner measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The workload.
    pub op: Op,
    /// Operations done: entries written, lookups made, entries scanned,
    /// keys deleted.
    pub ops: u64,
    /// Entries written, keys found, entries scanned, keys deleted.
    pub items: u64,
    /// Key and value bytes written, found or scanned; key bytes deleted.
    pub bytes: u64,
    /// Seconds on the clock.
    pub secs: f64,
    /// CPU seconds of the whole process (every thread) in the same span.
    pub cpu_secs: Option<f64>,
    /// Seconds of [`Store::settle`] after a fill or delete (not in `secs`).
    pub settle_secs: f64,
    /// The settle hit its cap.
    pub settle_capped: bool,
    /// The longest single batch commit (fill and delete).
    pub max_batch_secs: Option<f64>,
    /// After a delete or GC and its settle: the entries a full scan found.
    pub remaining: Option<u64>,
    /// GC: the directory before and what the store's call did.
    pub gc: Option<GcMeasured>,
}

/// A clock started at the beginning of a timed region: wall and CPU time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall: Instant,
    cpu: Option<f64>,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: Instant::now(),
            cpu: process_cpu_secs(),
        }
    }

    /// Wall seconds and CPU seconds since the start.
    fn stop(&self) -> (f64, Option<f64>) {
        let secs = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, process_cpu_secs()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        };
        (secs, cpu)
    }
}

/// Receives each entry of a scan, in key order.
pub type Visitor<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

/// Calls `progress` with the number of operations done so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// Fills the store: `n` entries, `batch` per transaction, with the values
/// of `cfg.generation`.
pub fn run_write(store: &mut dyn Store, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    write_all(store, cfg, Op::Write, cfg.generation, progress)
}

/// Writes every key again with the next generation's values, exactly as
/// [`run_write`] writes them (order, batches, settle). Every value written
/// before becomes garbage.
pub fn run_overwrite(store: &mut dyn Store, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    write_all(
        store,
        cfg,
        Op::Overwrite,
        cfg.generation.wrapping_add(1),
        progress,
    )
}

fn write_all(
    store: &mut dyn Store,
    cfg: &Config,
    op: Op,
    generation: u8,
    progress: Progress<'_>,
) -> Result<Outcome> {
    cfg.validate()?;
    let order = write_order(cfg.n, cfg.order);
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(cfg.batch);
    let mut bytes = 0u64;
    let mut done = 0u64;
    let mut max_batch = Duration::ZERO;
    let clock = Clock::start();
    for chunk in order.chunks(cfg.batch) {
        for &i in chunk {
            let mut v = Vec::with_capacity(cfg.value_size);
            fill_value_of(i, generation, cfg.value_size, &mut v);
            batch.push((key(i).to_vec(), v));
        }
        bytes += (chunk.len() * (KEY_LEN + cfg.value_size)) as u64;
        let t = Instant::now();
        store.write_batch(&mut batch)?;
        max_batch = max_batch.max(t.elapsed());
        batch.clear();
        done += chunk.len() as u64;
        progress(done);
    }
    store.finish_writes()?;
    let (secs, cpu_secs) = clock.stop();
    let settled = store.settle(&cfg.settle)?;
    Ok(Outcome {
        op,
        ops: cfg.n,
        items: cfg.n,
        bytes,
        secs,
        cpu_secs,
        settle_secs: settled.secs,
        settle_capped: settled.capped,
        max_batch_secs: Some(max_batch.as_secs_f64()),
        remaining: None,
        gc: None,
    })
}

/// Garbage collection to completion: settles (so the overwrite's flushes
/// and compactions are done), measures `dir`, runs
/// [`Store::collect_garbage`] on the clock, settles again (the GC's own
/// writes), and checks with a full scan (not timed) that every key is there
/// with the value of `cfg.generation`.
///
/// `ops` and `items` are the files collected (the rounds when the store
/// does not count files), `bytes` their bytes (else the drop of the
/// directory's allocated size), so `mb_per_sec` is the GC's throughput in
/// bytes of files collected.
pub fn run_gc(store: &mut dyn Store, cfg: &Config, dir: &Path, progress: Progress<'_>) -> Result<Outcome> {
    cfg.validate()?;
    store.settle(&cfg.settle)?;
    let before = dir_usage(dir)?;
    let clock = Clock::start();
    let outcome = store.collect_garbage()?;
    let (secs, cpu_secs) = clock.stop();
    let settled = store.settle(&cfg.settle)?;
    let remaining = check_every_key(store, cfg)?;
    progress(remaining);
    let (ops, bytes) = match &outcome {
        Some(g) => {
            let bytes = match g.file_bytes {
                Some(b) => b,
                None => before.allocated.saturating_sub(dir_usage(dir)?.allocated),
            };
            (g.files.unwrap_or(g.rounds), bytes)
        }
        None => (0, 0),
    };
    Ok(Outcome {
        op: Op::Gc,
        ops,
        items: ops,
        bytes,
        secs,
        cpu_secs,
        settle_secs: settled.secs,
        settle_capped: settled.capped,
        max_batch_secs: None,
        remaining: Some(remaining),
        gc: Some(GcMeasured { outcome, before }),
    })
}

/// Scans everything: exactly the keys `0..n`, each with the value of
/// `cfg.generation`. Returns the count.
pub fn check_every_key(store: &mut dyn Store, cfg: &Config) -> Result<u64> {
    let mut count = 0u64;
    store.scan(&mut |k, v| {
        let i = key_index(k).filter(|&i| i == count).ok_or_else(|| {
            format!(
                "after GC, key {:?} where key {} should be",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&key(count))
            )
        })?;
        if !value_matches_of(i, cfg.generation, cfg.value_size, v) {
            return Err(format!(
                "after GC, key {} has a value that is not generation {}'s",
                String::from_utf8_lossy(k),
                cfg.generation
            )
            .into());
        }
        count += 1;
        Ok(())
    })?;
    if count != cfg.n {
        return Err(format!("after GC, {count} entries, not {}", cfg.n).into());
    }
    Ok(count)
}

/// Deletes every key `i < n` with `i % 10 != 0`, in the random write order
/// (whatever `cfg.order` says), `batch` per transaction; then settles and
/// checks with a full scan (not timed) that exactly the other keys remain.
pub fn run_delete(store: &mut dyn Store, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    cfg.validate()?;
    let order: Vec<u64> = permutation(cfg.n)
        .into_iter()
        .filter(|&i| deleted_by_delete_workload(i))
        .collect();
    let mut keys: Vec<[u8; KEY_LEN]> = Vec::with_capacity(cfg.batch);
    let mut done = 0u64;
    let mut max_batch = Duration::ZERO;
    let clock = Clock::start();
    for chunk in order.chunks(cfg.batch) {
        keys.clear();
        keys.extend(chunk.iter().map(|&i| key(i)));
        let t = Instant::now();
        store.delete_batch(&keys)?;
        max_batch = max_batch.max(t.elapsed());
        done += chunk.len() as u64;
        progress(done);
    }
    let (secs, cpu_secs) = clock.stop();
    let settled = store.settle(&cfg.settle)?;
    let remaining = check_after_delete(store, cfg)?;
    Ok(Outcome {
        op: Op::Delete,
        ops: done,
        items: done,
        bytes: done * KEY_LEN as u64,
        secs,
        cpu_secs,
        settle_secs: settled.secs,
        settle_capped: settled.capped,
        max_batch_secs: Some(max_batch.as_secs_f64()),
        remaining: Some(remaining),
        gc: None,
    })
}

/// Scans everything after a delete: every entry must be a kept key with the
/// generator's value, and every kept key must be there. Returns the count.
pub fn check_after_delete(store: &mut dyn Store, cfg: &Config) -> Result<u64> {
    let mut count = 0u64;
    store.scan(&mut |k, v| {
        let i = key_index(k).ok_or_else(|| {
            format!(
                "after the delete, a key the generator does not make: {:?}",
                String::from_utf8_lossy(k)
            )
        })?;
        if deleted_by_delete_workload(i) {
            return Err(format!(
                "after the delete, deleted key {} is still there",
                String::from_utf8_lossy(k)
            )
            .into());
        }
        if !value_matches_of(i, cfg.generation, cfg.value_size, v) {
            return Err(format!(
                "after the delete, key {} has a value that is not the generator's",
                String::from_utf8_lossy(k)
            )
            .into());
        }
        count += 1;
        Ok(())
    })?;
    let want = cfg.live_after_delete();
    if count != want {
        return Err(format!("after the delete, {count} entries remain, not {want}").into());
    }
    Ok(count)
}

/// `n` random lookups, `batch` per read transaction. Every value found must
/// be the generator's (length and first bytes); missing keys are counted in
/// `items` (keys found), not treated as errors.
pub fn run_read(store: &mut dyn Store, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    cfg.validate()?;
    let mut order = read_order(cfg.n);
    let mut indices: Vec<u64> = Vec::with_capacity(cfg.batch);
    let mut keys: Vec<[u8; KEY_LEN]> = Vec::with_capacity(cfg.batch);
    let (mut found, mut bytes, mut done) = (0u64, 0u64, 0u64);
    let mut wrong: Option<u64> = None;
    let clock = Clock::start();
    while done < cfg.n {
        let len = (cfg.n - done).min(cfg.batch as u64);
        indices.clear();
        keys.clear();
        for i in order.by_ref().take(len as usize) {
            indices.push(i);
            keys.push(key(i));
        }
        store.read_batch(&keys, &mut |pos, v| {
            let i = indices[pos];
            if value_matches_of(i, cfg.generation, cfg.value_size, v) {
                found += 1;
                bytes += (KEY_LEN + v.len()) as u64;
            } else if wrong.is_none() {
                wrong = Some(i);
            }
        })?;
        if let Some(i) = wrong {
            return Err(format!(
                "read of key {} returned a value that is not the generator's at {} bytes",
                String::from_utf8_lossy(&key(i)),
                cfg.value_size
            )
            .into());
        }
        done += len;
        progress(done);
    }
    let (secs, cpu_secs) = clock.stop();
    Ok(Outcome {
        op: Op::Read,
        ops: cfg.n,
        items: found,
        bytes,
        secs,
        cpu_secs,
        settle_secs: 0.0,
        settle_capped: false,
        max_batch_secs: None,
        remaining: None,
        gc: None,
    })
}

/// Iterates everything, checking that keys ascend and that each value is
/// the generator's.
pub fn run_scan(store: &mut dyn Store, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    cfg.validate()?;
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut prev: Vec<u8> = Vec::with_capacity(KEY_LEN);
    let clock = Clock::start();
    store.scan(&mut |k, v| {
        if count > 0 && k <= prev.as_slice() {
            return Err(format!(
                "scan went from key {:?} to {:?}",
                String::from_utf8_lossy(&prev),
                String::from_utf8_lossy(k)
            )
            .into());
        }
        let Some(i) = key_index(k) else {
            return Err(format!(
                "scan found a key the generator does not make: {:?}",
                String::from_utf8_lossy(k)
            )
            .into());
        };
        if !value_matches_of(i, cfg.generation, cfg.value_size, v) {
            return Err(format!(
                "scan found a value for key {:?} that is not the generator's at {} bytes",
                String::from_utf8_lossy(k),
                cfg.value_size
            )
            .into());
        }
        prev.clear();
        prev.extend_from_slice(k);
        count += 1;
        bytes += (k.len() + v.len()) as u64;
        if count % 4096 == 0 {
            progress(count);
        }
        Ok(())
    })?;
    progress(count);
    let (secs, cpu_secs) = clock.stop();
    Ok(Outcome {
        op: Op::Scan,
        ops: count,
        items: count,
        bytes,
        secs,
        cpu_secs,
        settle_secs: 0.0,
        settle_capped: false,
        max_batch_secs: None,
        remaining: None,
        gc: None,
    })
}

/// Runs one workload on the store in `dir`.
pub fn run_workload(
    store: &mut dyn Store,
    op: Op,
    cfg: &Config,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Outcome> {
    match op {
        Op::Write => run_write(store, cfg, progress),
        Op::Read => run_read(store, cfg, progress),
        Op::Scan => run_scan(store, cfg, progress),
        Op::Overwrite => run_overwrite(store, cfg, progress),
        Op::Gc => run_gc(store, cfg, dir, progress),
        Op::Delete => run_delete(store, cfg, progress),
    }
}

/// Runs one workload and makes its report line: resets the peak RSS first
/// (see [`reset_peak_rss`]), reads the process's I/O counters and the
/// store's own before and after (the settle after a fill or delete
/// included), measures the directory afterwards. After a delete it also
/// runs the store's full compaction, if it has one, and measures again.
pub fn run_op(
    store: &mut dyn Store,
    op: Op,
    cfg: &Config,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Report> {
    reset_peak_rss();
    let io_before = process_io();
    let engine_before = store.engine_stats();
    let outcome = run_workload(store, op, cfg, dir, progress)?;
    let io_after = process_io();
    let peak = peak_rss_bytes();
    let engine = store.engine_stats();
    let usage = dir_usage(dir)?;
    let mut r = Report::new(store.name(), cfg, &outcome, &usage, peak);
    if let (Some(a), Some(b)) = (io_before, io_after) {
        let d = b.since(&a);
        r.disk_write_bytes = Some(d.write_bytes);
        r.cancelled_write_bytes = Some(d.cancelled_write_bytes);
        r.write_syscall_bytes = Some(d.wchar);
        if op.writes() && outcome.bytes > 0 {
            r.write_amp = Some(d.wchar as f64 / outcome.bytes as f64);
        }
    }
    r.stall_secs = engine.stall_secs;
    r.max_stall_secs = engine.max_stall_secs;
    r.engine_bytes_written = delta(engine_before.bytes_written, engine.bytes_written);
    r.compactions = delta(engine_before.compactions, engine.compactions);
    r.levels = engine.levels;
    if let Some(gc) = &outcome.gc {
        let live = cfg.live_bytes();
        r.live_bytes = Some(live);
        r.space_amp = Some(usage.allocated as f64 / live as f64);
        r.gc_before_dir_bytes = Some(gc.before.apparent);
        r.gc_before_dir_alloc_bytes = Some(gc.before.allocated);
        r.gc_before_space_amp = Some(gc.before.allocated as f64 / live as f64);
        r.gc_before_dir_files = Some(gc.before.by_kind.clone());
        if let Some(g) = &gc.outcome {
            r.gc_call = Some(g.call.to_string());
            r.gc_rounds = Some(g.rounds);
            r.gc_files = g.files;
            r.gc_file_bytes = g.file_bytes;
            r.gc_rewritten_bytes = g.rewritten_bytes;
        }
    }
    if op == Op::Delete {
        let live = cfg.live_bytes_after_delete();
        r.live_bytes = Some(live);
        r.space_amp = Some(usage.allocated as f64 / live as f64);
        let started = Instant::now();
        if let Some(call) = store.compact_fully()? {
            let settled = store.settle(&cfg.settle)?;
            let secs = started.elapsed().as_secs_f64();
            check_after_delete(store, cfg)?;
            let after = dir_usage(dir)?;
            r.compact_call = Some(call.to_string());
            r.compact_secs = Some(secs);
            r.compact_settle_capped = Some(settled.capped);
            r.compacted_dir_bytes = Some(after.apparent);
            r.compacted_dir_alloc_bytes = Some(after.allocated);
            r.compacted_space_amp = Some(after.allocated as f64 / live as f64);
            r.compacted_levels = store.engine_stats().levels;
        }
    }
    Ok(r)
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

/// One line of output per workload.
///
/// Fields that do not apply to a store or a workload are `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The store.
    pub store: String,
    /// The workload: write, read, scan, overwrite, gc or delete.
    pub op: Op,
    /// The run's `n`.
    pub n: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Entries per transaction.
    pub batch: usize,
    /// The run's key-value separation threshold ([`Config::value_threshold`];
    /// `null`: each store's default).
    #[serde(default)]
    pub value_threshold: Option<u64>,
    /// Seconds on the clock.
    pub secs: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Key and value bytes per second, in MB (10^6 bytes).
    pub mb_per_sec: f64,
    /// Sum of the apparent sizes of the files in the directory afterwards.
    pub dir_bytes: u64,
    /// The same files' allocated size (`du`: blocks × 512; sparse
    /// preallocation is not counted, delayed allocation is).
    #[serde(default)]
    pub dir_alloc_bytes: u64,
    /// Allocated bytes per kind of file (extension, name, or `dir/*` for
    /// numbered files).
    #[serde(default)]
    pub dir_files: BTreeMap<String, u64>,
    /// The process's peak resident set (VmHWM) during the workload.
    pub peak_rss_bytes: Option<u64>,
    /// Seconds writes have stalled since the store opened (Brock only).
    pub stall_secs: Option<f64>,
    /// The longest single write stall since the store opened (Brock only).
    #[serde(default)]
    pub max_stall_secs: Option<f64>,
    /// Entries written, keys found, entries scanned, keys deleted.
    pub items: u64,
    /// Seconds waiting for background work after a fill or a delete (not in
    /// `secs`): until the last change before the store went quiet.
    pub settle_secs: f64,
    /// The settle gave up at its cap before the store went quiet.
    #[serde(default)]
    pub settle_capped: bool,
    /// CPU seconds of the process, every thread, during `secs` (on a busy
    /// machine a steadier measure of the work than `secs`).
    pub cpu_secs: Option<f64>,
    /// The longest single batch commit (write and delete): the stall a
    /// writer sees, measured the same way for every store.
    #[serde(default)]
    pub max_batch_secs: Option<f64>,
    /// `/proc/self/io` `write_bytes` over the workload and its settle: page
    /// cache bytes the process dirtied, as accounted for storage.
    #[serde(default)]
    pub disk_write_bytes: Option<u64>,
    /// `/proc/self/io` `cancelled_write_bytes` in the same span: of those,
    /// bytes whose files were deleted or truncated before writeback.
    #[serde(default)]
    pub cancelled_write_bytes: Option<u64>,
    /// `/proc/self/io` `wchar` in the same span: bytes passed to write
    /// system calls.
    #[serde(default)]
    pub write_syscall_bytes: Option<u64>,
    /// Write and delete: `write_syscall_bytes` per byte of user data
    /// (key + value written, or key deleted).
    #[serde(default)]
    pub write_amp: Option<f64>,
    /// Bytes the store itself counts as written in the same span (Brock's
    /// `Stats::bytes_written`: WAL appends and table files).
    #[serde(default)]
    pub engine_bytes_written: Option<u64>,
    /// Compactions the store finished in the same span (Brock, fjall).
    #[serde(default)]
    pub compactions: Option<u64>,
    /// The store's levels afterwards (Brock's `Db::levels()`).
    #[serde(default)]
    pub levels: Option<String>,
    /// Delete and gc: the entries a full scan found after the settle (checked).
    #[serde(default)]
    pub remaining: Option<u64>,
    /// Delete: key and value bytes of the entries kept; gc: of all `n`.
    #[serde(default)]
    pub live_bytes: Option<u64>,
    /// Delete: `dir_alloc_bytes / live_bytes` after background compaction;
    /// gc: the same after the GC and its settle.
    #[serde(default)]
    pub space_amp: Option<f64>,
    /// Gc: the store's GC call.
    #[serde(default)]
    pub gc_call: Option<String>,
    /// Gc: calls that collected something (Brock: files; fjall: major
    /// compactions; redb: `compact` calls that returned true).
    #[serde(default)]
    pub gc_rounds: Option<u64>,
    /// Gc: files the GC removed (Brock: value-log files; fjall: blob files).
    #[serde(default)]
    pub gc_files: Option<u64>,
    /// Gc: their bytes (`mb_per_sec` is these per second).
    #[serde(default)]
    pub gc_file_bytes: Option<u64>,
    /// Gc: bytes of live values the GC wrote again.
    #[serde(default)]
    pub gc_rewritten_bytes: Option<u64>,
    /// Gc: `dir_bytes` before the GC (after a settle).
    #[serde(default)]
    pub gc_before_dir_bytes: Option<u64>,
    /// Gc: `dir_alloc_bytes` before the GC.
    #[serde(default)]
    pub gc_before_dir_alloc_bytes: Option<u64>,
    /// Gc: `gc_before_dir_alloc_bytes / live_bytes`.
    #[serde(default)]
    pub gc_before_space_amp: Option<f64>,
    /// Gc: `dir_files` before the GC.
    #[serde(default)]
    pub gc_before_dir_files: Option<BTreeMap<String, u64>>,
    /// Delete: the explicit full compaction run after that measurement.
    #[serde(default)]
    pub compact_call: Option<String>,
    /// Delete: seconds of that call and the settle after it.
    #[serde(default)]
    pub compact_secs: Option<f64>,
    /// Delete: that settle gave up at its cap.
    #[serde(default)]
    pub compact_settle_capped: Option<bool>,
    /// Delete: `dir_bytes` after the full compaction.
    #[serde(default)]
    pub compacted_dir_bytes: Option<u64>,
    /// Delete: `dir_alloc_bytes` after the full compaction.
    #[serde(default)]
    pub compacted_dir_alloc_bytes: Option<u64>,
    /// Delete: `compacted_dir_alloc_bytes / live_bytes`.
    #[serde(default)]
    pub compacted_space_amp: Option<f64>,
    /// Delete: the levels after the full compaction (Brock).
    #[serde(default)]
    pub compacted_levels: Option<String>,
}

impl Report {
    /// The report of `outcome`; the store's counters, the I/O and the
    /// delete's measurements are left empty for [`run_op`] to fill.
    pub fn new(
        store: &str,
        cfg: &Config,
        outcome: &Outcome,
        usage: &DirUsage,
        peak_rss_bytes: Option<u64>,
    ) -> Self {
        let secs = outcome.secs.max(1e-9);
        Report {
            store: store.to_string(),
            op: outcome.op,
            n: cfg.n,
            value_size: cfg.value_size,
            batch: cfg.batch,
            value_threshold: cfg.value_threshold,
            secs: outcome.secs,
            ops_per_sec: outcome.ops as f64 / secs,
            mb_per_sec: outcome.bytes as f64 / secs / 1e6,
            dir_bytes: usage.apparent,
            dir_alloc_bytes: usage.allocated,
            dir_files: usage.by_kind.clone(),
            peak_rss_bytes,
            stall_secs: None,
            max_stall_secs: None,
            items: outcome.items,
            settle_secs: outcome.settle_secs,
            settle_capped: outcome.settle_capped,
            cpu_secs: outcome.cpu_secs,
            max_batch_secs: outcome.max_batch_secs,
            disk_write_bytes: None,
            cancelled_write_bytes: None,
            write_syscall_bytes: None,
            write_amp: None,
            engine_bytes_written: None,
            compactions: None,
            levels: None,
            remaining: outcome.remaining,
            live_bytes: None,
            space_amp: None,
            gc_call: None,
            gc_rounds: None,
            gc_files: None,
            gc_file_bytes: None,
            gc_rewritten_bytes: None,
            gc_before_dir_bytes: None,
            gc_before_dir_alloc_bytes: None,
            gc_before_space_amp: None,
            gc_before_dir_files: None,
            compact_call: None,
            compact_secs: None,
            compact_settle_capped: None,
            compacted_dir_bytes: None,
            compacted_dir_alloc_bytes: None,
            compacted_space_amp: None,
            compacted_levels: None,
        }
    }

    /// The report as one JSON line (no newline).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parses a line made by [`Report::to_json`].
    pub fn from_json(line: &str) -> Result<Self> {
        Ok(serde_json::from_str(line)?)
    }

    /// Operations per second counting the settle after a fill or delete.
    pub fn ops_per_sec_settled(&self) -> f64 {
        let ops = self.ops_per_sec * self.secs;
        ops / (self.secs + self.settle_secs).max(1e-9)
    }
}

/// The space a directory takes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirUsage {
    /// Sum of the files' apparent sizes.
    pub apparent: u64,
    /// Sum of their allocated sizes (blocks × 512, what `du` counts).
    pub allocated: u64,
    /// Allocated bytes per kind of file: its extension; without one, its
    /// name, or `parent/*` when the name is a number.
    pub by_kind: BTreeMap<String, u64>,
}

/// Sum of the apparent sizes of the files under `dir` (symlinks not followed).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    Ok(dir_usage(dir)?.apparent)
}

/// The apparent and allocated sizes of the files under `dir` (symlinks not
/// followed), in total and per kind of file.
pub fn dir_usage(dir: &Path) -> Result<DirUsage> {
    let mut u = DirUsage::default();
    add_dir_usage(dir, &mut u)?;
    Ok(u)
}

fn add_dir_usage(dir: &Path, u: &mut DirUsage) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry?;
        // A file may vanish between listing and stat (a flush deleting a WAL).
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            // Or a directory, between listing and reading.
            match add_dir_usage(&entry.path(), u) {
                Ok(()) => {}
                Err(_) if !entry.path().exists() => {}
                Err(e) => return Err(e),
            }
            continue;
        }
        let allocated = allocated_bytes(&meta);
        u.apparent += meta.len();
        u.allocated += allocated;
        *u.by_kind.entry(file_kind(&entry.path())).or_insert(0) += allocated;
    }
    Ok(())
}

#[cfg(unix)]
fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn allocated_bytes(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

/// `sst`, `MANIFEST`, `tables/*`: see [`DirUsage::by_kind`].
fn file_kind(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(ext) = path.extension() {
        return ext.to_string_lossy().into_owned();
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        let parent = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        return format!("{parent}/*");
    }
    name
}

/// The process's I/O counters (`/proc/self/io`, every thread, Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoCounters {
    /// Bytes passed to write system calls (`wchar`).
    pub wchar: u64,
    /// Bytes of page cache dirtied, accounted for storage (`write_bytes`).
    pub write_bytes: u64,
    /// Of those, bytes dropped before writeback (`cancelled_write_bytes`).
    pub cancelled_write_bytes: u64,
}

impl IoCounters {
    /// The counters since `earlier`.
    pub fn since(&self, earlier: &IoCounters) -> IoCounters {
        IoCounters {
            wchar: self.wchar.saturating_sub(earlier.wchar),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
            cancelled_write_bytes: self
                .cancelled_write_bytes
                .saturating_sub(earlier.cancelled_write_bytes),
        }
    }
}

/// The process's I/O counters now, where `/proc/self/io` can be read.
pub fn process_io() -> Option<IoCounters> {
    let text = std::fs::read_to_string("/proc/self/io").ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
            .trim()
            .parse()
            .ok()
    };
    Some(IoCounters {
        wchar: field("wchar")?,
        write_bytes: field("write_bytes")?,
        cancelled_write_bytes: field("cancelled_write_bytes")?,
    })
}

/// The process's peak resident set size (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU seconds (user and system, every thread) the process has used, from
/// `/proc/self/stat` (10 ms resolution).
pub fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Linux reports these in USER_HZ, which is 100 on every architecture.
    Some((utime + stime) as f64 / 100.0)
}

/// Resets the peak RSS to the current RSS (Linux ≥ 4.0: `5` to
/// `/proc/self/clear_refs`), so that the next reading covers only what
/// follows. Returns false where that is not possible; readings then cover
/// the process so far.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A fresh temporary directory for one store, under `root` or the system's
/// temporary directory; removed when dropped.
pub fn temp_dir(root: Option<&Path>) -> Result<tempfile::TempDir> {
    let mut b = tempfile::Builder::new();
    b.prefix("brock-bench-");
    Ok(match root {
        Some(r) => b.tempdir_in(r)?,
        None => b.tempdir()?,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A human table of reports: one row per report, then the deletes' space
/// and Brock's levels.
pub fn summary_table(reports: &[Report]) -> String {
    let mut s = String::new();
    let dash = || "-".to_string();
    let _ = writeln!(
        s,
        "{:<6} {:<9} {:>8} {:>7} {:>6} {:>9} {:>6} {:>8} {:>8} {:>6} {:>7} {:>7} {:>7} {:>6}",
        "store",
        "op",
        "items",
        "secs",
        "cpu s",
        "ops/s",
        "MB/s",
        "du MiB",
        "RSS MiB",
        "WA",
        "maxbat",
        "stall s",
        "maxstl",
        "settle"
    );
    for r in reports {
        let cpu = r.cpu_secs.map_or_else(dash, |c| format!("{c:.2}"));
        let rss = r.peak_rss_bytes.map_or_else(dash, |b| format!("{:.0}", mib(b)));
        let wa = r.write_amp.map_or_else(dash, |w| format!("{w:.2}"));
        let max_batch = r.max_batch_secs.map_or_else(dash, |b| format!("{b:.3}"));
        let stall = r.stall_secs.map_or_else(dash, |s| format!("{s:.2}"));
        let max_stall = r.max_stall_secs.map_or_else(dash, |s| format!("{s:.3}"));
        let settle = if r.op.writes() || r.op == Op::Gc {
            format!("{:.2}{}", r.settle_secs, if r.settle_capped { "!" } else { "" })
        } else {
            dash()
        };
        let _ = writeln!(
            s,
            "{:<6} {:<9} {:>8} {:>7.2} {:>6} {:>9.0} {:>6.1} {:>8.1} {:>8} {:>6} {:>7} {:>7} {:>7} {:>6}",
            r.store,
            r.op.name(),
            r.items,
            r.secs,
            cpu,
            r.ops_per_sec,
            r.mb_per_sec,
            mib(r.dir_alloc_bytes),
            rss,
            wa,
            max_batch,
            stall,
            max_stall,
            settle
        );
    }
    let deletes: Vec<&Report> = reports.iter().filter(|r| r.op == Op::Delete).collect();
    if !deletes.is_empty() {
        let _ = writeln!(
            s,
            "\nafter deleting 90%: {:<6} {:>9} {:>8} {:>9}   then {:<38} {:>7} {:>8} {:>9}",
            "store", "live MiB", "du MiB", "space amp", "full compaction", "secs", "du MiB", "space amp"
        );
        for r in deletes {
            let opt_mib = |b: Option<u64>| b.map_or_else(dash, |b| format!("{:.1}", mib(b)));
            let _ = writeln!(
                s,
                "{:<19} {:<6} {:>9} {:>8.1} {:>9} {:>4} {:<38} {:>7} {:>8} {:>9}",
                "",
                r.store,
                opt_mib(r.live_bytes),
                mib(r.dir_alloc_bytes),
                r.space_amp.map_or_else(dash, |a| format!("{a:.2}")),
                "",
                r.compact_call.clone().unwrap_or_else(|| "(none)".into()),
                r.compact_secs.map_or_else(dash, |c| format!("{c:.1}")),
                opt_mib(r.compacted_dir_alloc_bytes),
                r.compacted_space_amp.map_or_else(dash, |a| format!("{a:.2}")),
            );
        }
    }
    let gcs: Vec<&Report> = reports.iter().filter(|r| r.op == Op::Gc).collect();
    if !gcs.is_empty() {
        let _ = writeln!(
            s,
            "\ngarbage collection: {:<6} {:>9} {:>10} {:>9} {:>7} {:>6} {:>10} {:>10} {:>7} {:>9} {:>9}   call",
            "store",
            "live MiB",
            "before MiB",
            "amp",
            "secs",
            "files",
            "files MiB",
            "rewr. MiB",
            "MB/s",
            "after MiB",
            "amp"
        );
        for r in gcs {
            let opt_mib = |b: Option<u64>| b.map_or_else(dash, |b| format!("{:.1}", mib(b)));
            let opt_amp = |a: Option<f64>| a.map_or_else(dash, |a| format!("{a:.2}"));
            let _ = writeln!(
                s,
                "{:<19} {:<6} {:>9} {:>10} {:>9} {:>7.1} {:>6} {:>10} {:>10} {:>7.1} {:>9.1} {:>9}   {}",
                "",
                r.store,
                opt_mib(r.live_bytes),
                opt_mib(r.gc_before_dir_alloc_bytes),
                opt_amp(r.gc_before_space_amp),
                r.secs,
                r.gc_files.map_or_else(dash, |f| f.to_string()),
                opt_mib(r.gc_file_bytes),
                opt_mib(r.gc_rewritten_bytes),
                r.mb_per_sec,
                mib(r.dir_alloc_bytes),
                opt_amp(r.space_amp),
                r.gc_call.clone().unwrap_or_else(|| "(none)".into()),
            );
        }
    }
    for r in reports {
        if let Some(l) = &r.levels {
            let _ = writeln!(s, "{} levels after {}: {l}", r.store, r.op.name());
        }
        if let Some(l) = &r.compacted_levels {
            let _ = writeln!(
                s,
                "{} levels after {}: {l}",
                r.store,
                r.compact_call.as_deref().unwrap_or("compaction")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_first_outputs_from_0x5eed() {
        // Computed independently (Python, 64-bit wrapping arithmetic).
        let mut r = SplitMix64::new(0x5EED);
        assert_eq!(r.next_u64(), 0x09F1_FD9D_03F0_A9B4);
        assert_eq!(r.next_u64(), 0x5532_7416_1BBF_8475);
        assert_eq!(r.next_u64(), 0x5D5B_CA46_96B3_43B3);
    }

    #[test]
    fn splitmix64_state_zero_is_the_reference_sequence() {
        // Vigna's splitmix64.c from state 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn keys() {
        assert_eq!(&key(7), b"k000000000000007");
        assert_eq!(&key(0), b"k000000000000000");
        assert_eq!(&key(123_456_789), b"k000000123456789");
        assert_eq!(&key(MAX_N - 1), b"k999999999999999");
        for i in [0, 7, 10, 999, 1_000_000, MAX_N - 1] {
            assert_eq!(key_index(&key(i)), Some(i));
            assert_eq!(key(i).to_vec(), format!("k{i:015}").into_bytes());
        }
        assert_eq!(key_index(b"k00000000000000x"), None);
        assert_eq!(key_index(b"k0"), None);
    }

    #[test]
    fn values() {
        let v = value(5, 20);
        assert_eq!(v.len(), 20);
        let mut r = SplitMix64::new(5 ^ GOLDEN_GAMMA);
        let a = r.next_u64().to_le_bytes();
        let b = r.next_u64().to_le_bytes();
        let c = r.next_u64().to_le_bytes();
        assert_eq!(&v[..8], &a);
        assert_eq!(&v[8..16], &b);
        assert_eq!(&v[16..], &c[..4]);
        assert!(value(5, 0).is_empty());
        assert_eq!(value(5, 3), a[..3].to_vec());
        assert!(value_matches(5, 20, &v));
        assert!(!value_matches(6, 20, &v));
        assert!(!value_matches(5, 21, &v));
    }

    #[test]
    fn generations_have_their_own_values() {
        // Generation 0 is the fill's value (and the Go fixtures').
        assert_eq!(value_state(5, 0), 5 ^ GOLDEN_GAMMA);
        let mut v0 = Vec::new();
        fill_value_of(5, 0, 40, &mut v0);
        assert_eq!(v0, value(5, 40));
        let mut v1 = Vec::new();
        fill_value_of(5, 1, 40, &mut v1);
        assert_ne!(v0, v1);
        let mut r = SplitMix64::new(5 ^ GOLDEN_GAMMA ^ (1 << 56));
        assert_eq!(&v1[..8], &r.next_u64().to_le_bytes());
        assert!(value_matches_of(5, 1, 40, &v1) && !value_matches_of(5, 0, 40, &v1));
        assert!(value_matches(5, 40, &v0) && !value_matches_of(5, 1, 40, &v0));
        // The overwrite advances the generation; nothing else does.
        let cfg = Config::default();
        assert_eq!(cfg.after(Op::Overwrite).generation, 1);
        assert_eq!(cfg.after(Op::Overwrite).after(Op::Gc).generation, 1);
        for op in [Op::Write, Op::Read, Op::Scan, Op::Gc, Op::Delete] {
            assert_eq!(cfg.after(op), cfg);
        }
        assert_eq!(
            Config {
                n: 10,
                value_size: 4,
                ..cfg
            }
            .live_bytes(),
            200
        );
    }

    #[test]
    fn permutation_is_a_permutation() {
        for n in [0u64, 1, 2, 3, 10, 1000, 65_537] {
            let p = permutation(n);
            let mut seen = vec![false; n as usize];
            for &i in &p {
                assert!(!seen[i as usize], "{i} twice for n={n}");
                seen[i as usize] = true;
            }
            assert!(seen.iter().all(|&s| s));
        }
        // Random, not the identity, and the same every time.
        assert_ne!(permutation(1000), (0..1000).collect::<Vec<_>>());
        assert_eq!(permutation(1000), permutation(1000));
    }

    #[test]
    fn permutation_is_top_down_fisher_yates() {
        let n = 5u64;
        let mut want: Vec<u64> = (0..n).collect();
        let mut r = SplitMix64::new(ORDER_SEED);
        let mut i = n as usize - 1;
        while i >= 1 {
            let j = (r.next_u64() % (i as u64 + 1)) as usize;
            want.swap(i, j);
            i -= 1;
        }
        assert_eq!(permutation(n), want);
    }

    #[test]
    fn read_order_is_splitmix_from_0xbeef() {
        let mut r = SplitMix64::new(0xBEEF);
        let want: Vec<u64> = (0..100).map(|_| r.next_u64() % 1000).collect();
        let got: Vec<u64> = read_order(1000).take(100).collect();
        assert_eq!(got, want);
        assert!(got.iter().all(|&i| i < 1000));
    }

    #[test]
    fn value_of_key_zero_matches_the_go_fixture() {
        // multilevel: n = 150000, 100-byte values, written by Go Badger from
        // the same generator. Its `.head.txt` holds the first lines of the
        // dump (key hex, tab, value hex), each cut to 200 characters; the
        // first is key 0.
        // `$BROCK_FIXTURES` as in the engine's tests, else ../shared beside
        // the checkout.
        let dir = std::env::var_os("BROCK_FIXTURES").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/badger-v4"),
            std::path::PathBuf::from,
        );
        let path = dir.join("multilevel.latest.head.txt");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let line = text.lines().next().expect("an empty fixture");
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let full = format!("{}\t{}", hex(&key(0)), hex(&value(0, 100)));
        assert_eq!(line.len(), 200, "the fixture's lines are cut to 200 characters");
        assert_eq!(line, &full[..200]);
        let (_, v) = line.split_once('\t').expect("a line without a tab");
        assert!(v.len() >= 2 * 80, "too little of the value to compare");
    }

    #[test]
    fn reports_round_trip_as_json_lines() {
        let cfg = Config::default();
        let o = Outcome {
            op: Op::Read,
            ops: 10,
            items: 9,
            bytes: 1440,
            secs: 0.5,
            cpu_secs: Some(0.25),
            settle_secs: 0.0,
            settle_capped: false,
            max_batch_secs: None,
            remaining: None,
            gc: None,
        };
        let usage = DirUsage {
            apparent: 4096,
            allocated: 8192,
            by_kind: [("sst".to_string(), 8192)].into_iter().collect(),
        };
        let mut r = Report::new("brock", &cfg, &o, &usage, Some(1 << 20));
        r.write_amp = Some(1.5);
        let line = r.to_json();
        assert!(line.starts_with(r#"{"store":"brock","op":"read","n":1000000,"value_size":128,"batch":1000,"value_threshold":null,"secs":0.5,"ops_per_sec":20.0,"#), "{line}");
        assert!(
            line.contains(r#""dir_alloc_bytes":8192,"dir_files":{"sst":8192}"#),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert_eq!(Report::from_json(&line).unwrap(), r);
        assert!(peak_rss_bytes().unwrap_or(1) > 0);
        assert!(process_cpu_secs().unwrap_or(0.0) >= 0.0);
    }

    #[test]
    fn ops_plan_fills_first_and_keeps_the_order() {
        use std::str::FromStr;
        assert_eq!(Op::plan(&[Op::Delete]), [Op::Write, Op::Delete]);
        assert_eq!(
            Op::plan(&[Op::Delete, Op::Write, Op::Read, Op::Read]),
            [Op::Write, Op::Read, Op::Delete]
        );
        assert_eq!(Op::plan(&Op::ALL), Op::ALL);
        assert_eq!(
            Op::plan(&[Op::Gc, Op::Overwrite, Op::Scan]),
            [Op::Write, Op::Scan, Op::Overwrite, Op::Gc]
        );
        assert!(Op::plan(&[]).is_empty());
        assert_eq!(Op::from_str("gc"), Ok(Op::Gc));
        assert_eq!(Op::from_str("overwrite"), Ok(Op::Overwrite));
        assert!(Op::Overwrite.writes() && !Op::Gc.writes());
        assert_eq!(Op::from_str("delete"), Ok(Op::Delete));
        assert!(Op::from_str("fill").is_err());
        assert_eq!(
            Config {
                n: 21,
                ..Config::default()
            }
            .live_after_delete(),
            3
        );
        assert_eq!(
            Config {
                n: 20,
                ..Config::default()
            }
            .live_after_delete(),
            2
        );
    }

    #[test]
    fn io_counters_see_a_write() {
        let Some(before) = process_io() else { return };
        let dir = temp_dir(None).unwrap();
        std::fs::write(dir.path().join("x.bin"), vec![7u8; 1 << 16]).unwrap();
        let d = process_io().unwrap().since(&before);
        assert!(d.wchar >= 1 << 16, "{d:?}");
        let u = dir_usage(dir.path()).unwrap();
        assert_eq!(u.apparent, 1 << 16);
        assert_eq!(u.by_kind.keys().collect::<Vec<_>>(), ["bin"]);
        assert_eq!(file_kind(Path::new("db/tables/17")), "tables/*");
        assert_eq!(file_kind(Path::new("db/MANIFEST")), "MANIFEST");
    }

    #[test]
    fn quiet_means_unchanged_for_the_window() {
        let settle = Settle {
            quiet: Duration::from_millis(120),
            cap: Duration::from_secs(5),
        };
        let mut polls = 0u64;
        let started = Instant::now();
        let s = wait_until_quiet(&settle, started, &mut || {
            polls += 1;
            Ok((polls < 3, vec![polls.min(5)]))
        })
        .unwrap();
        assert!(!s.capped && polls >= 6, "{s:?} after {polls} polls");
        assert!(
            s.secs > 0.1 && started.elapsed() >= Duration::from_millis(120),
            "{s:?}"
        );
        let capped = wait_until_quiet(
            &Settle {
                quiet: Duration::from_secs(10),
                cap: Duration::from_millis(100),
            },
            Instant::now(),
            &mut || Ok((true, vec![])),
        )
        .unwrap();
        assert!(capped.capped);
    }
}
