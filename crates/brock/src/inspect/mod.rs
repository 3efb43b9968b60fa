//! An offline, read-only view of a Badger directory.
//!
//! Contract: [`DirView::open`] never modifies, creates or locks anything. It
//! replays the MANIFEST, opens every live table, replays every `.mem` WAL in
//! memory (a torn tail is skipped, not cut), and opens the value-log files so
//! value pointers resolve. Reads merge memtables (newest WAL first), L0
//! (newest table first) and the deeper levels, and apply Badger's visibility:
//! the newest version at or below the read timestamp wins; tombstones and
//! expired entries hide their key unless every version is asked for; keys
//! under `!badger!` are Badger's own and never shown.
//!
//! This is the ground the engine's read-only open will stand on; it exists
//! first so `brock dump` and `brock info` work on any directory, live or not.

mod dump;
mod info;

pub use dump::{DumpMode, write_dump};
pub use info::{DirInfo, FileInfo, LevelInfo, TableInfo, human_bytes, show_key};

use crate::crypto::{KeyRegistry, read_key_registry};
use crate::discard::read_discard_stats;
use crate::error::{Error, Result};
use crate::format::meta::{BIT_VALUE_POINTER, is_deleted_or_expired, now_secs};
use crate::format::{ValuePointer, user_key, version};
use crate::iterator::{KvIterator, MergeIterator, VecIterator, VisibleIterator};
use crate::levels::{ManifestReplay, Tree, replay_manifest};
use crate::table::{OwnedValue, Table, TableOptions};
use crate::vfs::{FileKind, OsVfs, RandomAccessFile, Vfs, classify};
use crate::wal::TxnReplay;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where and how to open a directory.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// The key directory (`Dir`).
    pub dir: PathBuf,
    /// The value directory (`ValueDir`); defaults to `dir`.
    pub value_dir: Option<PathBuf>,
    /// Verify every block's checksum as it is read.
    pub verify_blocks: bool,
    /// The external magic the MANIFEST must carry, if any.
    pub external_magic: Option<u16>,
}

impl ViewOptions {
    /// Options for `dir` with defaults.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ViewOptions {
            dir: dir.into(),
            value_dir: None,
            verify_blocks: true,
            external_magic: None,
        }
    }
}

/// A replayed `.mem` WAL.
#[derive(Debug)]
pub struct MemWal {
    /// Its file id.
    pub fid: u32,
    /// Its path.
    pub path: PathBuf,
    /// Apparent file size.
    pub file_len: u64,
    /// End of the last complete transaction.
    pub valid_end: u64,
    /// Entries replayed (markers excluded).
    pub entries: usize,
    /// Complete transactions or stand-alone entries replayed.
    pub batches: usize,
    /// Highest version seen.
    pub max_version: u64,
    data: Vec<(Vec<u8>, OwnedValue)>,
}

/// One version of one key, value resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The user key.
    pub key: Vec<u8>,
    /// Its version (commit timestamp).
    pub version: u64,
    /// Badger's meta bits as stored in the tree.
    pub meta: u8,
    /// The user's meta byte.
    pub user_meta: u8,
    /// Expiry in Unix seconds; 0 = never.
    pub expires_at: u64,
    /// The value (read from the value log when the tree holds a pointer).
    pub value: Vec<u8>,
}

impl Version {
    /// Tombstone, or expired at `now`.
    pub fn is_deleted_or_expired(&self, now: u64) -> bool {
        is_deleted_or_expired(self.meta, self.expires_at, now)
    }
}

/// A read-only view of a directory.
#[derive(Debug)]
pub struct DirView {
    opts: ViewOptions,
    manifest: ManifestReplay,
    key_registry: Option<KeyRegistry>,
    /// Tables per level; L0 newest first, other levels by key range.
    tree: Tree,
    /// Replayed WALs, newest first.
    mems: Vec<MemWal>,
    vlogs: BTreeMap<u32, Arc<dyn RandomAccessFile>>,
    discard: Vec<(u64, u64)>,
    other_files: Vec<(String, u64)>,
}

impl DirView {
    /// Opens `dir` with default options.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        Self::open_with(&OsVfs, ViewOptions::new(dir))
    }

    /// Opens a directory through `vfs`.
    pub fn open_with(vfs: &dyn Vfs, opts: ViewOptions) -> Result<Self> {
        let dir = opts.dir.clone();
        let value_dir = opts.value_dir.clone().unwrap_or_else(|| dir.clone());
        if !vfs.exists(&dir) {
            return Err(Error::io(
                &dir,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let manifest_path = dir.join("MANIFEST");
        if !vfs.exists(&manifest_path) {
            return Err(Error::MissingFile { path: manifest_path });
        }
        let manifest = replay_manifest(
            &vfs.read_all(&manifest_path)?,
            &manifest_path,
            opts.external_magic,
        )?;
        let key_registry = read_key_registry(vfs, &dir)?;

        let mut levels: Vec<Vec<Arc<Table>>> = vec![Vec::new(); manifest.manifest.levels.len()];
        for (&id, tm) in &manifest.manifest.tables {
            let path = dir.join(crate::vfs::sst_file_name(id));
            if !vfs.exists(&path) {
                return Err(Error::MissingFile { path });
            }
            let table = Table::open(
                vfs.open_read(&path)?,
                TableOptions {
                    id,
                    compression: tm.compression,
                    key_id: tm.key_id,
                    verify_blocks: opts.verify_blocks,
                },
            )?;
            levels[tm.level as usize].push(Arc::new(table));
        }
        let tree = Tree::new(levels)?;

        let mut mems = Vec::new();
        let mut vlogs = BTreeMap::new();
        let mut other_files = Vec::new();
        for ent in vfs.list_dir(&dir)? {
            match classify(&ent.name) {
                Some(FileKind::Mem(fid)) => mems.push(replay_mem(vfs, &dir.join(&ent.name), fid)?),
                Some(FileKind::Vlog(fid)) if value_dir == dir => {
                    vlogs.insert(fid, vfs.open_read(&dir.join(&ent.name))?);
                }
                Some(FileKind::Sst(_) | FileKind::Vlog(_)) => {}
                _ if !ent.is_dir => other_files.push((ent.name.clone(), ent.len)),
                _ => {}
            }
        }
        if value_dir != dir {
            for ent in vfs.list_dir(&value_dir)? {
                if let Some(FileKind::Vlog(fid)) = classify(&ent.name) {
                    vlogs.insert(fid, vfs.open_read(&value_dir.join(&ent.name))?);
                }
            }
        }
        mems.sort_by_key(|m| std::cmp::Reverse(m.fid));
        let discard = read_discard_stats(vfs, &value_dir)?;
        Ok(DirView {
            opts,
            manifest,
            key_registry,
            tree,
            mems,
            vlogs,
            discard,
            other_files,
        })
    }

    /// The key directory.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }

    /// The replayed MANIFEST.
    pub fn manifest(&self) -> &ManifestReplay {
        &self.manifest
    }

    /// The key registry, when the directory has one.
    pub fn key_registry(&self) -> Option<&KeyRegistry> {
        self.key_registry.as_ref()
    }

    /// Tables per level (L0 newest first).
    pub fn levels(&self) -> &[Vec<Arc<Table>>] {
        self.tree.levels()
    }

    /// Replayed WALs, newest first.
    pub fn mem_wals(&self) -> &[MemWal] {
        &self.mems
    }

    /// The highest version anywhere in the directory.
    pub fn max_version(&self) -> u64 {
        let mems = self.mems.iter().map(|m| m.max_version);
        mems.chain([self.tree.max_version()]).max().unwrap_or(0)
    }

    /// All sources merged, newest first.
    fn merged(&self) -> MergeIterator<Box<dyn KvIterator + Send>> {
        let mut sources: Vec<Box<dyn KvIterator + Send>> = Vec::new();
        for m in &self.mems {
            sources.push(Box::new(VecIterator::new(m.data.clone())));
        }
        sources.extend(self.tree.iterators());
        MergeIterator::new(sources)
    }

    /// Resolves a value that may be a value pointer.
    pub fn resolve(&self, meta: u8, value: &[u8]) -> Result<Vec<u8>> {
        if meta & BIT_VALUE_POINTER == 0 {
            return Ok(value.to_vec());
        }
        let vp = ValuePointer::decode(value).map_err(|e| e.in_file(&self.opts.dir, 0))?;
        let file = self.vlogs.get(&vp.fid).ok_or_else(|| Error::MissingFile {
            path: self
                .opts
                .value_dir
                .clone()
                .unwrap_or_else(|| self.opts.dir.clone())
                .join(crate::vfs::vlog_file_name(vp.fid)),
        })?;
        Ok(crate::vlog::read_value(file.as_ref(), &vp)?.value)
    }

    /// Every stored version of every user key (internal keys excluded), in
    /// key order, newest version first within a key.
    pub fn versions(&self) -> Result<Versions<'_>> {
        let mut it = VisibleIterator::new(self.merged(), u64::MAX, true, &[], now_secs());
        it.rewind()?;
        Ok(Versions { view: self, it })
    }

    /// The newest visible version of every key at `read_ts`, skipping
    /// deleted and expired keys.
    pub fn latest(&self, read_ts: u64) -> Result<Versions<'_>> {
        let mut it = VisibleIterator::new(self.merged(), read_ts, false, &[], now_secs());
        it.rewind()?;
        Ok(Versions { view: self, it })
    }

    /// The newest version of `key` at or below `read_ts`, if visible.
    pub fn get(&self, key: &[u8], read_ts: u64) -> Result<Option<Version>> {
        let mut it = VisibleIterator::new(self.merged(), read_ts, false, key, now_secs());
        it.rewind()?;
        if !it.valid() || user_key(it.key()) != key {
            return Ok(None);
        }
        let v = it.value();
        Ok(Some(Version {
            key: key.to_vec(),
            version: version(it.key()),
            meta: v.meta,
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value: self.resolve(v.meta, v.value)?,
        }))
    }
}

fn replay_mem(vfs: &dyn Vfs, path: &Path, fid: u32) -> Result<MemWal> {
    let file = vfs.open_read(path)?;
    let file_len = file.len();
    let mut replay = TxnReplay::new(file)?;
    let mut data = Vec::new();
    let mut batches = 0;
    let mut max_version = 0;
    while let Some(batch) = replay.next_batch()? {
        batches += 1;
        for e in batch {
            max_version = max_version.max(version(&e.key));
            data.push((
                e.key,
                OwnedValue {
                    meta: e.meta,
                    user_meta: e.user_meta,
                    expires_at: e.expires_at,
                    value: e.value,
                },
            ));
        }
    }
    Ok(MemWal {
        fid,
        path: path.to_path_buf(),
        file_len,
        valid_end: replay.valid_end(),
        entries: data.len(),
        batches,
        max_version,
        data,
    })
}

/// Iterator over versions with values resolved; see [`DirView::versions`]
/// and [`DirView::latest`].
pub struct Versions<'a> {
    view: &'a DirView,
    it: VisibleIterator<MergeIterator<Box<dyn KvIterator + Send>>>,
}

impl Versions<'_> {
    fn advance(&mut self) -> Result<Option<Version>> {
        if !self.it.valid() {
            return Ok(None);
        }
        let k = self.it.key();
        let v = self.it.value();
        let out = Version {
            key: user_key(k).to_vec(),
            version: version(k),
            meta: v.meta,
            user_meta: v.user_meta,
            expires_at: v.expires_at,
            value: self.view.resolve(v.meta, v.value)?,
        };
        self.it.advance()?;
        Ok(Some(out))
    }
}

impl Iterator for Versions<'_> {
    type Item = Result<Version>;
    fn next(&mut self) -> Option<Self::Item> {
        self.advance().transpose()
    }
}
