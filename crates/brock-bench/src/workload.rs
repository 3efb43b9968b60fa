//! The workloads: one generator for every store, three runners, one report.
//!
//! The generator is the project's benchmark definition and must not drift,
//! since runs of different stores (and of Go Badger) are compared key for
//! key:
//! - `key(i)` is `"k"` and `i` as 15 zero-padded decimal digits (16 bytes);
//! - the random write order is a Fisher–Yates shuffle of `0..n`, top down,
//!   with [`SplitMix64`] seeded with state [`ORDER_SEED`];
//! - the value of key `i` is the little-endian bytes of successive
//!   [`SplitMix64`] outputs from state `i ^ GOLDEN_GAMMA`, cut to the size;
//! - random reads look up `next() % n` with [`SplitMix64`] seeded with
//!   state [`READ_SEED`].
//!
//! The runners ([`run_write`], [`run_read`], [`run_scan`], or [`run_op`]
//! which also measures the directory and the peak RSS) drive any [`Store`]:
//! - **write** commits `n` entries, `batch` per write transaction, in random
//!   (or, with [`Order::Sequential`], ascending) key order; the clock stops
//!   when the last commit returns. Then [`Store::settle`] waits for
//!   background flushes, timed separately (`settle_secs`), so that reads
//!   start from a quiet store;
//! - **read** does `n` random point lookups, `batch` per read transaction
//!   (snapshot), checking each value's length and first bytes;
//! - **scan** iterates the whole store forward, checking order and values.
//!
//! Generating keys and values happens inside the timed loops (the same cost
//! for every store, a few nanoseconds per entry); the write order is
//! computed before the clock starts.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

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

/// Writes the value of entry `i`, `size` bytes, into `out` (cleared first).
pub fn fill_value(i: u64, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(size);
    let mut r = SplitMix64::new(i ^ GOLDEN_GAMMA);
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
    if v.len() != size {
        return false;
    }
    let word = SplitMix64::new(i ^ GOLDEN_GAMMA).next_u64().to_le_bytes();
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Fill.
    Write,
    /// Random point lookups.
    Read,
    /// A full forward scan.
    Scan,
}

impl Op {
    /// Every workload, in the order `all` runs them.
    pub const ALL: [Op; 3] = [Op::Write, Op::Read, Op::Scan];

    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Write => "write",
            Op::Read => "read",
            Op::Scan => "scan",
        }
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
}

impl Default for Config {
    fn default() -> Self {
        Config {
            n: 1_000_000,
            value_size: 128,
            batch: 1000,
            order: Order::Random,
            sync: false,
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

    /// Looks every key up in one read transaction; calls `found` with the
    /// key's position in `keys` and its value for each key present.
    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()>;

    /// Calls `item` for every entry, in key order.
    fn scan(&mut self, item: Visitor<'_>) -> Result<()>;

    /// True when the store holds no entry.
    fn is_empty(&mut self) -> Result<bool>;

    /// Waits for background work that writes started (memtable flushes).
    fn settle(&mut self) -> Result<()> {
        Ok(())
    }

    /// Seconds writes have spent stalled so far, if the store counts them.
    fn stall_secs(&self) -> Option<f64> {
        None
    }

    /// Closes the store, reporting errors a drop would hide.
    fn close(self: Box<Self>) -> Result<()>;
}

/// What one runner measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The workload.
    pub op: Op,
    /// Operations done: entries written, lookups made, entries scanned.
    pub ops: u64,
    /// Entries written, keys found, entries scanned.
    pub items: u64,
    /// Key and value bytes written, found or scanned.
    pub bytes: u64,
    /// Seconds on the clock.
    pub secs: f64,
    /// CPU seconds of the whole process (every thread) in the same span.
    pub cpu_secs: Option<f64>,
    /// Seconds of [`Store::settle`] after a fill (not in `secs`).
    pub settle_secs: f64,
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

/// Fills the store: `n` entries, `batch` per transaction.
pub fn run_write(store: &mut dyn Store, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    cfg.validate()?;
    let order = write_order(cfg.n, cfg.order);
    let mut batch: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(cfg.batch);
    let mut bytes = 0u64;
    let mut done = 0u64;
    let clock = Clock::start();
    for chunk in order.chunks(cfg.batch) {
        for &i in chunk {
            let mut v = Vec::with_capacity(cfg.value_size);
            fill_value(i, cfg.value_size, &mut v);
            batch.push((key(i).to_vec(), v));
        }
        bytes += (chunk.len() * (KEY_LEN + cfg.value_size)) as u64;
        store.write_batch(&mut batch)?;
        batch.clear();
        done += chunk.len() as u64;
        progress(done);
    }
    let (secs, cpu_secs) = clock.stop();
    let settle_started = Instant::now();
    store.settle()?;
    let settle_secs = settle_started.elapsed().as_secs_f64();
    Ok(Outcome {
        op: Op::Write,
        ops: cfg.n,
        items: cfg.n,
        bytes,
        secs,
        cpu_secs,
        settle_secs,
    })
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
            if value_matches(i, cfg.value_size, v) {
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
        if !value_matches(i, cfg.value_size, v) {
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
    })
}

/// Runs one workload.
pub fn run_workload(store: &mut dyn Store, op: Op, cfg: &Config, progress: Progress<'_>) -> Result<Outcome> {
    match op {
        Op::Write => run_write(store, cfg, progress),
        Op::Read => run_read(store, cfg, progress),
        Op::Scan => run_scan(store, cfg, progress),
    }
}

/// Runs one workload and makes its report line: resets the peak RSS first
/// (see [`reset_peak_rss`]), measures the directory afterwards.
pub fn run_op(
    store: &mut dyn Store,
    op: Op,
    cfg: &Config,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Report> {
    reset_peak_rss();
    let outcome = run_workload(store, op, cfg, progress)?;
    let peak = peak_rss_bytes();
    let dir_bytes = dir_bytes(dir)?;
    Ok(Report::new(
        store.name(),
        cfg,
        &outcome,
        dir_bytes,
        peak,
        store.stall_secs(),
    ))
}

/// One line of output per workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The store.
    pub store: String,
    /// The workload: write, read or scan.
    pub op: Op,
    /// The run's `n`.
    pub n: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// Entries per transaction.
    pub batch: usize,
    /// Seconds on the clock.
    pub secs: f64,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Key and value bytes per second, in MB (10^6 bytes).
    pub mb_per_sec: f64,
    /// Sum of the apparent sizes of the files in the directory afterwards.
    pub dir_bytes: u64,
    /// The process's peak resident set (VmHWM) during the workload.
    pub peak_rss_bytes: Option<u64>,
    /// Seconds writes have stalled since the store opened (Brock only).
    pub stall_secs: Option<f64>,
    /// Entries written, keys found, entries scanned.
    pub items: u64,
    /// Seconds waiting for background flushes after a fill (not in `secs`).
    pub settle_secs: f64,
    /// CPU seconds of the process, every thread, during `secs` (on a busy
    /// machine a steadier measure of the work than `secs`).
    pub cpu_secs: Option<f64>,
}

impl Report {
    /// The report of `outcome`.
    pub fn new(
        store: &str,
        cfg: &Config,
        outcome: &Outcome,
        dir_bytes: u64,
        peak_rss_bytes: Option<u64>,
        stall_secs: Option<f64>,
    ) -> Self {
        let secs = outcome.secs.max(1e-9);
        Report {
            store: store.to_string(),
            op: outcome.op,
            n: cfg.n,
            value_size: cfg.value_size,
            batch: cfg.batch,
            secs: outcome.secs,
            ops_per_sec: outcome.ops as f64 / secs,
            mb_per_sec: outcome.bytes as f64 / secs / 1e6,
            dir_bytes,
            peak_rss_bytes,
            stall_secs,
            items: outcome.items,
            settle_secs: outcome.settle_secs,
            cpu_secs: outcome.cpu_secs,
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
}

/// Sum of the apparent sizes of the files under `dir` (symlinks not followed).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let entry = entry?;
        // A file may vanish between listing and stat (a flush deleting a WAL).
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue;
        };
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
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

/// A human table of reports: one row per report.
pub fn summary_table(reports: &[Report]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<6} {:<5} {:>8} {:>7} {:>6} {:>9} {:>6} {:>8} {:>8} {:>7} {:>6}",
        "store", "op", "items", "secs", "cpu s", "ops/s", "MB/s", "dir MiB", "RSS MiB", "stall s", "settle"
    );
    for r in reports {
        let dash = || "-".to_string();
        let cpu = r.cpu_secs.map_or_else(dash, |c| format!("{c:.2}"));
        let rss = r.peak_rss_bytes.map_or_else(dash, |b| format!("{:.0}", mib(b)));
        let stall = r.stall_secs.map_or_else(dash, |s| format!("{s:.2}"));
        let settle = if r.op == Op::Write {
            format!("{:.2}", r.settle_secs)
        } else {
            dash()
        };
        let _ = writeln!(
            s,
            "{:<6} {:<5} {:>8} {:>7.2} {:>6} {:>9.0} {:>6.1} {:>8.1} {:>8} {:>7} {:>6}",
            r.store,
            r.op.name(),
            r.items,
            r.secs,
            cpu,
            r.ops_per_sec,
            r.mb_per_sec,
            mib(r.dir_bytes),
            rss,
            stall,
            settle
        );
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
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/badger-v4/multilevel.latest.head.txt");
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
        };
        let r = Report::new("brock", &cfg, &o, 4096, Some(1 << 20), Some(0.0));
        let line = r.to_json();
        assert!(line.starts_with(r#"{"store":"brock","op":"read","n":1000000,"value_size":128,"batch":1000,"secs":0.5,"ops_per_sec":20.0,"#), "{line}");
        assert!(!line.contains('\n'));
        assert_eq!(Report::from_json(&line).unwrap(), r);
        assert!(peak_rss_bytes().unwrap_or(1) > 0);
        assert!(process_cpu_secs().unwrap_or(0.0) >= 0.0);
    }
}
