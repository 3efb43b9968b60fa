//! fjall 3, with its default configuration, and optionally key-value
//! separation.
//!
//! With separation, values of `separation_threshold` bytes or more go to
//! blob files (`<keyspace>/blobs/`) when a memtable is flushed. fjall has no
//! GC call of its own: its compactions relocate the live values of blob
//! files that are stale enough (`staleness_threshold`, default 25% here
//! despite the doc's 33%) among the oldest (`age_cutoff`, 25%) of the blob
//! files the compacted tables reference, and drop blob files nothing
//! references. A blob file whose values the active memtable overwrote is
//! not stale until that memtable is flushed. The gc workload therefore
//! flushes the active memtable (doc-hidden `rotate_memtable_and_wait`),
//! then runs the (doc-hidden) major compaction until the stale blob bytes
//! and the disk space stop falling.
//!
//! A blob file fjall drops stays on disk until its version-history GC
//! passes the version that dropped it, which takes a newer sequence number
//! *and* a later flush or compaction of the keyspace: in a quiet store,
//! never (`disk_space()` no longer counts the file; `du` does). In use,
//! later writes provide both; the gc workload stands in for them with one
//! write and delete of [`NUDGE_KEY`] (outside the benchmark's keys), a
//! flush and one more major compaction.

use crate::workload::{
    EngineStats, GcOutcome, KEY_LEN, Result, Settle, Settled, Store, Visitor, wait_until_quiet,
};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode, Readable};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this many major compactions in one gc workload.
const MAX_GC_ROUNDS: u64 = 16;

/// The key the gc workload writes and deletes so that fjall removes the
/// blob files it dropped: after every `k…` key of the generator.
pub const NUDGE_KEY: &[u8] = b"~gc-nudge";

/// A fjall database with one keyspace.
pub struct FjallStore {
    db: Database,
    ks: Keyspace,
    sync: bool,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").field("sync", &self.sync).finish()
    }
}

impl FjallStore {
    /// Opens (or creates) the database in `dir`; `sync` makes each batch
    /// commit with `PersistMode::SyncData`.
    pub fn open(dir: &Path, sync: bool) -> Result<Self> {
        Self::open_with(dir, sync, None)
    }

    /// [`FjallStore::open`], with key-value separation at
    /// `separation_threshold` bytes if given (fjall's other
    /// `KvSeparationOptions` at their defaults).
    pub fn open_with(dir: &Path, sync: bool, separation_threshold: Option<u64>) -> Result<Self> {
        let kv = match separation_threshold {
            Some(t) => Some(KvSeparationOptions::default().separation_threshold(u32::try_from(t)?)),
            None => None,
        };
        let db = Database::builder(dir).open()?;
        let ks = db.keyspace("bench", move || {
            KeyspaceCreateOptions::default().with_kv_separation(kv)
        })?;
        if ks.is_kv_separated() != separation_threshold.is_some() {
            return Err(format!(
                "fjall keyspace: key-value separation {} but {} was asked",
                ks.is_kv_separated(),
                separation_threshold.is_some()
            )
            .into());
        }
        Ok(FjallStore { db, ks, sync })
    }

    /// The blob files in the keyspace's `blobs` folder and their allocated
    /// sizes (empty without key-value separation).
    fn blob_files(&self) -> Result<BTreeMap<PathBuf, u64>> {
        let mut out = BTreeMap::new();
        let dir = self.ks.path().join("blobs");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(format!("{}: {e}", dir.display()).into()),
        };
        for entry in entries {
            let entry = entry?;
            if let Ok(meta) = entry.path().symlink_metadata()
                && meta.is_file()
            {
                out.insert(entry.path(), allocated(&meta));
            }
        }
        Ok(out)
    }

    /// Waits until no compaction or flush is running (at most a minute).
    fn wait_idle(&self) {
        let started = Instant::now();
        while (self.db.active_compactions() > 0 || self.db.outstanding_flushes() > 0)
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(unix)]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.blocks() * 512
}

#[cfg(not(unix))]
fn allocated(meta: &std::fs::Metadata) -> u64 {
    meta.len()
}

impl Store for FjallStore {
    fn name(&self) -> &'static str {
        "fjall"
    }

    fn write_batch(&mut self, batch: &mut Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
        let mut b = self.db.batch();
        if self.sync {
            b = b.durability(Some(PersistMode::SyncData));
        }
        for (k, v) in batch.drain(..) {
            b.insert(&self.ks, k, v);
        }
        b.commit()?;
        Ok(())
    }

    fn delete_batch(&mut self, keys: &[[u8; KEY_LEN]]) -> Result<()> {
        let mut b = self.db.batch();
        if self.sync {
            b = b.durability(Some(PersistMode::SyncData));
        }
        for k in keys {
            b.remove(&self.ks, k.to_vec());
        }
        b.commit()?;
        Ok(())
    }

    fn read_batch(&mut self, keys: &[[u8; KEY_LEN]], found: &mut dyn FnMut(usize, &[u8])) -> Result<()> {
        let snap = self.db.snapshot();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(v) = snap.get(&self.ks, k)? {
                found(pos, &v);
            }
        }
        Ok(())
    }

    fn scan(&mut self, item: Visitor<'_>) -> Result<()> {
        for guard in self.ks.iter() {
            let (k, v) = guard.into_inner()?;
            item(&k, &v)?;
        }
        Ok(())
    }

    fn is_empty(&mut self) -> Result<bool> {
        Ok(self.ks.iter().next().is_none())
    }

    fn settle(&mut self, settle: &Settle) -> Result<Settled> {
        // Flushes and the compactions they trigger: idle once none is
        // running and no counter or size has moved for `settle.quiet`.
        let started = Instant::now();
        wait_until_quiet(settle, started, &mut || {
            let busy = self.db.outstanding_flushes() > 0 || self.db.active_compactions() > 0;
            let state = vec![
                self.db.compactions_completed() as u64,
                self.db.disk_space()?,
                self.ks.table_count() as u64,
                self.ks.blob_file_count() as u64,
                self.db.journal_count() as u64,
            ];
            Ok((busy, state))
        })
    }

    fn engine_stats(&self) -> EngineStats {
        EngineStats {
            compactions: Some(self.db.compactions_completed() as u64),
            ..EngineStats::default()
        }
    }

    fn compact_fully(&mut self) -> Result<Option<&'static str>> {
        self.ks.major_compact()?;
        Ok(Some("fjall Keyspace::major_compact (doc-hidden)"))
    }

    fn collect_garbage(&mut self) -> Result<Option<GcOutcome>> {
        // Stale blob bytes are counted only once a compaction drops the
        // versions that reference them, so at least one round runs; then
        // rounds until neither the stale bytes nor the disk space fall.
        let before = self.blob_files()?;
        self.ks.rotate_memtable_and_wait()?;
        // The flush's own blob file is new data, not a relocation.
        let flushed = self.blob_files()?;
        let mut rounds = 0;
        let (mut stale, mut space) = (u64::MAX, u64::MAX);
        while rounds < MAX_GC_ROUNDS {
            self.ks.major_compact()?;
            self.wait_idle();
            rounds += 1;
            let (s, d) = (self.ks.fragmented_blob_bytes(), self.ks.disk_space());
            let progressed = s < stale || d < space;
            (stale, space) = (s, d);
            if s == 0 || !progressed {
                break;
            }
        }
        self.ks.insert(NUDGE_KEY, b"")?;
        self.ks.remove(NUDGE_KEY)?;
        self.ks.rotate_memtable_and_wait()?;
        self.ks.major_compact()?;
        self.wait_idle();
        let after = self.blob_files()?;
        let gone: Vec<u64> = before
            .iter()
            .filter(|(p, _)| !after.contains_key(*p))
            .map(|(_, b)| *b)
            .collect();
        let new: u64 = after
            .iter()
            .filter(|(p, _)| !flushed.contains_key(*p))
            .map(|(_, b)| *b)
            .sum();
        Ok(Some(GcOutcome {
            call: "fjall flush, major_compact until stale blob bytes stop falling, nudge (doc-hidden calls)",
            rounds,
            files: Some(gone.len() as u64),
            file_bytes: Some(gone.iter().sum()),
            rewritten_bytes: Some(new),
        }))
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}
