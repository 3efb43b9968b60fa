//! Opening a database: validation, locks, recovery in Badger's order.
//!
//! Badger's `Open`: check options and create the directories (0700); lock
//! `Dir` (and `ValueDir` when different); replay the MANIFEST, cutting a torn
//! tail; open or create KEYREGISTRY; replay every `.mem` WAL into a memtable,
//! cutting each torn tail back to its last complete transaction; open the
//! tables the MANIFEST names (a missing or corrupt one is an error; tables it
//! does not name are deleted; levels ≥ 1 must not overlap); set the next
//! commit timestamp past the highest version seen; open the value log
//! (remove empty old files, cut the last one to its valid end, start a new
//! one) and DISCARD; then start the write and flush threads.
//!
//! Better than Badger: a read-only open replays torn WALs in memory and
//! leaves every file untouched, instead of failing with "truncate needed".

use super::write::Writer;
use super::{Counters, DbInner, SyncState, View, ViewCell};
use super::{compact, flush};
use crate::crypto::read_key_registry;
use crate::discard::DiscardStats;
use crate::error::{Error, Result};
use crate::format::LOG_HEADER_LEN;
use crate::format::key_registry::KeyRegistryFile;
use crate::levels::{ManifestFile, Tree, replay_manifest};
use crate::memtable::{MemValue, Memtable};
use crate::options::Options;
use crate::table::{BlockCache, Table, TableOptions};
use crate::txn::Oracle;
use crate::vfs::{
    DirectoryLock, FileKind, MemVfs, OpenMode, OsVfs, Vfs, classify, mem_file_name, vlog_file_name,
};
use crate::vlog::VlogFile;
use crate::wal::{LogWriter, TxnReplay};
use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// Where an in-memory database keeps its (in-memory) files.
const IN_MEMORY_DIR: &str = "/brock-in-memory";

pub(crate) fn open(mut opts: Options, vfs: Option<Arc<dyn Vfs>>) -> Result<Arc<DbInner>> {
    let limits = opts.validate()?;
    let vfs: Arc<dyn Vfs> = match (vfs, opts.in_memory) {
        (Some(v), _) => v,
        (None, true) => Arc::new(MemVfs::new()),
        (None, false) => Arc::new(OsVfs),
    };
    if opts.in_memory {
        opts.sync_writes = false;
    }
    let (dir, value_dir) = if opts.in_memory {
        (PathBuf::from(IN_MEMORY_DIR), PathBuf::from(IN_MEMORY_DIR))
    } else {
        (opts.dir.clone(), opts.value_dir.clone())
    };
    let ro = opts.read_only;

    // Directories and locks.
    for d in [&dir, &value_dir] {
        if ro {
            if !vfs.exists(d) {
                return Err(Error::io(d, std::io::Error::from(std::io::ErrorKind::NotFound)));
            }
        } else {
            vfs.create_dir_all(d)?;
        }
    }
    let mut locks = Vec::new();
    if !opts.in_memory && !opts.bypass_lock_guard {
        locks.push(DirectoryLock::acquire(vfs.clone(), &dir, ro)?);
        if value_dir != dir {
            locks.push(DirectoryLock::acquire(vfs.clone(), &value_dir, ro)?);
        }
    }

    // MANIFEST.
    let (manifest_file, manifest) = if ro {
        let path = dir.join("MANIFEST");
        if !vfs.exists(&path) {
            return Err(Error::MissingFile { path });
        }
        (
            None,
            replay_manifest(&vfs.read_all(&path)?, &path, Some(opts.external_magic))?.manifest,
        )
    } else {
        let (mf, replay) = ManifestFile::open_or_create(vfs.clone(), &dir, opts.external_magic)?;
        (Some(mf), replay.manifest)
    };

    // KEYREGISTRY.
    if read_key_registry(vfs.as_ref(), &dir)?.is_none() && !ro {
        write_key_registry(vfs.as_ref(), &dir)?;
    }

    let cache = (opts.block_cache_size > 0)
        .then(|| BlockCache::new(opts.block_cache_size, u64::from(opts.block_size)));

    // Value log and DISCARD.
    let (vlogs, vlog_writer) = if opts.in_memory {
        (BTreeMap::new(), None)
    } else {
        open_vlogs(vfs.as_ref(), &value_dir, ro)?
    };
    // A WAL entry can point into the value log only at bytes written before
    // it. With `sync_writes` off a power loss can keep a WAL's tail and lose
    // the value log's: such a pointer (past the recovered end of its file,
    // or into a file newer than any recovered) marks where the WAL's
    // complete transactions end. A missing older file is one GC collected
    // after rewriting its live values: pointers to it are superseded.
    let newest_vlog = vlogs.keys().next_back().copied();
    let pointer_ok = |vp: &crate::format::ValuePointer| match vlogs.get(&vp.fid) {
        Some(f) => u64::from(vp.offset) + u64::from(vp.len) <= f.valid_len(),
        None => newest_vlog.is_none_or(|n| vp.fid < n),
    };

    // WALs into memtables.
    let listing = vfs.list_dir(&dir)?;
    let mut mem_fids: Vec<u32> = listing
        .iter()
        .filter_map(|e| match classify(&e.name) {
            Some(FileKind::Mem(fid)) => Some(fid),
            _ => None,
        })
        .collect();
    mem_fids.sort_unstable();
    let mut immutables = Vec::new();
    for &fid in &mem_fids {
        let path = dir.join(mem_file_name(fid));
        let mt = replay_wal(vfs.as_ref(), &path, fid, ro, &pointer_ok)?;
        if mt.is_empty() {
            if !ro {
                vfs.remove(&path)?;
            }
            continue;
        }
        immutables.insert(0, Arc::new(mt));
    }
    let next_mem_fid = mem_fids.last().map_or(1, |f| f + 1);

    // Tables.
    let mut levels: Vec<Vec<Arc<Table>>> =
        vec![Vec::new(); manifest.levels.len().max(opts.max_levels as usize)];
    for (&id, tm) in &manifest.tables {
        let path = dir.join(crate::vfs::sst_file_name(id));
        if !vfs.exists(&path) {
            return Err(Error::MissingFile { path });
        }
        let table = Table::open_cached(
            vfs.open_read(&path)?,
            TableOptions {
                id,
                compression: tm.compression,
                key_id: tm.key_id,
                verify_blocks: opts.verify_block_checksums,
            },
            cache.clone(),
        )?;
        levels[tm.level as usize].push(Arc::new(table));
    }
    if !ro {
        let mut removed = false;
        for e in &listing {
            if let Some(FileKind::Sst(id)) = classify(&e.name)
                && !manifest.tables.contains_key(&id)
            {
                vfs.remove(&dir.join(&e.name))?;
                removed = true;
            }
        }
        if removed {
            vfs.sync_dir(&dir)?;
        }
    }
    let tree = Tree::new(levels)?;
    let next_file_id = manifest.tables.keys().next_back().map_or(1, |id| id + 1);
    let max_version = immutables
        .iter()
        .map(|m| m.max_version())
        .chain([tree.max_version()])
        .max()
        .unwrap_or(0);

    let discard = if !ro && !opts.in_memory {
        Some(DiscardStats::open(vfs.as_ref(), &value_dir)?)
    } else {
        None
    };

    // The mutable memtable and its WAL.
    let (mutable, wal, next_mem_fid) = if ro {
        (None, None, next_mem_fid)
    } else if opts.in_memory {
        (
            Some(Arc::new(Memtable::with_capacity(0, opts.mem_table_size))),
            None,
            next_mem_fid,
        )
    } else {
        let w = LogWriter::create(vfs.as_ref(), &dir.join(mem_file_name(next_mem_fid)), next_mem_fid)?;
        vfs.sync_dir(&dir)?;
        (
            Some(Arc::new(Memtable::with_capacity(
                next_mem_fid,
                opts.mem_table_size,
            ))),
            Some(w),
            next_mem_fid + 1,
        )
    };

    let db = Arc::new(DbInner {
        limits,
        vfs,
        dir,
        value_dir,
        view: ViewCell::new(View {
            mutable: mutable.clone(),
            immutables,
            tree: Arc::new(tree),
        }),
        oracle: Oracle::new(max_version, opts.detect_conflicts),
        sender: Mutex::new(None),
        closed: AtomicBool::new(false),
        poisoned: Mutex::new(None),
        sync: Mutex::new(SyncState::default()),
        cond: Condvar::new(),
        manifest: Mutex::new(manifest_file),
        cache,
        vlogs: RwLock::new(vlogs),
        next_file_id: AtomicU64::new(next_file_id),
        threads: Mutex::new(Vec::new()),
        compactors: Mutex::new(Vec::new()),
        compact_status: Mutex::new(crate::levels::compact_status::CompactStatus::new(
            opts.max_levels as usize,
        )),
        compaction_paused: std::sync::atomic::AtomicUsize::new(0),
        stale_rewritten: Mutex::new(std::collections::HashSet::new()),
        discard: Mutex::new(discard),
        gc_lock: Mutex::new(()),
        retired_vlogs: Mutex::new(Vec::new()),
        gc_sampled: Mutex::new(std::collections::HashMap::new()),
        value_threshold: std::sync::atomic::AtomicU64::new(opts.value_threshold),
        l0_deletes: Mutex::new(std::collections::HashMap::new()),
        idle_probe: Mutex::new((0, std::time::Instant::now(), false)),
        threshold_hist: Mutex::new((opts.vlog_percentile > 0.0).then(|| {
            crate::vlog::threshold::DynamicThreshold::new(
                opts.vlog_percentile,
                opts.value_threshold,
                crate::options::MAX_VALUE_THRESHOLD.min(limits.max_batch_size),
            )
        })),
        writer_exit: Mutex::new(None),
        locks: Mutex::new(locks),
        counters: Counters::default(),
        opts,
    });

    if !ro {
        let (tx, rx) = crossbeam_channel::bounded(1024);
        *db.sender.lock() = Some(tx);
        let writer = Writer::new(
            db.clone(),
            wal,
            mutable.unwrap_or_else(|| Arc::new(Memtable::new(0))),
            next_mem_fid,
            vlog_writer,
        );
        let handle = std::thread::Builder::new()
            .name("brock-write".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::io("<thread>", e))?;
        *db.writer_exit.lock() = Some(handle);
        let fdb = db.clone();
        let fl = std::thread::Builder::new()
            .name("brock-flush".into())
            .spawn(move || flush::run(fdb))
            .map_err(|e| Error::io("<thread>", e))?;
        db.threads.lock().push(fl);
        if let Some(ratio) = db.opts.auto_value_log_gc
            && !db.opts.in_memory
        {
            let gdb = db.clone();
            let h = std::thread::Builder::new()
                .name("brock-vlog-gc".into())
                .spawn(move || super::gc::run_auto(gdb, ratio))
                .map_err(|e| Error::io("<thread>", e))?;
            db.compactors.lock().push(h);
        }
        for id in 0..db.opts.num_compactors as usize {
            let cdb = db.clone();
            let h = std::thread::Builder::new()
                .name(format!("brock-compact-{id}"))
                .spawn(move || compact::run(cdb, id))
                .map_err(|e| Error::io("<thread>", e))?;
            db.compactors.lock().push(h);
        }
    }
    Ok(db)
}

/// Replays one WAL into a memtable; a read-write open cuts a torn tail.
fn replay_wal(
    vfs: &dyn Vfs,
    path: &Path,
    fid: u32,
    read_only: bool,
    pointer_ok: &dyn Fn(&crate::format::ValuePointer) -> bool,
) -> Result<Memtable> {
    let file = vfs.open_read(path)?;
    let len = file.len();
    let mut replay = TxnReplay::new(file)?;
    let mt = Memtable::with_capacity(fid, len);
    let mut end = replay.valid_end();
    while let Some(batch) = replay.next_batch()? {
        let dangling = batch.iter().any(|e| {
            e.meta & crate::format::meta::BIT_VALUE_POINTER != 0
                && crate::format::ValuePointer::decode(&e.value).is_ok_and(|vp| !pointer_ok(&vp))
        });
        if dangling {
            break;
        }
        end = replay.valid_end();
        for e in batch {
            mt.put(
                &e.key,
                MemValue {
                    meta: e.meta,
                    user_meta: e.user_meta,
                    expires_at: e.expires_at,
                    value: Bytes::from(e.value),
                },
            );
        }
    }
    let end = end.max(LOG_HEADER_LEN as u64);
    if !read_only && end < len {
        let mut f = vfs.open_write(path, OpenMode::Existing)?;
        f.set_len(end)?;
        f.sync_data()?;
    }
    Ok(mt)
}

/// Opens the value-log files; read-write also removes empty old files, cuts
/// the newest to its valid end and starts a new one, as Badger does.
type Vlogs = BTreeMap<u32, Arc<VlogFile>>;

fn open_vlogs(vfs: &dyn Vfs, value_dir: &Path, read_only: bool) -> Result<(Vlogs, Option<LogWriter>)> {
    let mut fids: Vec<(u32, u64)> = vfs
        .list_dir(value_dir)?
        .iter()
        .filter_map(|e| match classify(&e.name) {
            Some(FileKind::Vlog(fid)) => Some((fid, e.len)),
            _ => None,
        })
        .collect();
    fids.sort_unstable();
    let max_fid = fids.last().map_or(0, |f| f.0);
    let mut out = BTreeMap::new();
    for &(fid, len) in &fids {
        let path = value_dir.join(vlog_file_name(fid));
        if !read_only && fid != max_fid && len <= LOG_HEADER_LEN as u64 {
            vfs.remove(&path)?;
            continue;
        }
        let mut valid = len;
        if !read_only && fid == max_fid {
            let mut replay = TxnReplay::new(vfs.open_read(&path)?)?;
            while replay.next_batch()?.is_some() {}
            let end = replay.valid_end().max(LOG_HEADER_LEN as u64);
            if end < len {
                let mut f = vfs.open_write(&path, OpenMode::Existing)?;
                f.set_len(end)?;
                f.sync_data()?;
            }
            valid = end.min(len);
        }
        out.insert(fid, Arc::new(VlogFile::new(fid, vfs.open_read(&path)?, valid)));
    }
    if read_only {
        return Ok((out, None));
    }
    let fid = max_fid + 1;
    let path = value_dir.join(vlog_file_name(fid));
    let mut w = LogWriter::create(vfs, &path, fid)?;
    w.sync()?;
    vfs.sync_dir(value_dir)?;
    let active = VlogFile::new(fid, vfs.open_read(&path)?, w.offset())
        .with_sync_handle(vfs.open_write(&path, OpenMode::Existing)?);
    out.insert(fid, Arc::new(active));
    Ok((out, Some(w)))
}

/// Writes a fresh plaintext KEYREGISTRY the way Badger does: to
/// `REWRITE-KEYREGISTRY`, synced, renamed into place, directory synced.
fn write_key_registry(vfs: &dyn Vfs, dir: &Path) -> Result<()> {
    let tmp = dir.join("REWRITE-KEYREGISTRY");
    let bytes = KeyRegistryFile::plaintext(rand::random()).encode();
    {
        let mut f = vfs.open_write(&tmp, OpenMode::Truncate)?;
        f.append(&bytes)?;
        f.sync_data()?;
    }
    vfs.rename(&tmp, &dir.join("KEYREGISTRY"))?;
    vfs.sync_dir(dir)
}
