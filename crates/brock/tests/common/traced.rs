//! A `Vfs` over `MemVfs` that names every operation `MemVfs` counts, so
//! the crash sweeps can say which step they interrupted.

use brock::Result;
use brock::vfs::{
    DirEntry, DirLock, FileKind, MemVfs, OpenMode, RandomAccessFile, Vfs, WritableFile, classify,
};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

/// The database directory the crash sweeps use on `MemVfs`.
pub const DIR: &str = "/db";

#[derive(Debug, Clone)]
pub struct OpRec {
    /// MemVfs's operation index.
    pub index: u64,
    /// What it was, e.g. `append wal`.
    pub label: String,
    /// Whether it failed.
    pub failed: bool,
}

/// Delegates to a `MemVfs` and logs each counted (mutating) operation with
/// its index and a label such as `append wal` or `sync dir`.
#[derive(Debug, Clone)]
pub struct Traced {
    /// The file system underneath.
    pub fs: MemVfs,
    log: Arc<Mutex<Vec<OpRec>>>,
}

/// Locks `m`, ignoring poisoning (a failed assertion on another thread).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn kind_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match classify(&name) {
        Some(FileKind::Mem(_)) => "wal".into(),
        Some(FileKind::Sst(_)) => "sst".into(),
        Some(FileKind::Vlog(_)) => "vlog".into(),
        _ if name.is_empty() || path == Path::new(DIR) => "dir".into(),
        _ => name,
    }
}

impl Traced {
    /// Traces `fs`.
    pub fn new(fs: MemVfs) -> Self {
        Traced {
            fs,
            log: Arc::default(),
        }
    }

    fn record<T>(&self, label: impl FnOnce() -> String, f: impl FnOnce() -> Result<T>) -> Result<T> {
        // Held across the call so that indices and labels pair up even when
        // the write and flush threads race.
        let mut log = lock(&self.log);
        let before = self.fs.op_count();
        let r = f();
        let after = self.fs.op_count();
        if after > before {
            log.push(OpRec {
                index: before,
                label: label(),
                failed: r.is_err(),
            });
        }
        r
    }

    /// The label of operation `index`.
    pub fn label_at(&self, index: u64) -> Option<String> {
        lock(&self.log)
            .iter()
            .find(|r| r.index == index)
            .map(|r| r.label.clone())
    }

    /// The first operation that failed.
    pub fn first_failure(&self) -> Option<OpRec> {
        lock(&self.log).iter().find(|r| r.failed).cloned()
    }

    /// Every operation as `index label`.
    pub fn labels(&self) -> Vec<String> {
        lock(&self.log)
            .iter()
            .map(|r| format!("{} {}", r.index, r.label))
            .collect()
    }

    /// The labels of the operations from `index` on.
    pub fn labels_from(&self, index: u64) -> Vec<String> {
        lock(&self.log)
            .iter()
            .filter(|r| r.index >= index)
            .map(|r| r.label.clone())
            .collect()
    }
}

#[derive(Debug)]
struct TracedFile {
    inner: Box<dyn WritableFile>,
    t: Traced,
    kind: String,
}

impl WritableFile for TracedFile {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let (t, k) = (self.t.clone(), self.kind.clone());
        t.record(|| format!("append {k}"), || self.inner.append(data))
    }

    fn write_at(&mut self, data: &[u8], offset: u64) -> Result<()> {
        let (t, k) = (self.t.clone(), self.kind.clone());
        t.record(|| format!("write_at {k}"), || self.inner.write_at(data, offset))
    }

    fn sync_data(&mut self) -> Result<()> {
        let (t, k) = (self.t.clone(), self.kind.clone());
        t.record(|| format!("sync {k}"), || self.inner.sync_data())
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        let (t, k) = (self.t.clone(), self.kind.clone());
        t.record(|| format!("set_len {k}"), || self.inner.set_len(len))
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn path(&self) -> &Path {
        self.inner.path()
    }
}

impl Vfs for Traced {
    fn open_write(&self, path: &Path, mode: OpenMode) -> Result<Box<dyn WritableFile>> {
        let kind = kind_of(path);
        let verb = match mode {
            OpenMode::CreateNew => "create",
            OpenMode::Truncate => "truncate",
            OpenMode::Existing => "open",
        };
        let inner = self.record(|| format!("{verb} {kind}"), || self.fs.open_write(path, mode))?;
        Ok(Box::new(TracedFile {
            inner,
            t: self.clone(),
            kind,
        }))
    }

    fn remove(&self, path: &Path) -> Result<()> {
        self.record(|| format!("remove {}", kind_of(path)), || self.fs.remove(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.record(
            || format!("rename {}", kind_of(from)),
            || self.fs.rename(from, to),
        )
    }

    fn create_dir_all(&self, path: &Path) -> Result<()> {
        self.fs.create_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> Result<()> {
        self.record(|| "sync dir".into(), || self.fs.sync_dir(path))
    }

    fn lock_dir(&self, path: &Path, exclusive: bool) -> Result<Option<Box<dyn DirLock>>> {
        self.fs.lock_dir(path, exclusive)
    }

    fn open_read(&self, path: &Path) -> Result<Arc<dyn RandomAccessFile>> {
        self.fs.open_read(path)
    }

    fn list_dir(&self, path: &Path) -> Result<Vec<DirEntry>> {
        self.fs.list_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }
}
